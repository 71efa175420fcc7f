"""How the vault keeps what connectors move: an item's metadata and kind. Plain Python, no I/O.

A version's metadata is the connector's item metadata (the vertical's fields, vendor fields in
``extra``) plus ``kind``, ``file`` or ``folder``, so an import can rebuild empty folders and
folder metadata. Items stored by continuous mode carry no ``kind``: they are files.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from ..item_version import ItemVersion


def vault_metadata(metadata: Mapping[str, Any], kind: str) -> dict:
    """What the vault keeps as an item's metadata: the connector's, as JSON, plus its ``kind``.
    TypeError or ValueError when the metadata is not JSON."""
    return json.loads(json.dumps({**dict(metadata), "kind": kind}, ensure_ascii=False, allow_nan=False))


def item_kind(v: ItemVersion) -> Literal["file", "folder"]:
    """``file`` or ``folder``."""
    return "folder" if v.metadata.get("kind") == "folder" else "file"


def connector_metadata(v: ItemVersion) -> dict:
    """The metadata to give back to a connector: the version's, without ``kind``."""
    return {k: val for k, val in v.metadata.items() if k != "kind"}
