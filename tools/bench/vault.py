"""`make bench-vault`: the contract-end export measured against the naive copy, in one run.

1. A document tree is generated on disk, deterministically (cached in ``bench-data/``): by
   default 2,000 persons, 20,000 files of 1 kB to 5 MB (log-normal sizes, about 2 GB in all),
   some of them (``--shared``) the same document given to several persons, in folder trees
   with accented names. A WebDAV server (wsgidav under cheroot, in its own process) serves it;
   a moto S3 server (its own process) stands for MinIO.
2. The floor, the naive copy: one sequential loop that GETs each file from that WebDAV server
   and ``put_object``s it to an S3 server (minio client), no listing, hashing, manifest,
   checkpoint nor index.
3. Our export (``services.vault.transfer.export``) into a fresh bucket of another S3 server
   and a fresh SQLite database: listing, verified fetches, blobs stored once, versions
   indexed, checkpoints.

   The persons are split into ``--slices`` groups and the floor and the export take turns on
   each (floor first, then export first, and so on), so that on a shared machine both see the
   same load; the times are summed. The export of each group is a job of its own (listing the
   store when it starts), which costs it a little.
4. ``verify`` of source against vault: every file downloaded again and hashed, ``lost``.
5. The same export as a separate ``relais vault export`` process, killed with SIGKILL once half
   the items are checkpointed, then resumed: the S3 server's request log says how many objects
   that were already stored the resumed run PUT again (``resume_reuploaded``), and the resumed
   vault must index exactly what the uninterrupted export did, every content present
   (``resume_lost``).

6. Bagging (``--no-bagging`` to skip): the vault just exported, written as one BagIt bag per person by
   ``relais vault bag`` (its own process: ``bag_peak_rss_mb`` is its peak resident memory) into a folder,
   against the raw copy floor: one sequential loop reading each item's content from the same vault store
   (in 1 MiB chunks) and writing it to a file, nothing else (no hashing, manifest, index.json nor tag
   files). They take turns on the same slices of persons; ``bag_ratio`` is the bagging's MB/s over the
   floor's. A sample of the bags is validated by the Library of Congress's ``bagit``.

7. Incremental sync (``--no-sync`` to skip): ``relais vault sync``'s pass into a fresh vault (its own S3
   server and database) reads everything once (``sync_first_s``), then ``--changed`` (1 %) of the files
   are altered on disk (a few bytes appended), and the next pass (``sync_s``) must find every one and
   read nothing else (ETags compared: wsgidav has no sync-collection). ``sync_ratio`` is ``sync_s`` over
   the full export's ``export_s`` (target < 0.05); ``sync_missed`` the changes not found, ``sync_extra``
   the items given a new version without having changed. The altered files are put back afterwards.

moto holds every object in memory: the floor's server is stopped before ``verify``, a fresh one
serves the kill-and-resume phase. The last line printed is one JSON object.
"""
from __future__ import annotations

import argparse
import io
import json
import logging
import os
import platform
import random
import re
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import unicodedata
import urllib.parse
from dataclasses import dataclass
from pathlib import Path

import requests
from cheroot import wsgi
from minio import Minio
from sqlalchemy import text

from connectors.testing import wsgidav_app
from relais.db import make_engine, upgrade
from services.vault.adapters.s3_store import S3Store
from services.vault.sync.run import sync
from services.vault.transfer.export import export
from services.vault.transfer.peers import open_peer
from services.vault.transfer.verify import verify

SUBJECTS = ["Mathématiques", "Français", "Histoire-Géographie", "SVT", "Anglais", "Physique-Chimie", "Arts plastiques",
            "Éducation musicale"]
KINDS = [("Cours", "pdf"), ("Exercices", "odt"), ("Photo", "jpg"), ("Exposé", "odp"), ("Notes", "txt")]
MIN_SIZE, MAX_SIZE = 1_000, 5_000_000
TENANT = "bench"


@dataclass(frozen=True)
class Tree:
    root: Path
    files: list[tuple[str, int]]  # relative path, size
    persons: int
    unique_bytes: int

    @property
    def bytes(self) -> int:
        return sum(size for _, size in self.files)


