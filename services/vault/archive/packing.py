"""Pack a person's current items into a bag of archive format 1.1 (contracts/vault/SPEC.md §3), and unpack a
validated bag, 1.1 or 1.0, into a vault.

Format 1.1: per vertical, ``data/<vertical>/index.json`` (one record per item, checked against the vertical's
JSON Schema; :func:`connectors.sdk.index_document` builds it) and ``data/<vertical>/files/<item id>`` for each
file item; folders have no file. Format 1.0 (Relais' first bags): ``data/<vertical>/relais-items.json``, item
id -> metadata, every item a file.

A record is the item's metadata plus ``id``, ``path``, ``kind``, ``sha256`` and ``size``. Continuous mode keeps
the metadata an ENT reports verbatim, which need not fit the schema (records are closed, fields have types);
such metadata travels whole, untouched, in the record's ``extra`` under :data:`VAULT_METADATA`, so that the
bag is valid and nothing is lost. An item whose vertical requires a field its metadata does not give (a
calendar object's ``media_type``, a homework entry's ``entry_type``) is refused, naming it: nothing is
invented. Unpacked, an item gets its metadata back, with ``kind`` (a 1.1 record always states it).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from connectors.sdk import BadItem, check_index, check_record, index_document

from ..item_version import ItemVersion
from ..items import Vault
from ..rules.item_ids import VERTICALS
from ..rules.item_metadata import connector_metadata, item_kind
from .bagit import FORMAT_VERSION, Bag, BagError, validate_bag, write_bag

INDEX = "index.json"  # data/<vertical>/index.json (format 1.1)
LEGACY_INDEX = "relais-items.json"  # data/<vertical>/relais-items.json: item_id -> metadata (format 1.0)
VAULT_METADATA = "relais:vault-metadata"  # key in a record's extra: metadata the schema cannot hold, verbatim
_RECORD_ONLY = ("id", "path", "sha256", "size")  # record fields that are not the item's metadata


def item_record(v: ItemVersion, data: bytes) -> dict[str, Any]:
    """The index.json record of a live version whose content is ``data``."""
    return record_of(v, len(data))


def record_of(v: ItemVersion, size: int) -> dict[str, Any]:
    """The index.json record of a live version whose content is ``size`` bytes (without reading it)."""
    base = {"id": v.item_id, "path": v.path or v.item_id, "kind": item_kind(v), "sha256": v.content_sha256,
            "size": size}
    record = {**connector_metadata(v), **base}
    try:
        check_record(v.vertical, record)
        return record
    except BadItem:
        pass
    verbatim = {**base, "extra": {VAULT_METADATA: v.metadata}}
    try:
        check_record(v.vertical, verbatim)
    except BadItem as exc:  # the vertical requires fields (a calendar object's media_type) nobody gave
        raise BagError(f"person {v.person}, {v.vertical} item {v.item_id!r} cannot be written in format "
                       f"{FORMAT_VERSION}: {exc}") from None
    return verbatim


def pack_person(vault: Vault, person: str, root: Path, source_org: str = "Relais") -> Path:
    """Write ``root``, a bag of format 1.1 holding every live item of ``person``."""
    payload: dict[str, bytes] = {}
    records: dict[str, list[dict[str, Any]]] = {}
    for v in vault.current(person):
        data = vault.read(v)
        record = item_record(v, data)
        if record["kind"] == "file":
            payload[f"{v.vertical}/files/{v.item_id}"] = data
        records.setdefault(v.vertical, []).append(record)
    for vertical, items in records.items():
        payload[f"{vertical}/{INDEX}"] = json.dumps(index_document(vertical, items), ensure_ascii=False,
                                                    sort_keys=True).encode()
    write_bag(root, payload, {"Source-Organization": source_org, "Relais-Tenant": vault.tenant,
                              "Relais-Person-Jointure": person})
    return root


def unpack_bag(vault: Vault, root: Path) -> int:
    """Validate ``root`` then store its items for the bag's person; returns the item count.

    Every file of ``data/<vertical>/files/`` must be an item of the vertical's index, and every file item of
    the index must be there with the sha256 and size it states: a bag that does not say the same thing in
    both places is refused, naming the file, before anything is stored."""
    bag = validate_bag(root)
    tenant = bag.info.get("Relais-Tenant", [None])[0]
    if tenant != vault.tenant:
        raise BagError(f"bag-info.txt Relais-Tenant {tenant!r} does not match vault tenant {vault.tenant!r}")
    person = bag.info.get("Relais-Person-Jointure", [None])[0]
    if not person:
        raise BagError("bag-info.txt lacks Relais-Person-Jointure")
    version = bag.info.get("Relais-Format-Version", ["1.0"])[0]
    if version.split(".")[0] != FORMAT_VERSION.split(".")[0]:
        raise BagError(f"bag-info.txt Relais-Format-Version {version!r}: this reader reads format "
                       f"{FORMAT_VERSION.split('.')[0]}.x")
    items: list[tuple[str, str, bytes, dict, str | None]] = []  # vertical, id, content, metadata, path
    for vertical in VERTICALS:
        if f"{vertical}/{INDEX}" in bag.manifest:
            items += _read_index(bag, vertical)
        elif f"{vertical}/{LEGACY_INDEX}" in bag.manifest:
            items += _read_legacy_index(bag, vertical)
    for vertical, item_id, data, metadata, path in items:
        vault.put(person, vertical, item_id, data, metadata, path=path)
    return len(items)


def _load_json(bag: Bag, rel: str) -> Any:
    try:
        return json.loads(bag.payload_path(rel).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise BagError(f"data/{rel} is not UTF-8 JSON: {exc}") from None


def _read_index(bag: Bag, vertical: str) -> list[tuple[str, str, bytes, dict, str | None]]:
    rel = f"{vertical}/{INDEX}"
    doc = _load_json(bag, rel)
    try:
        check_index(vertical, doc)
    except BadItem as exc:
        raise BagError(f"data/{rel}: {exc}") from None
    files = f"{vertical}/files/"
    listed = {f"{files}{r['id']}" for r in doc["items"] if r["kind"] == "file"}
    for unlisted in sorted(p for p in bag.manifest if p.startswith(files) and p not in listed):
        raise BagError(f"data/{unlisted} is in the bag but data/{rel} has no file item {unlisted[len(files):]!r}")
    out: list[tuple[str, str, bytes, dict, str | None]] = []
    for r in doc["items"]:
        data = b""
        if r["kind"] == "file":
            path = f"{files}{r['id']}"
            if path not in bag.manifest:
                raise BagError(f"data/{rel} lists {r['id']!r} but data/{path} is not in the bag")
            if bag.manifest[path] != r["sha256"]:
                raise BagError(f"data/{path} does not match the sha256 data/{rel} gives it")
            data = bag.payload_path(path).read_bytes()
            if len(data) != r["size"]:
                raise BagError(f"data/{path} is {len(data)} bytes, data/{rel} says {r['size']}")
        out.append((vertical, r["id"], data, record_metadata(r), r["path"]))
    return out


def record_metadata(record: dict[str, Any]) -> dict[str, Any]:
    """What the vault keeps of a record: the verbatim metadata Relais put in ``extra``, else the record's
    fields but those the index row holds (id, path, sha256, size)."""
    extra = record.get("extra")
    if isinstance(extra, dict) and set(extra) == {VAULT_METADATA} and isinstance(extra[VAULT_METADATA], dict):
        return extra[VAULT_METADATA]
    return {k: v for k, v in record.items() if k not in _RECORD_ONLY}


def _read_legacy_index(bag: Bag, vertical: str) -> list[tuple[str, str, bytes, dict, str | None]]:
    rel = f"{vertical}/{LEGACY_INDEX}"
    doc = _load_json(bag, rel)
    if not isinstance(doc, dict) or not isinstance(doc.get("items"), dict):
        raise BagError(f"data/{rel}: expected an object with 'items', item id -> metadata")
    out: list[tuple[str, str, bytes, dict, str | None]] = []
    for item_id, meta in doc["items"].items():
        path = f"{vertical}/files/{item_id}"
        if path not in bag.manifest:
            raise BagError(f"data/{rel} lists {item_id!r} but data/{path} is not in the bag")
        out.append((vertical, item_id, bag.payload_path(path).read_bytes(), meta, None))
    return out
