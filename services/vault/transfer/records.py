"""How the vault keeps what connectors move. Plain Python, no I/O.

A version's metadata is the connector's item metadata (the vertical's fields, vendor fields in
``extra``) plus ``kind``, ``file`` or ``folder``, so an import can rebuild empty folders and
folder metadata. Items stored by continuous mode carry no ``kind``: they are files.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from connectors.sdk import ItemRef

from ..events import ITEM_MAX, PATH_MAX, PERSON_MAX
from ..model import ItemVersion, check_item


def vault_metadata(metadata: Mapping[str, Any], kind: str) -> dict:
    """What the vault keeps as an item's metadata: the connector's, as JSON, plus its ``kind``.
    TypeError or ValueError when the metadata is not JSON."""
    return json.loads(json.dumps({**dict(metadata), "kind": kind}, ensure_ascii=False, allow_nan=False))


def item_kind(v: ItemVersion) -> str:
    """``file`` or ``folder``."""
    return "folder" if v.metadata.get("kind") == "folder" else "file"


def connector_metadata(v: ItemVersion) -> dict:
    """The metadata to give back to a connector: the version's, without ``kind``."""
    return {k: val for k, val in v.metadata.items() if k != "kind"}


def refusal(ref: ItemRef) -> str | None:
    """Why the vault cannot index this item (ids too long for its index, unsafe id), or None."""
    if len(ref.owner) > PERSON_MAX:
        return f"person id longer than {PERSON_MAX} characters"
    if len(ref.id) > ITEM_MAX:
        return f"item id longer than {ITEM_MAX} characters"
    if ref.path and len(ref.path) > PATH_MAX:
        return f"path longer than {PATH_MAX} characters"
    try:
        if check_item(ref.vertical, ref.id) != ref.id:
            return "item id is not in Unicode NFC"
    except Exception as exc:  # noqa: BLE001 - BagError / ValueError: an unsafe path
        return f"item id refused: {exc}"
    return None
