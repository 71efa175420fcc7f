"""``relais vault unbag``: bags of archive format 1.1 (or 1.0) read back into a vault, streaming.

Each bag is validated first, whole (``check.py``: every file hashed against its manifest, nothing missing,
nothing extra, Payload-Oxum), then its ``index.json`` per vertical is checked against the vertical's JSON
Schema and against the bag (every file item there with the sha256 and size it states, every file of
``files/`` an item): a bag that fails is refused, naming the file, before anything of it is stored. Then
each content goes to the vault store from the bag in chunks (hashed again on the way: a bag changed under
our feet stores nothing under a wrong name), and the owner's versions are indexed in one transaction:
an item the vault holds already, as it is, adds nothing, so reading a bag twice changes nothing.

The owner is the bag's ``Relais-Person-Jointure``, or ``structure:<UAI>`` for a structure's bag
(``rules/bag_owners.py``); its ``Relais-Tenant`` must be the vault's.
"""
from __future__ import annotations

import json
import logging
import time
from datetime import UTC, datetime
from typing import Any, BinaryIO, cast

from sqlalchemy import Engine

from connectors.sdk import BadItem, check_index
from relais.db import writer

from ..adapters import index
from ..adapters.blob_store import BlobStore, StoreError, StoreUnavailable
from ..archive.bagit import FORMAT_VERSION, BagError
from ..archive.packing import INDEX, LEGACY_INDEX, record_metadata
from ..rules.bag_owners import BadOwner, BagOwner, from_bag_info
from ..rules.item_ids import VERTICALS, refusal
from .check import CheckedBag, check_bag
from .report import FAILED, READ, BagResult, BagRun
from .streams import ChunkStream, ContentMismatch
from .targets import BagReader, BagTarget, TargetError, read_all

log = logging.getLogger("relais.vault.bags")

# vertical, item id, data/... path of its file (None: a folder), sha256, size, metadata, path
_Item = tuple[str, str, str | None, str, int, dict[str, Any], str | None]
EMPTY_SHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def _json(reader: BagReader, rel: str) -> Any:
    try:
        return json.loads(read_all(reader, rel).decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BagError(f"{reader.where}: {rel} is not UTF-8 JSON: {exc}") from None


def items_of(reader: BagReader, bag: CheckedBag) -> list[_Item]:
    """The bag's items, each checked against its index and the manifest; BagError naming the file."""
    version = bag.first("Relais-Format-Version") or "1.0"
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise BagError(f"{reader.where}: bag-info.txt Relais-Format-Version {version!r}: this reader reads format "
                       f"{FORMAT_VERSION.split('.')[0]}.x")
    sizes = reader.files()
    items: list[_Item] = []
    for vertical in VERTICALS:
        if f"data/{vertical}/{INDEX}" in bag.manifest:
            items += _index(reader, bag, vertical, sizes)
        elif f"data/{vertical}/{LEGACY_INDEX}" in bag.manifest:
            items += _legacy(reader, bag, vertical, sizes)
    known = {f"data/{v}/{name}" for v in VERTICALS for name in (INDEX, LEGACY_INDEX)}
    used = {i[2] for i in items if i[2]} | known
    for rel in sorted(bag.manifest.keys() - used):
        raise BagError(f"{reader.where}: {rel} is in the bag but no vertical's index lists it")
    return items


def _index(reader: BagReader, bag: CheckedBag, vertical: str, sizes: dict[str, int]) -> list[_Item]:
    rel = f"data/{vertical}/{INDEX}"
    doc = _json(reader, rel)
    try:
        check_index(vertical, doc)
    except BadItem as exc:
        raise BagError(f"{reader.where}: {rel}: {exc}") from None
    out: list[_Item] = []
    for r in doc["items"]:
        if r["kind"] != "file":
            out.append((vertical, r["id"], None, EMPTY_SHA256, 0, record_metadata(r), r["path"]))
            continue
        path = f"data/{vertical}/files/{r['id']}"
        if path not in bag.manifest:
            raise BagError(f"{reader.where}: {rel} lists {r['id']!r} but {path} is not in the bag")
        if bag.manifest[path] != r["sha256"]:
            raise BagError(f"{reader.where}: {path} does not match the sha256 {rel} gives it")
        if sizes.get(path) != r["size"]:
            raise BagError(f"{reader.where}: {path} is {sizes.get(path)} bytes, {rel} says {r['size']}")
        out.append((vertical, r["id"], path, r["sha256"], r["size"], record_metadata(r), r["path"]))
    return out


def _legacy(reader: BagReader, bag: CheckedBag, vertical: str, sizes: dict[str, int]) -> list[_Item]:
    rel = f"data/{vertical}/{LEGACY_INDEX}"
    doc = _json(reader, rel)
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), dict):
        raise BagError(f"{reader.where}: {rel}: expected an object with 'items', item id -> metadata")
    out: list[_Item] = []
    for item_id, meta in doc["items"].items():
        path = f"data/{vertical}/files/{item_id}"
        if path not in bag.manifest:
            raise BagError(f"{reader.where}: {rel} lists {item_id!r} but {path} is not in the bag")
        out.append((vertical, item_id, path, bag.manifest[path], sizes[path], meta, None))
    return out


