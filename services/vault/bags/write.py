"""``relais vault bag``: every owner's live items, from the vault, into bags of archive format 1.1.

One bag per person and one per structure (``rules/bag_owners.py``; contracts/vault/SPEC.md §1), each in a
folder, a zip or under an S3 prefix (``targets.py``). Each file item is copied from the vault store in
chunks straight into the bag and hashed on the way: the manifest takes that hash, and a content whose bytes
do not hash to the digest the vault indexed it under fails its bag, naming the person, the item and the blob.
``index.json`` per vertical says what each item is (``archive/packing.py``'s records).

Resumable: a bag already there is read and validated; when it is whole and valid and its manifest is the one
the vault's items give now, it is skipped, else written again. So after a crash the same command finishes
the job, and after new changes in the vault it rewrites only the bags they touch. Bags are written on
``workers`` threads; the reads are in the vault's access log under the run's actor (one transaction a bag).
A bag that cannot be written (an item the format cannot hold, a corrupt blob) is reported and the others go
on; the vault store failing stops the run.
"""
from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from sqlalchemy import Engine, select

from connectors.sdk import BadItem, index_document
from relais.db import writer

from ..adapters import index
from ..adapters.blob_store import BlobStore, StoreError, StoreUnavailable
from ..adapters.tables import vault_access_log
from ..adapters.tables import vault_item_version as t
from ..archive.bagit import BAGIT_VERSION, FORMAT_VERSION, BagError, _encode_manifest_path
from ..archive.packing import INDEX, record_of
from ..item_version import ItemVersion
from ..rules.access_log import READ, entry
from ..rules.bag_owners import BagOwner, owner_of
from ..rules.item_metadata import connector_metadata, item_kind
from .check import CheckedBag, check_bag
from .records import fast_check
from .report import EMPTY, FAILED, SKIPPED, WRITTEN, BagResult, BagRun
from .targets import BagReader, BagTarget, BagWriter, TargetError

log = logging.getLogger("relais.vault.bags")

Progress = Callable[[int, int], None]  # (bags done, payload bytes written or checked so far)


@dataclass
class _Plan:
    """What a bag must hold, from the vault's index: its files, index.json documents and manifest."""

    owner: BagOwner
    versions: list[ItemVersion]
    files: list[tuple[str, ItemVersion, int]] = field(default_factory=list)  # data/... path, version, size
    indexes: dict[str, bytes] = field(default_factory=dict)  # data/<vertical>/index.json -> its bytes
    manifest: dict[str, str] = field(default_factory=dict)  # data/... -> sha256
    verticals: dict[str, dict[str, int]] = field(default_factory=dict)


def owners(engine: Engine, tenant: str) -> list[str]:
    """Every owner id with at least one version in the vault (a tombstone-only owner gets an empty bag)."""
    with engine.connect() as conn:
        return [r[0] for r in conn.execute(select(t.c.person).distinct().where(t.c.tenant == tenant)
                                           .order_by(t.c.person))]


def plan(engine: Engine, store: BlobStore, owner: BagOwner) -> _Plan:
    with engine.connect() as conn:
        versions = index.current(conn, store.tenant, owner.owner)
    p = _Plan(owner, versions)
    sized: dict[str, list[tuple[ItemVersion, int]]] = {}
    for v in versions:
        assert v.content_sha256 is not None  # current() gives live versions
        size = v.size if v.size is not None else store.size(v.content_sha256)  # rows older than migration 0011
        if size is None:
            raise BagError(f"{owner.kind} {owner.id}, {v.vertical} item {v.item_id!r}: its content (blob "
                           f"{v.content_sha256}) is not in the vault store")
        sized.setdefault(v.vertical, []).append((v, size))
        counts = p.verticals.setdefault(v.vertical, {"items": 0, "bytes": 0})
        counts["items"] += 1
        if item_kind(v) == "file":
            rel = f"data/{v.vertical}/files/{v.item_id}"
            p.files.append((rel, v, size))
            p.manifest[rel] = v.content_sha256
            counts["bytes"] += size
    for vertical, items in sized.items():
        data = json.dumps(_index(vertical, items), ensure_ascii=False, sort_keys=True).encode()
        rel = f"data/{vertical}/{INDEX}"
        p.indexes[rel] = data
        p.manifest[rel] = hashlib.sha256(data).hexdigest()
    return p


