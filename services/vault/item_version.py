"""One version of an item, as the vault keeps it. Plain Python, no I/O.

An item is one thing of a person in one vertical (a document, a calendar, a contact book...),
named by the ENT's stable id for it. Each change the vault keeps is a new version; a deletion
is a version with no content, a *tombstone*, kept until `purge_after` and restorable until then
(`rules/retention.py`). Content lives in the tenant's blob store, by sha256; the database only
indexes it (`adapters/index.py`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime


@dataclass(frozen=True)
class ItemVersion:
    tenant: str
    person: str
    vertical: str
    item_id: str
    version: int
    content_sha256: str | None  # None = tombstone
    metadata: dict = field(default_factory=dict)
    purge_after: datetime | None = None
    path: str | None = None
    size: int | None = None
    changed_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def deleted(self) -> bool:
        return self.content_sha256 is None

    def to_dict(self) -> dict:
        """JSON-ready, for `--json` output and RPC answers."""
        return {"person": self.person, "vertical": self.vertical, "item": self.item_id, "version": self.version,
                "deleted": self.deleted, "sha256": self.content_sha256, "size": self.size, "path": self.path,
                "metadata": self.metadata, "changed_at": _iso(self.changed_at), "created_at": _iso(self.created_at),
                "purge_after": _iso(self.purge_after)}


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