def _sizes(rng: random.Random, weights: list[int], total: int) -> list[int]:
    """Log-normal sizes clipped to [1 kB, 5 MB], one per document, scaled so that the documents'
    sizes times ``weights`` (how many files hold each) add up to about ``total``."""
    raw = [rng.lognormvariate(0.0, 1.6) for _ in weights]
    scale = total / sum(x * w for x, w in zip(raw, weights, strict=True))
    sizes = []
    for _ in range(30):  # clipping moves the sum: rescale the part that is not clipped
        sizes = [min(MAX_SIZE, max(MIN_SIZE, int(x * scale))) for x in raw]
        got = sum(s * w for s, w in zip(sizes, weights, strict=True))
        if abs(got - total) < total * 0.002:
            break
        free = sum(s * w for s, w in zip(sizes, weights, strict=True) if MIN_SIZE < s < MAX_SIZE) or 1
        scale *= 1 + (total - got) / free
    return sizes


def generate(base: Path, persons: int, files: int, total_mb: float, shared: float, seed: int) -> Tree:
    """The tree, generated once per parameter set (``manifest.json`` written last marks it whole).

    Each person has a few subject folders of their own; ``shared`` of the files are one of a pool
    of documents each given to about six persons (a worksheet handed out to a class)."""
    folder = base / f"vault-p{persons}-f{files}-m{total_mb:g}-s{shared:g}-r{seed}"
    manifest = folder / "manifest.json"
    if manifest.is_file():
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return Tree(folder / "tree", [tuple(f) for f in data["files"]], data["persons"], data["unique_bytes"])
    if folder.exists():
        shutil.rmtree(folder)
    rng = random.Random(seed)
    people = [f"{2600000 + n:07d}" for n in range(persons)]
    subjects = {p: rng.sample(SUBJECTS, 3) for p in people}
    owners = [people[n % persons] for n in range(files)]  # everyone has a file, then at random
    owners[persons:] = [rng.choice(people) for _ in range(files - persons)]
    shared_slots = set(rng.sample(range(files), int(files * shared)))
    pool = max(1, len(shared_slots) // 6)  # each shared document goes to about six persons
    planned: dict[str, int] = {}  # relative path -> document
    unique = pool
    for slot, owner in enumerate(owners):
        if slot in shared_slots:
            doc = slot % pool
            rel = f"{owner}/Mes documents/Partagés/Fiche {doc:05d}.pdf"
        else:
            doc, unique = unique, unique + 1
            kind, ext = KINDS[doc % len(KINDS)]
            subject = subjects[owner][doc % 3] + ("/Archives" if doc % 7 == 0 else "")
            rel = f"{owner}/Mes documents/{subject}/{kind} {doc:06d}.{ext}"
        planned.setdefault(rel, doc)  # the same shared document twice for one person: once is enough
    weights = [0] * unique
    for doc in planned.values():
        weights[doc] += 1
    sizes = _sizes(rng, weights, int(total_mb * 1e6))
    noise = random.Random(seed + 1).randbytes(MAX_SIZE + (1 << 20))
    root = folder / "tree"
    for rel, doc in planned.items():
        head = f"relais bench document {doc}\n".encode()
        offset = (doc * 104729) % (len(noise) - sizes[doc])
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((head + noise[offset:offset + sizes[doc]])[:sizes[doc]])
    listed = sorted((rel, sizes[doc]) for rel, doc in planned.items())
    unique_bytes = sum(size for size, w in zip(sizes, weights, strict=True) if w)
    manifest.write_text(json.dumps({"persons": persons, "files": listed, "unique_bytes": unique_bytes}),
                        encoding="utf-8")
    return Tree(root, listed, persons, unique_bytes)


# -- servers, each in its own process -------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, proc: subprocess.Popen, what: str) -> None:
    deadline = time.time() + 30
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with status {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{what} did not start on port {port}")


class Server:
    def __init__(self, args: list[str], port: int, what: str, log: Path | None = None) -> None:
        self.port, self.what, self.log = port, what, log
        err = open(log, "ab") if log else subprocess.DEVNULL
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=err)
        _wait_port(port, self.proc, what)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def webdav_server(root: Path) -> Server:
    port = _free_port()
    return Server([sys.executable, "-m", "tools.bench.vault", "--serve-webdav", str(root), "--port", str(port)],
                  port, "wsgidav")


def s3_server(log: Path | None = None) -> Server:
    port = _free_port()
    return Server([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port, "moto", log)


def _serve_webdav(root: Path, port: int) -> None:
    server = wsgi.Server(("127.0.0.1", port), wsgidav_app(root), numthreads=16, timeout=30)
    signal.signal(signal.SIGTERM, lambda *_: server.stop())
    server.start()


# -- the phases -----------------------------------------------------------------------------------

class FloorCopy:
    """The naive copy: GET each file, put_object it; sequential, nothing else."""

    def __init__(self, dav_port: int, s3_port: int) -> None:
        self.dav_port = dav_port
        self.client = Minio(f"127.0.0.1:{s3_port}", access_key="bench", secret_key="bench-secret", secure=False)
        self.client.make_bucket("floor")
        self.session = requests.Session()

    def copy(self, files: list[tuple[str, int]]) -> float:
        """Seconds to copy ``files``."""
        start = time.perf_counter()
        for rel, _ in files:
            body = self.session.get(f"http://127.0.0.1:{self.dav_port}/{urllib.parse.quote(rel)}").content
            self.client.put_object("floor", rel, io.BytesIO(body), len(body))
        return time.perf_counter() - start


def _s3_store(port: int):
    return S3Store(f"127.0.0.1:{port}", "bench", "bench-secret", TENANT, secure=False)


def _engine(path: Path):
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    return engine


def _index(engine) -> dict[tuple[str, str, str], str]:
    with engine.connect() as conn:
        return {(p, v, i): d for p, v, i, d in conn.execute(text(
            "SELECT person, vertical, item_id, content_sha256 FROM vault_item_version WHERE tenant = :t"),
            {"t": TENANT})}


def _done(db: Path) -> int:
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5) as conn:
            return conn.execute("SELECT count(*) FROM vault_transfer_item WHERE state = 'done'").fetchone()[0]
    except sqlite3.Error:
        return 0


def _blob_puts(log: Path, since: int = 0) -> list[str]:
    with open(log, "rb") as f:
        f.seek(since)
        requests_logged = f.read().decode("utf-8", "replace")
    return re.findall(r'"PUT /[^/ ]+/(blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}) HTTP/1\.1" 200', requests_logged)


def incremental_sync(tree: Tree, dav_port: int, work: Path, workers: int, share: float, seed: int) -> dict:
    """A first sync pass, ``share`` of the files altered, the next pass timed and checked."""
    server = s3_server()
    engine = _engine(work / "sync.db")
    altered: dict[Path, bytes] = {}
    try:
        store = _s3_store(server.port)
        source = open_peer("webdav", {"url": f"http://127.0.0.1:{dav_port}/", "workers": workers})
        start = time.perf_counter()
        first = sync(engine, store, source, workers=workers, spool_dir=work)
        first_s = time.perf_counter() - start
        print(f"sync, first pass: {first.total('new_versions')} versions in {first_s:.1f} s, "
              f"complete {first.complete}", file=sys.stderr)
        chosen = random.Random(seed + 1).sample(tree.files, max(1, round(len(tree.files) * share)))
        for rel, _ in chosen:
            path = tree.root / rel
            altered[path] = path.read_bytes()
            with open(path, "ab") as f:
                f.write(b"\nchanged by bench-vault")
            later = time.time() + 2
            os.utime(path, (later, later))
        start = time.perf_counter()
        second = sync(engine, store, source, workers=workers, spool_dir=work)
        sync_s = time.perf_counter() - start
        with engine.connect() as conn:
            renewed = {(p, unicodedata.normalize("NFC", i)) for p, i in conn.execute(text(
                "SELECT person, item_id FROM vault_item_version WHERE tenant = :t AND version > 1"), {"t": TENANT})}
        wanted = {(rel.split("/", 1)[0], unicodedata.normalize("NFC", rel.split("/", 1)[1])) for rel, _ in chosen}
        print(f"sync, {len(chosen)} files changed: {second.total('new_versions')} versions in {sync_s:.1f} s, "
              f"complete {second.complete}", file=sys.stderr)
        return {"sync_first_s": round(first_s, 2), "sync_changed": len(chosen), "sync_s": round(sync_s, 2),
                "sync_read_bytes": second.total("bytes"), "sync_found": len(wanted & renewed),
                "sync_missed": len(wanted - renewed), "sync_extra": len(renewed - wanted),
                "sync_complete": first.complete and second.complete}
    finally:
        for path, data in altered.items():
            path.write_bytes(data)
        engine.dispose()
        server.stop()


def killed_and_resumed(tree: Tree, dav_port: int, work: Path, workers: int, items: int,
                       reference: dict) -> dict:
    """A `relais vault export` process killed with SIGKILL at mid-export, then run again."""
    log = work / "moto-resume.log"
    s3 = s3_server(log)
    try:
        db = work / "resume.db"
        cfg = work / "source.yaml"
        cfg.write_text(json.dumps({"url": f"http://127.0.0.1:{dav_port}/", "workers": workers}), encoding="utf-8")
        relais = Path(sys.executable).parent / "relais"
        cmd = [str(relais), "vault", "export", "--tenant", TENANT, "--from", "webdav", "--config", str(cfg), "--json"]
        env = {**os.environ, "RELAIS_DATA_DIR": str(work / "var"), "RELAIS_DATABASE_URL": f"sqlite:///{db}",
               "RELAIS_VAULT_S3_ENDPOINT": f"http://127.0.0.1:{s3.port}", "RELAIS_VAULT_S3_ACCESS_KEY": "bench",
               "RELAIS_VAULT_S3_SECRET_KEY": "bench-secret", "RELAIS_LOG_LEVEL": "ERROR"}
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while _done(db) < items // 2 and proc.poll() is None:
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        time.sleep(0.5)  # a PUT whose body had arrived is still stored by moto
        killed_at = _done(db)
        store = _s3_store(s3.port)
        stored = set(store.list_digests())
        offset = log.stat().st_size
        start = time.perf_counter()
        out = subprocess.run(cmd, env=env, capture_output=True)
        resume_s = time.perf_counter() - start
        if out.returncode != 0:
            raise RuntimeError(f"the resumed export failed: {out.stderr.decode()[-2000:]}")
        report = json.loads(out.stdout)
        again = [k.rsplit("/", 1)[1] for k in _blob_puts(log, offset)]
        engine = _engine(db)
        index = _index(engine)
        engine.dispose()
        present = set(store.list_digests())
        lost = sum(1 for k, d in reference.items() if index.get(k) != d or d not in present)
        return {"resume_killed_at_items": killed_at, "resume_stored_before": len(stored),
                "resume_uploaded": len(again), "resume_reuploaded": len(set(again) & stored),
                "resume_s": round(resume_s, 2), "resume_runs": report["runs"], "resume_lost": lost}
    finally:
        s3.stop()


def _items(engine) -> list[tuple[str, str, str, str, int]]:
    """(person, vertical, item id, digest, size) of every live file item of the vault (folders have no file)."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT v.person, v.vertical, v.item_id, v.content_sha256, v.size, v.metadata FROM vault_item_version v "
            "JOIN (SELECT person, vertical, item_id, max(version) AS m FROM vault_item_version WHERE tenant = :t "
            "GROUP BY person, vertical, item_id) l ON v.person = l.person AND v.vertical = l.vertical "
            "AND v.item_id = l.item_id AND v.version = l.m WHERE v.tenant = :t AND v.content_sha256 IS NOT NULL "
            "ORDER BY v.person"), {"t": TENANT}).all()
    return [(p, v, i, d, n) for p, v, i, d, n, meta in rows if json.loads(meta).get("kind") != "folder"]


def floor_bag(store, items: list[tuple[str, str, str, str, int]], out: Path) -> float:
    """The raw copy floor of bagging: each item's content read from the store and written to a file."""
    start = time.perf_counter()
    for person, vertical, item_id, digest, _size in items:
        path = out / person / vertical / item_id
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("wb") as f:
            for chunk in store.read_chunks(digest):
                f.write(chunk)
    return time.perf_counter() - start


def bag_process(persons: list[str], out: Path, env: dict[str, str], workers: int) -> tuple[float, int, dict]:
    """``relais vault bag`` for these persons in its own process: seconds, its peak RSS in bytes (os.wait4 reaps
    it with its own rusage), its report."""
    relais = Path(sys.executable).parent / "relais"
    cmd = [str(relais), "vault", "bag", "--tenant", TENANT, "--to", str(out), "--workers", str(workers), "--json"]
    for person in persons:
        cmd += ["--person", person]
    with tempfile.TemporaryFile() as stdout, tempfile.TemporaryFile() as stderr:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, env=env, stdout=stdout, stderr=stderr)
        _pid, status, usage = os.wait4(proc.pid, 0)
        took = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        stdout.seek(0)
        stderr.seek(0)
        if proc.returncode != 0:
            raise RuntimeError(f"relais vault bag failed ({proc.returncode}): {stderr.read().decode()[-2000:]}")
        return took, usage.ru_maxrss * 1024, json.loads(stdout.read())  # ru_maxrss: kilobytes on Linux


