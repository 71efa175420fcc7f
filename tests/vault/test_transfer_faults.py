"""Contract-end mode when things go wrong, on real servers and processes: a source that times out,
answers garbage, cuts bodies off or sends bytes that do not match their checksum; an export
killed with SIGKILL and resumed (S3 PUTs counted in the S3 server's own request log); the object
store killed and restarted mid-export; jobs that must not run twice."""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import text

from app.cli import main
from connectors.testing import serve_wsgi, wsgidav_app
from relais.db import make_engine, writer
from services.vault.adapters.blob_store import StoreError
from services.vault.adapters.local_store import LocalStore
from services.vault.adapters.s3_store import S3Store
from services.vault.transfer.checkpoint import Scope, TransferError, open_job
from services.vault.transfer.export import export
from services.vault.transfer.peers import open_peer
from services.vault.transfer.verify import verify
from tests.conftest import MotoServer

TENANT = "ac-test"
RELAIS = Path(sys.executable).parent / "relais"


class Faults:
    """WSGI middleware in front of wsgidav: misbehaves on the requests it is told about."""

    def __init__(self, app) -> None:
        self.app = app
        self.rules: dict[tuple[str, str], str] = {}

    def __call__(self, environ, start_response):
        kind = self.rules.get((environ["REQUEST_METHOD"], environ["PATH_INFO"]))
        if kind == "hang":  # longer than the connector's read timeout
            time.sleep(1.0)
        elif kind == "garbage":
            body = b"<html><body>Service temporairement indisponible"
            start_response("207 Multi-Status",
                           [("Content-Type", "application/xml"), ("Content-Length", str(len(body)))])
            return [body]
        elif kind == "wrong-digest":
            other = base64.b64encode(hashlib.sha256(b"what the server claims").digest()).decode()

            def announcing(status, headers, exc_info=None):
                return start_response(status, headers + [("Repr-Digest", f"sha-256=:{other}:")], exc_info)

            return self.app(environ, announcing)
        elif kind == "truncated":
            body = b"".join(self.app(environ, lambda *a, **k: None))
            start_response("200 OK", [("Content-Type", "application/octet-stream"),
                                      ("Content-Length", str(len(body) + 5000))])
            return [body[: len(body) // 2]]
        return self.app(environ, start_response)


def write_tree(root: Path, persons: dict[str, int], size: int = 2000, shared_every: int = 4) -> None:
    """Each person gets ``n`` files in two folders; every ``shared_every``-th file is the same for all."""
    for person, n in persons.items():
        for i in range(n):
            data = (f"shared {i}\n".encode() * (size // 9)) if i % shared_every == 0 else \
                (f"{person} file {i}\n".encode() * (size // 16))
            path = root / person / f"dossier-{i % 2}" / f"f{i:03d}.txt"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(data)


def test_a_misbehaving_source_fails_items_clearly_the_rest_goes_on_and_a_rerun_completes(tmp_path, monkeypatch):
    root = tmp_path / "ent-a"
    write_tree(root, {"alice": 4, "bob": 3, "carol": 3})
    for name, data in (("slow.txt", b"slow"), ("bad.bin", b"bad bytes"), ("cut.bin", b"x" * 20000)):
        (root / "alice" / name).write_bytes(data)
    app = Faults(wsgidav_app(root))
    app.rules = {("GET", "/alice/slow.txt"): "hang", ("GET", "/alice/bad.bin"): "wrong-digest",
                 ("GET", "/alice/cut.bin"): "truncated", ("PROPFIND", "/bob/"): "garbage"}
    monkeypatch.setenv("RELAIS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("RELAIS_DATABASE_URL", raising=False)
    monkeypatch.delenv("RELAIS_VAULT_S3_ENDPOINT", raising=False)
    monkeypatch.setenv("RELAIS_TENANT", TENANT)
    with serve_wsgi(app) as url:
        cfg = tmp_path / "ent-a.yaml"
        cfg.write_text(yaml.safe_dump({"url": url + "/", "timeout": 0.3, "workers": 4,
                                       "retries": {"attempts": 2, "base_delay": 0.01, "max_delay": 0.02}}))
        run = CliRunner().invoke
        out = run(main, ["vault", "export", "--from", "webdav", "--config", str(cfg), "--json"])
        assert out.exit_code == 1
        report = json.loads(out.stdout)
        assert report["state"] == "incomplete"
        failures = {(f["person"], f["item"]): f["error"] for f in report["failures"]}
        assert set(failures) == {("alice", "slow.txt"), ("alice", "bad.bin"), ("alice", "cut.bin"), ("bob", None)}
        assert "no answer within 0.3 s (read timeout)" in failures[("alice", "slow.txt")]
        assert "announced sha256" in failures[("alice", "bad.bin")] and "hash to" in failures[("alice", "bad.bin")]
        assert "cut off" in failures[("alice", "cut.bin")] or "announced" in failures[("alice", "cut.bin")]
        assert "PROPFIND answer" in failures[("bob", None)] and "/bob/" in failures[("bob", None)]
        assert all("webdav" in e for e in failures.values())
        # the rest went in: alice's 4 files and 2 folders, carol's 3 and 2
        assert report["items"] == 11 and report["verticals"]["documents"]["failed"] == 3
        assert "run the same command again" in out.stderr

        out = run(main, ["vault", "verify", "--source", "webdav", "--source-config", str(cfg), "--json"])
        assert out.exit_code == 1
        found = json.loads(out.stdout)
        lost = {(f["person"], f["path"]) for f in found["findings"] if f["verdict"] == "lost"}
        assert lost == {("alice", "slow.txt"), ("alice", "bad.bin"), ("alice", "cut.bin")}
        assert [(e["side"], e["person"]) for e in found["errors"]] == [("source", "bob")]

        app.rules.clear()  # the source is fixed: the same command resumes the job and finishes it
        out = run(main, ["vault", "export", "--from", "webdav", "--config", str(cfg), "--json"])
        assert out.exit_code == 0, out.output
        again = json.loads(out.stdout)
        assert (again["job"], again["resumed"], again["runs"], again["state"]) == (report["job"], True, 2, "completed")
        assert (again["items"], again["failed"], again["persons"]) == (11 + 3 + 5, 0, 3)
        assert again["this_run"]["skipped_resumed"] == 11  # alice's done items and carol: not fetched again
        out = run(main, ["vault", "verify", "--source", "webdav", "--source-config", str(cfg)])
        assert out.exit_code == 0, out.output
        assert "lost: 0, unverified: 0, extra: 0" in out.stdout


class LoggedMoto(MotoServer):
    """A moto S3 server whose request log tells which blobs were uploaded."""

    def blob_puts(self) -> list[str]:
        """Keys of the blobs PUT with success, in order, from the server's log."""
        return re.findall(r'"PUT /[^/ ]+/(blobs/sha256/[0-9a-f]{2}/[0-9a-f]{64}) HTTP/1\.1" 200',
                          self.log.read_text(errors="replace"))


@pytest.fixture
def moto(tmp_path):
    server = LoggedMoto(tmp_path / "moto.log").start()
    yield server
    server.stop()


def _s3(moto, tenant=TENANT) -> S3Store:
    return S3Store(f"127.0.0.1:{moto.port}", "relais", "not-checked-by-moto", tenant, secure=False)


def _done_items(db: Path) -> int:
    engine = make_engine(f"sqlite:///{db}")
    try:
        with engine.connect() as conn:
            return conn.execute(text("SELECT count(*) FROM vault_transfer_item WHERE state = 'done'")).scalar_one()
    except Exception:  # noqa: BLE001 - the tables are not there yet
        return 0
    finally:
        engine.dispose()


def test_export_killed_with_sigkill_resumes_without_uploading_anything_again(tmp_path, moto):
    root = tmp_path / "ent-a"
    write_tree(root, {f"p{n:02d}": 6 for n in range(12)}, size=30000)
    db = tmp_path / "var" / "relais.db"
    env = {**os.environ, "RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_DATABASE_URL": f"sqlite:///{db}",
           "RELAIS_TENANT": TENANT, "RELAIS_VAULT_S3_ENDPOINT": f"http://127.0.0.1:{moto.port}",
           "RELAIS_VAULT_S3_ACCESS_KEY": "relais", "RELAIS_VAULT_S3_SECRET_KEY": "s3cret-never-logged"}
    with serve_wsgi(wsgidav_app(root)) as url:
        cfg = tmp_path / "ent-a.yaml"
        cfg.write_text(yaml.safe_dump({"url": url + "/", "rate_limit": 40, "burst": 1, "workers": 4}))
        cmd = [str(RELAIS), "vault", "export", "--from", "webdav", "--config", str(cfg), "--json"]
        proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        deadline = time.time() + 60
        while _done_items(db) < 20 and time.time() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.5)  # some uploads done after the last checkpoint: they must not be uploaded again
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
        time.sleep(0.5)  # a PUT whose body had arrived when the process died is still stored by moto
        committed = _done_items(db)
        before = moto.blob_puts()
        stored = {o.object_name for o in _s3(moto)._client.list_objects(f"relais-vault-{TENANT}", prefix="blobs/",
                                                                          recursive=True)}
        assert 20 <= committed < 12 * 8 and len(stored) >= 10
        assert set(before) == stored  # what was PUT with success is stored

        out = subprocess.run(cmd, env=env, capture_output=True, timeout=120)
        assert out.returncode == 0, out.stderr.decode()
        report = json.loads(out.stdout)
        assert (report["resumed"], report["runs"], report["state"], report["failed"]) == (True, 2, "completed", 0)
        assert report["items"] == 12 * 8  # 6 files and 2 folders each
        after = moto.blob_puts()[len(before):]
        assert not set(after) & stored, "an object already stored was uploaded again"
        assert len(after) == len(set(after))
        assert report["this_run"]["uploaded"] == len(after)
        # every blob once: one S3 version each
        versions = list(_s3(moto)._client.list_objects(f"relais-vault-{TENANT}", prefix="blobs/", recursive=True,
                                                       include_version=True))
        assert len(versions) == len({v.object_name for v in versions}) == len(stored) + len(after)
        assert b"s3cret-never-logged" not in out.stderr + out.stdout

    with serve_wsgi(wsgidav_app(root)) as url:
        engine = make_engine(f"sqlite:///{db}")
        check = verify(engine, _s3(moto), source=open_peer("webdav", {"url": url + "/"}))
        assert check.ok and check.lost == 0
        assert check.comparison.totals()["documents"]["vault"]["items"] == 12 * 8


def test_object_store_killed_mid_export_stops_clearly_resume_completes_verify_sees_what_it_forgot(
        engine, tmp_path, moto):
    """moto keeps everything in memory: restarted, it has forgotten what was stored before (MinIO
    would not). The resumed export completes; verify names each item whose content went with it;
    the next export stores those again."""
    root = tmp_path / "ent-a"
    write_tree(root, {f"p{n:02d}": 5 for n in range(10)}, size=20000, shared_every=100)
    with serve_wsgi(wsgidav_app(root)) as url:
        source = open_peer("webdav", {"url": url + "/", "workers": 4})

        def kill_moto_mid_way(stats):  # called by the export as items finish
            if stats.items >= 15 and moto.proc.poll() is None:
                moto.stop()

        first = export(engine, _s3(moto), source, progress=kill_moto_mid_way)
        assert first.state == "stopped"
        assert f"object store 127.0.0.1:{moto.port} unreachable while storing blob" in first.error
        assert "run it again to resume" in first.error
        done_before = first.items
        assert 15 <= done_before < 70

        moto.start()  # moto forgets everything: the bucket is created again when the store is opened
        second = export(engine, _s3(moto), source)
        assert (second.state, second.resumed, second.items, second.failed) == ("completed", True, 70, 0)

        # what moto forgot is named, item by item: in the index, not in the store
        check = verify(engine, _s3(moto), source=source)
        assert 0 < check.lost <= done_before
        missing = [f for f in check.comparison.findings if f.problem == "content-missing"]
        assert missing and len(missing) == check.lost
        assert all(f.where == "vault" and "is not in the vault store" in f.detail for f in missing)

        repair = export(engine, _s3(moto), source)  # a new job: every item checked, what is missing stored again
        assert repair.ok and repair.outcome("unchanged") == 70 and repair.this_run.uploaded > 0
        assert verify(engine, _s3(moto), source=source).ok


def test_store_upload_checks_what_it_is_given_locally_and_streams_to_s3(tmp_path, moto):
    local = LocalStore(tmp_path / "vault", TENANT)
    data = b"contenu" * 1000
    digest = hashlib.sha256(data).hexdigest()
    with pytest.raises(StoreError, match="hashes to"):
        local.upload(hashlib.sha256(b"autre").hexdigest(), len(data), lambda: open(__file__, "rb"))
    assert local.list_digests() == []
    (tmp_path / "f").write_bytes(data)
    local.upload(digest, len(data), lambda: open(tmp_path / "f", "rb"))
    assert local.get(digest) == data
    s3 = _s3(moto)
    s3.upload(digest, len(data), lambda: open(tmp_path / "f", "rb"))
    assert s3.get(digest) == data and s3.list_digests() == [digest]


def test_a_job_runs_in_one_process_at_a_time_and_keeps_its_scope(engine):
    scope = Scope(None, ("documents",))
    job = open_job(engine, tenant=TENANT, kind="export", connector="webdav", scope=scope)
    with writer(engine).begin() as conn:  # as if another live process ran it
        conn.execute(text("UPDATE vault_transfer_job SET runner = :r"), {"r": f"{socket.gethostname()}:{os.getppid()}"})
    with pytest.raises(TransferError, match=f"is being run by {socket.gethostname()}:{os.getppid()}"):
        open_job(engine, tenant=TENANT, kind="export", connector="webdav", scope=scope)
    with writer(engine).begin() as conn:  # that process died (a pid no process has)
        conn.execute(text("UPDATE vault_transfer_job SET runner = :r"), {"r": f"{socket.gethostname()}:4194999"})
    with pytest.raises(TransferError, match="covers every person, documents, not 1 given person"):
        open_job(engine, tenant=TENANT, kind="export", connector="webdav", scope=Scope(("p1",), ("documents",)))
    resumed = open_job(engine, tenant=TENANT, kind="export", connector="webdav", scope=scope)
    assert (resumed.job_id, resumed.resumed, resumed.runs) == (job.job_id, True, 2)
    fresh = open_job(engine, tenant=TENANT, kind="export", connector="webdav", scope=scope, restart=True)
    assert fresh.job_id != job.job_id and not fresh.resumed
    with engine.connect() as conn:
        assert conn.execute(text("SELECT state FROM vault_transfer_job WHERE job_id = :j"),
                            {"j": job.job_id}).scalar_one() == "abandoned"
