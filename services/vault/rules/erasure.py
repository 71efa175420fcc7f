"""What an erasure (a right-to-erasure request) removes, and what its audit event says.

- It removes every version of every item of the person, and every blob no other person of the
  tenant references (`blob_deletion`: shared blobs stay).
- The access log keeps who accessed the person's data and when, without the item ids
  (`access_log.FORGOTTEN_ON_ERASURE`).
- Someone must order it (an operator, a DPO request reference): the audit event
  `vault.person.erased` names them, with counts and opaque ids only (no item id, path or name).
"""
from __future__ import annotations

from typing import Any

from .blob_deletion import BlobsToDelete

AUDIT_EVENT = "vault.person.erased"


def check_requester(actor: str) -> str:
    """Who orders the erasure; ValueError when nobody is named."""
    if not actor.strip():
        raise ValueError("say who orders the erasure (an operator or DPO reference): it goes in the audit event")
    return actor


def audit_payload(person: str, actor: str, *, versions: int, items: int, blobs: BlobsToDelete) -> dict[str, Any]:
    """The payload of `vault.person.erased`: counts of versions, items, blobs deleted and kept, bytes."""
    return {"person": person, "actor": actor, "versions": versions, "items": items,
            "blobs_deleted": len(blobs.digests), "blobs_kept": blobs.kept, "bytes_deleted": blobs.bytes}
