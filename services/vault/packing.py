"""Pack a person's current items into a bag, and unpack a validated bag into a vault."""
from __future__ import annotations

import json
from pathlib import Path

from .bagit import BagError, validate_bag, write_bag
from .model import VERTICALS, Vault

ITEMS_INDEX = "relais-items.json"  # data/<vertical>/relais-items.json: item_id -> metadata


def pack_person(vault: Vault, person: str, root: Path, source_org: str = "Relais") -> Path:
    payload: dict[str, bytes] = {}
    indexes: dict[str, dict] = {}
    for v in vault.current(person):
        payload[f"{v.vertical}/files/{v.item_id}"] = vault.read(v)
        indexes.setdefault(v.vertical, {})[v.item_id] = v.metadata
    for vertical, idx in indexes.items():
        payload[f"{vertical}/{ITEMS_INDEX}"] = json.dumps(
            {"format_version": "1.0", "items": idx}, ensure_ascii=False, sort_keys=True).encode()
    write_bag(root, payload, {"Source-Organization": source_org, "Relais-Tenant": vault.tenant,
                              "Relais-Person-Jointure": person})
    return root


def unpack_bag(vault: Vault, root: Path) -> int:
    """Validate ``root`` then store its items for the bag's person; returns the item count."""
    bag = validate_bag(root)
    tenant = bag.info.get("Relais-Tenant", [None])[0]
    if tenant != vault.tenant:
        raise BagError(f"bag-info.txt Relais-Tenant {tenant!r} does not match vault tenant {vault.tenant!r}")
    person = bag.info.get("Relais-Person-Jointure", [None])[0]
    if not person:
        raise BagError("bag-info.txt lacks Relais-Person-Jointure")
    n = 0
    for vertical in VERTICALS:
        idx_rel = f"{vertical}/{ITEMS_INDEX}"
        if idx_rel not in bag.manifest:
            continue
        items = json.loads(bag.payload_path(idx_rel).read_text(encoding="utf-8"))["items"]
        for item_id, meta in items.items():
            rel = f"{vertical}/files/{item_id}"
            if rel not in bag.manifest:
                raise BagError(f"{idx_rel} lists {item_id!r} but data/{rel} is not in the bag")
            vault.put(person, vertical, item_id, bag.payload_path(rel).read_bytes(), meta)
            n += 1
    return n