def _unbag_one(engine: Engine, store: BlobStore, reader: BagReader, result: BagResult) -> None:
    bag = check_bag(reader)
    tenant = bag.first("Relais-Tenant")
    if tenant != store.tenant:
        raise BagError(f"{reader.where}: bag-info.txt Relais-Tenant {tenant!r} is not the vault's tenant "
                       f"{store.tenant!r}")
    try:
        owner: BagOwner = from_bag_info(bag.info, reader.where)
    except BadOwner as exc:
        raise BagError(str(exc)) from None
    result.kind, result.owner = owner.kind, owner.id
    items = items_of(reader, bag)
    for vertical, item_id, *_ in items:
        why = refusal(owner.owner, vertical, item_id, None)
        if why:
            raise BagError(f"{reader.where}: {vertical} item {item_id!r}: {why}")
    with engine.connect() as conn:
        epoch = index.blob_epoch(conn, store.tenant)
    for _vertical, _id, path, digest, size, _meta, _p in items:
        _store(store, reader, path, digest, size)
    with writer(engine).begin() as conn:
        if index.guard_blobs(conn, store.tenant) != epoch:  # an erasure or purge ran meanwhile
            for _vertical, _id, path, digest, size, _meta, _p in items:
                if not store.exists(digest):
                    _store(store, reader, path, digest, size)
        applied = index.append_many(conn, store.tenant, [
            (owner.owner, vertical, item_id, digest, meta, path_, size)
            for vertical, item_id, _rel, digest, size, meta, path_ in items], changed_at=datetime.now(UTC))
    result.items, result.files, result.bytes = len(items), bag.files, bag.bytes
    result.tagmanifest_sha256 = bag.tagmanifest_sha256
    result.new = sum(1 for a in applied if a.outcome == "new")
    result.unchanged = len(applied) - result.new
    for vertical, _id, _rel, _d, size, _m, _p in items:
        counts = result.verticals.setdefault(vertical, {"items": 0, "bytes": 0})
        counts["items"] += 1
        counts["bytes"] += size
    result.state = READ


def _store(store: BlobStore, reader: BagReader, path: str | None, digest: str, size: int) -> None:
    if path is None:
        if not store.exists(digest):
            store.put(b"")
        return
    if store.exists(digest):
        return
    what = f"{reader.where}: {path}"
    try:
        store.upload(digest, size, lambda: cast(BinaryIO, ChunkStream(reader.chunks(path), expect=(digest, size),
                                                                      what=what)))
    except ContentMismatch as exc:
        raise BagError(f"{exc}: it changed since the bag was validated; nothing of it stored") from None


def unbag(engine: Engine, store: BlobStore, source: BagTarget, *, names: list[str] | None = None) -> BagRun:
    """Read the bags ``names`` (default every whole bag there) into the tenant's vault (``store.tenant``)."""
    started = time.monotonic()
    run = BagRun("unbag", store.tenant, source.where)
    for name in names if names is not None else source.names():
        result = BagResult(name, "", "")
        run.results.append(result)
        try:
            reader = source.reader(name)
            if reader is None:
                raise BagError(f"{source.where}: no whole bag {name} (missing, or without its tag manifest)")
            try:
                _unbag_one(engine, store, reader, result)
            finally:
                reader.close()
        except StoreUnavailable as exc:
            result.state, result.error, run.error = FAILED, str(exc), str(exc)
            break
        except (BagError, StoreError, TargetError, OSError) as exc:
            result.state, result.error = FAILED, str(exc)
            log.warning("unbag %s failed (%s; the report says why)", name, type(exc).__name__)  # no item ids
    run.seconds = time.monotonic() - started
    return run