def _index(vertical: str, items: list[tuple[ItemVersion, int]]) -> dict[str, Any]:
    """The vertical's index.json: each item's record as ``archive/packing.py``'s ``record_of`` makes it, the whole
    index checked against the schema once, first by ``records.py``'s compiled check (the JSON Schema check
    costs ~1.3 ms an item, most of a bag's CPU), then, if that refuses it, exactly; when it fails, record by
    record, so metadata outside the schema goes verbatim in ``extra`` and an item the format cannot hold is
    named."""
    plain = [{**connector_metadata(v), "id": v.item_id, "path": v.path or v.item_id, "kind": item_kind(v),
              "sha256": v.content_sha256, "size": size} for v, size in items]
    doc = {"format_version": FORMAT_VERSION, "vertical": vertical, "items": sorted(plain, key=lambda r: r["id"])}
    fast = fast_check(vertical)
    if fast is not None and fast(doc):  # never more lenient than the exact check (records.py)
        return doc
    try:
        return index_document(vertical, plain)
    except BadItem:
        return index_document(vertical, [record_of(v, size) for v, size in items])


def tag_files(plan_: _Plan, tenant: str, source_org: str, total: int, count: int) -> list[tuple[str, bytes]]:
    """bagit.txt, bag-info.txt, manifest-sha256.txt and, last, tagmanifest-sha256.txt."""
    info = {"Source-Organization": source_org, "Bagging-Date": date.today().isoformat(),
            "Bag-Software-Agent": "Relais vault bag", "Relais-Format-Version": FORMAT_VERSION,
            "Relais-Tenant": tenant, **plan_.owner.bag_info(), "Payload-Oxum": f"{total}.{count}"}
    for k, v in info.items():
        if "\n" in v or "\r" in v:
            raise BagError(f"bag-info field {k} must be one line")
    tags = [("bagit.txt", f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n".encode()),
            ("bag-info.txt", "".join(f"{k}: {v}\n" for k, v in info.items()).encode()),
            ("manifest-sha256.txt", "".join(f"{h}  {_encode_manifest_path(p)}\n"
                                            for p, h in sorted(plan_.manifest.items())).encode())]
    tags.append(("tagmanifest-sha256.txt", "".join(f"{hashlib.sha256(d).hexdigest()}  {n}\n"
                                                   for n, d in tags).encode()))
    return tags


class _Run:
    def __init__(self, engine: Engine, store: BlobStore, target: BagTarget, *, actor: str, source_org: str,
                 progress: Progress | None) -> None:
        self.engine, self.store, self.target, self.actor = engine, store, target, actor
        self.source_org, self.progress = source_org, progress
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.done, self.bytes = 0, 0
        self.fatal: str | None = None

    def moved(self, n: int) -> None:
        with self.lock:
            self.bytes += n
            if self.progress is not None:
                self.progress(self.done, self.bytes)

    def one(self, owner: BagOwner) -> BagResult:
        result = BagResult(owner.bag_name, owner.kind, owner.id)
        try:
            if self.stop.is_set():
                raise BagError("not written: the run stopped")
            self._bag(owner, result)
        except StoreUnavailable as exc:
            self.fatal = str(exc)
            self.stop.set()
            result.error = str(exc)
        except (BagError, StoreError, TargetError, OSError, ValueError) as exc:
            result.error = str(exc)
            log.warning("bag %s failed (%s; the report says why)", owner.bag_name, type(exc).__name__)  # no item ids
        with self.lock:
            self.done += 1
        self.moved(0)
        if result.error:
            result.state = FAILED
        return result

    def _bag(self, owner: BagOwner, result: BagResult) -> None:
        p = plan(self.engine, self.store, owner)
        result.items, result.verticals = len(p.versions), p.verticals
        result.files = len(p.manifest)
        if not p.versions:  # every item deleted (tombstones): nothing to hand over, no bag
            result.state = EMPTY
            return
        reader = self.target.reader(owner.bag_name)
        if reader is not None:
            reason, there = self._same(reader, p)
            if there is not None:
                result.state, result.bytes, result.tagmanifest_sha256 = SKIPPED, there.bytes, there.tagmanifest_sha256
                return
            result.redone = reason
        self._log_reads(p.versions)
        writer_ = self.target.writer(owner.bag_name)
        try:
            total = self._payload(writer_, p)
            for name, data in tag_files(p, self.store.tenant, self.source_org, total, len(p.manifest)):
                writer_.add(name, [data], len(data))
                if name == "tagmanifest-sha256.txt":
                    result.tagmanifest_sha256 = hashlib.sha256(data).hexdigest()
            writer_.commit()
        except BaseException:
            writer_.abort()
            raise
        result.state, result.bytes = WRITTEN, total

    def _same(self, reader: BagReader, p: _Plan) -> tuple[str | None, CheckedBag | None]:
        """The bag there when it is whole, valid and holds what the plan says; else why it is redone."""
        try:
            bag = check_bag(reader)
        except (BagError, TargetError, OSError) as exc:
            return f"the bag there did not validate: {exc}", None
        finally:
            reader.close()
        self.moved(bag.bytes)
        if bag.first("Relais-Tenant") != self.store.tenant or any(
                bag.first(k) != v for k, v in p.owner.bag_info().items()):
            return "the bag there is another tenant's or owner's", None
        if bag.manifest != p.manifest:
            return "the vault's items changed since it was written", None
        return None, bag

    def _payload(self, w: BagWriter, p: _Plan) -> int:
        total = 0
        for rel, v, size in p.files:
            if self.stop.is_set():
                raise BagError("not finished: the run stopped")
            assert v.content_sha256 is not None
            digest, n = w.add(rel, self._counted(self.store.read_chunks(v.content_sha256)), size)
            if (digest, n) != (v.content_sha256, size):
                raise BagError(f"{p.owner.kind} {p.owner.id}, {v.vertical} item {v.item_id!r}: blob "
                               f"{v.content_sha256} of the vault store holds {n} bytes hashing to {digest}, not the "
                               f"{size} bytes indexed: the store's copy is damaged; the bag was not written")
            total += n
        for rel, data in p.indexes.items():
            w.add(rel, [data], len(data))
            total += len(data)
        return total

    def _counted(self, chunks: Iterable[bytes]) -> Iterable[bytes]:
        pending = 0
        for chunk in chunks:
            yield chunk
            pending += len(chunk)
            if pending >= 8 << 20:
                self.moved(pending)
                pending = 0
        self.moved(pending)

    def _log_reads(self, versions: list[ItemVersion]) -> None:
        """The reads in the access log, before the content leaves the vault (one transaction a bag)."""
        if not versions:
            return
        now = datetime.now(UTC)
        with writer(self.engine).begin() as conn:
            conn.execute(vault_access_log.insert(), [
                {"tenant": self.store.tenant, **entry(at=now, actor=self.actor, action=READ, person=v.person,
                                                      vertical=v.vertical, item_id=v.item_id, version=v.version)}
                for v in versions])


def bag(engine: Engine, store: BlobStore, target: BagTarget, *, owners_: Iterable[str] | None = None,
        workers: int = 4, actor: str = "vault-bag", source_org: str = "Relais",
        progress: Progress | None = None) -> BagRun:
    """Write the bag of each owner (vault owner ids: jointures, ``structure:<UAI>``; default every owner the
    vault has) to ``target``; bags already there, whole, valid and up to date are skipped."""
    started = time.monotonic()
    result = BagRun("bag", store.tenant, target.where)
    chosen = [owner_of(o) for o in (owners_ if owners_ is not None else owners(engine, store.tenant))]
    run = _Run(engine, store, target, actor=actor, source_org=source_org, progress=progress)
    with ThreadPoolExecutor(max_workers=max(1, workers), thread_name_prefix="vault-bag") as pool:
        result.results = list(pool.map(run.one, dict.fromkeys(chosen)))
    result.error = run.fatal
    result.seconds = time.monotonic() - started
    return result