def bagging(work: Path, engine_path: Path, s3_port: int, slices: list[list[str]], workers: int) -> dict:
    """Phase 6: the bags of every person against the raw copy floor, taking turns on each slice."""
    import bagit  # type: ignore[import-untyped]  # no type hints

    engine = _engine(engine_path)
    items = _items(engine)
    engine.dispose()
    store = _s3_store(s3_port)
    env = {**os.environ, "RELAIS_DATA_DIR": str(work / "var"), "RELAIS_DATABASE_URL": f"sqlite:///{engine_path}",
           "RELAIS_VAULT_S3_ENDPOINT": f"http://127.0.0.1:{s3_port}", "RELAIS_VAULT_S3_ACCESS_KEY": "bench",
           "RELAIS_VAULT_S3_SECRET_KEY": "bench-secret", "RELAIS_LOG_LEVEL": "ERROR"}
    floor_s = bag_s = 0.0
    peak = 0
    reports = []
    for n, group in enumerate(slices):
        members = set(group)
        mine = [i for i in items if i[0] in members]
        for phase in (("floor", "bag") if n % 2 == 0 else ("bag", "floor")):
            if phase == "floor":
                took = floor_bag(store, mine, work / "floor-bags")
                floor_s += took
            else:
                took, rss, report = bag_process(group, work / "bags", env, workers)
                bag_s += took
                peak = max(peak, rss)
                reports.append(report)
                if report["state"] != "completed":
                    raise RuntimeError(f"bagging did not complete: {report}")
            print(f"slice {n + 1}/{len(slices)} {phase}: {len(mine)} items, "
                  f"{sum(i[4] for i in mine) / 1e6:,.0f} MB in {took:.1f} s", file=sys.stderr)
        shutil.rmtree(work / "floor-bags", ignore_errors=True)  # the disk holds one slice of floor copies
    content = sum(i[4] for i in items)
    written = sum(r["bytes"] for r in reports)
    bags = sorted(p for p in (work / "bags").iterdir() if p.is_dir() and not p.name.startswith("."))
    sample = random.Random(0).sample(bags, min(20, len(bags)))
    invalid = 0
    for path in sample:
        try:
            bagit.Bag(str(path)).validate()
        except bagit.BagError as exc:
            invalid += 1
            print(f"bag {path.name} INVALID for bagit: {exc}", file=sys.stderr)
    shutil.rmtree(work / "bags", ignore_errors=True)
    return {"bag_persons": sum(r["bags"] for r in reports), "bag_items": len(items), "bag_content_bytes": content,
            "bag_payload_bytes": written, "bag_s": round(bag_s, 2),
            "bag_mb_per_s": round(content / 1e6 / bag_s, 2), "bag_floor_s": round(floor_s, 2),
            "bag_floor_mb_per_s": round(content / 1e6 / floor_s, 2), "bag_ratio": round(floor_s / bag_s, 3),
            "bag_peak_rss_mb": round(peak / 2**20, 1), "bag_workers": workers,
            "bagit_validated": len(sample), "bagit_invalid": invalid}


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--persons", type=int, default=2000)
    p.add_argument("--files", type=int, default=20000)
    p.add_argument("--total-mb", type=float, default=2000.0, help="logical bytes of all files, in MB")
    p.add_argument("--shared", type=float, default=0.15,
                   help="share of the files that are a document several persons have")
    p.add_argument("--workers", type=int, default=8, help="the export's concurrent items")
    p.add_argument("--seed", type=int, default=2026)
    p.add_argument("--data", type=Path, default=Path("bench-data"), help="where the generated tree is cached")
    p.add_argument("--slices", type=int, default=4,
                   help="persons split in this many groups, the floor and the export taking turns on each "
                        "(so both see the same load on a shared machine)")
    p.add_argument("--no-resume", action="store_true", help="skip the kill-and-resume phase")
    p.add_argument("--no-bagging", action="store_true", help="skip the bagging phase")
    p.add_argument("--bag-workers", type=int, default=4, help="bags `relais vault bag` writes at once")
    p.add_argument("--no-sync", action="store_true", help="skip the incremental sync phase")
    p.add_argument("--changed", type=float, default=0.01, help="share of the files the incremental sync finds changed")
    p.add_argument("--serve-webdav", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.serve_webdav:
        _serve_webdav(args.serve_webdav, args.port)
        return
    if args.files < args.persons:
        p.error("--files must be at least --persons (everyone has a file)")

    logging.basicConfig(level=logging.ERROR)
    t0 = time.perf_counter()
    tree = generate(args.data, args.persons, args.files, args.total_mb, args.shared, args.seed)
    print(f"tree: {tree.persons} persons, {len(tree.files)} files, {tree.bytes / 1e6:,.0f} MB "
          f"({tree.unique_bytes / 1e6:,.0f} MB distinct) in {tree.root} ({time.perf_counter() - t0:.1f} s)",
          file=sys.stderr)
    dav = webdav_server(tree.root)
    work = Path(tempfile.mkdtemp(prefix="relais-bench-vault-"))
    people = sorted({rel.split("/", 1)[0] for rel, _ in tree.files})
    slices = [people[i * len(people) // args.slices:(i + 1) * len(people) // args.slices] for i in range(args.slices)]
    floor_s = export_s = 0.0
    loads: list[float] = []
    try:
        floor_s3, vault_s3 = s3_server(), s3_server()
        try:
            floor = FloorCopy(dav.port, floor_s3.port)
            engine = _engine(work / "export.db")
            store = _s3_store(vault_s3.port)
            source = open_peer("webdav", {"url": f"http://127.0.0.1:{dav.port}/", "workers": args.workers})
            reports = []
            for n, group in enumerate(slices):
                members = set(group)
                files = [f for f in tree.files if f[0].split("/", 1)[0] in members]
                for phase in (("floor", "export") if n % 2 == 0 else ("export", "floor")):
                    loads.append(os.getloadavg()[0])
                    if phase == "floor":
                        took = floor.copy(files)
                        floor_s += took
                    else:
                        start = time.perf_counter()
                        report = export(engine, store, source, persons=group, workers=args.workers, spool_dir=work)
                        took = time.perf_counter() - start
                        export_s += took
                        if not report.ok:
                            raise RuntimeError(f"the export did not complete: {report.state} {report.error} "
                                               f"{[f.to_dict() for f in report.failures[:5]]}")
                        reports.append(report)
                    print(f"slice {n + 1}/{len(slices)} {phase}: {len(files)} files, "
                          f"{sum(size for _, size in files) / 1e6:,.0f} MB in {took:.1f} s", file=sys.stderr)
            floor_s3.stop()
            start = time.perf_counter()
            check = verify(engine, store, source=source, workers=args.workers, spool_dir=work)
            verify_s = time.perf_counter() - start
            print(f"verify: {verify_s:.1f} s, lost {check.lost}, ok {check.ok}", file=sys.stderr)
            reference = _index(engine)
            engine.dispose()
            bags = {} if args.no_bagging else bagging(work, work / "export.db", vault_s3.port, slices, args.bag_workers)
        finally:
            floor_s3.stop()
            vault_s3.stop()
        floor_rate = tree.bytes / 1e6 / floor_s
        items = sum(r.items for r in reports)
        resume = {} if args.no_resume else killed_and_resumed(tree, dav.port, work, args.workers, items, reference)
        synced = {} if args.no_sync else incremental_sync(tree, dav.port, work, args.workers, args.changed, args.seed)
    finally:
        dav.stop()
        shutil.rmtree(work, ignore_errors=True)
    mb_per_s = tree.bytes / 1e6 / export_s
    result = {
        "bench": "vault-export", "persons": tree.persons, "files": len(tree.files), "items": items,
        "bytes": tree.bytes, "distinct_bytes": tree.unique_bytes, "workers": args.workers,
        "export_s": round(export_s, 2), "mb_per_s": round(mb_per_s, 2),
        "floor_s": round(floor_s, 2), "floor_mb_per_s": round(floor_rate, 2), "ratio": round(mb_per_s / floor_rate, 3),
        "objects_stored": sum(r.this_run.uploaded for r in reports),
        "deduplicated": sum(r.this_run.deduplicated for r in reports),
        **resume, **bags, **synced,
        **({"sync_ratio": round(synced["sync_s"] / export_s, 4)} if synced else {}),
        "verify_s": round(verify_s, 2), "lost": check.lost, "verify_ok": check.ok,
        "slices": args.slices,
        "machine": f"{platform.machine()} {os.cpu_count()} cpu, "
                   f"load average {sum(loads) / len(loads):.1f} while measured",
        "date": time.strftime("%Y-%m-%d"),
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
