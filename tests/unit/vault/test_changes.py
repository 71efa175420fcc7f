"""What a reported change does to a vault item: new version, unchanged or stale (services/vault/rules/changes.py)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.vault.item_version import ItemVersion
from services.vault.rules.changes import NEW, STALE, UNCHANGED, plan_change

T = datetime(2026, 10, 5, 9, 0, tzinfo=UTC)
A, B = "a" * 64, "b" * 64


def latest(sha: str | None = A, metadata: dict | None = None, path: str | None = "Cours/td.pdf",
           changed_at: datetime | None = T) -> ItemVersion:
    return ItemVersion("ac-lyon", "2605692", "documents", "doc-81f3", 2, sha,
                       {"title": "TD"} if metadata is None else metadata, None, path, 10, changed_at)


def test_the_first_state_of_an_item_is_a_new_version():
    assert plan_change(None, A, {}, None, T) == NEW
    assert plan_change(None, None, {}, None, T) == NEW  # a deletion of an item never seen: a tombstone


def test_the_same_content_metadata_and_path_add_nothing():
    assert plan_change(latest(), A, {"title": "TD"}, "Cours/td.pdf", T + timedelta(hours=1)) == UNCHANGED


def test_other_content_metadata_or_path_is_a_new_version():
    later = T + timedelta(minutes=5)
    assert plan_change(latest(), B, {"title": "TD"}, "Cours/td.pdf", later) == NEW
    assert plan_change(latest(), A, {"title": "TD 2"}, "Cours/td.pdf", later) == NEW
    assert plan_change(latest(), A, {"title": "TD"}, "Archives/td.pdf", later) == NEW
    assert plan_change(latest(), None, {}, None, later) == NEW  # a deletion of a live item


def test_a_change_older_than_the_latest_is_stale_whatever_it_says():
    earlier = T - timedelta(seconds=1)
    assert plan_change(latest(), B, {}, "x", earlier) == STALE
    assert plan_change(latest(sha=None), A, {}, None, earlier) == STALE  # an old change does not undo a deletion
    assert plan_change(latest(), None, {}, None, earlier) == STALE  # nor an old deletion a newer change


def test_order_is_checked_only_when_both_times_are_known():
    assert plan_change(latest(), B, {}, None, T) == NEW  # at the same time: not older
    assert plan_change(latest(), B, {}, None, None) == NEW  # no time given (an export): applied
    assert plan_change(latest(changed_at=None), B, {}, None, T - timedelta(days=1)) == NEW  # a row before 0011


def test_a_tombstone_over_a_tombstone_is_unchanged_whatever_it_says():
    tomb = latest(sha=None, metadata={}, path="Cours/td.pdf")
    assert plan_change(tomb, None, {"anything": 1}, "elsewhere", T + timedelta(days=1)) == UNCHANGED
