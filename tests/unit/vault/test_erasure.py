"""What an erasure or a purge removes, and what the erasure's audit event says
(services/vault/rules/erasure.py, services/vault/rules/blob_deletion.py)."""
from __future__ import annotations

import pytest

from services.vault.rules.blob_deletion import BlobsToDelete, blobs_to_delete, content_sizes
from services.vault.rules.erasure import AUDIT_EVENT, audit_payload, check_requester

A, B, C = "a" * 64, "b" * 64, "c" * 64


def test_each_content_counts_once_tombstones_none():
    rows = [(A, 10), (A, 10), (B, 5), (None, None), (C, None)]  # C: a row written before sizes were kept
    assert content_sizes(rows) == {A: 10, B: 5, C: 0}
    assert content_sizes([(A, 3), (A, 7)]) == {A: 7}


def test_blobs_someone_else_references_stay():
    sizes = {C: 1, A: 10, B: 5}
    plan = blobs_to_delete(sizes, still_referenced={B})  # B: a worksheet another pupil holds
    assert plan == BlobsToDelete(digests=[A, C], kept=1, bytes=11)
    assert blobs_to_delete(sizes, set()).digests == [A, B, C]
    assert blobs_to_delete({}, {A}) == BlobsToDelete([], 0, 0)


def test_someone_must_order_an_erasure():
    assert check_requester("dpo:request-2026-114") == "dpo:request-2026-114"
    for nobody in ("", "   "):
        with pytest.raises(ValueError, match="say who orders the erasure"):
            check_requester(nobody)


def test_the_audit_event_carries_counts_and_opaque_ids_only():
    payload = audit_payload("2605692", "dpo:request-2026-114", versions=4, items=2,
                            blobs=BlobsToDelete([A, C], kept=1, bytes=11))
    assert AUDIT_EVENT == "vault.person.erased"
    assert payload == {"person": "2605692", "actor": "dpo:request-2026-114", "versions": 4, "items": 2,
                       "blobs_deleted": 2, "blobs_kept": 1, "bytes_deleted": 11}
