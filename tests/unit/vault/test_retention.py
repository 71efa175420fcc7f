"""How long a deleted vault item stays restorable, and when it may be purged (services/vault/rules/retention.py)."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.vault.item_version import ItemVersion
from services.vault.rules.retention import (
    DEFAULT_DAYS,
    DEFAULT_PERIOD,
    Retention,
    check_days,
    in_force,
    purge_after,
    purgeable,
)
from services.vault.settings import VaultSettings

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def version(sha: str | None, purge: datetime | None = None) -> ItemVersion:
    return ItemVersion("ac-lyon", "2605692", "documents", "Cours/td.pdf", 3, sha, {}, purge)


def test_the_default_is_ninety_days_and_the_settings_default_is_it():
    assert DEFAULT_DAYS == 90 and DEFAULT_PERIOD == timedelta(days=90)
    assert VaultSettings.from_env({"RELAIS_DATA_DIR": "/nonexistent"}).retention_days == DEFAULT_DAYS
    assert VaultSettings.from_env({"RELAIS_DATA_DIR": "/nonexistent",
                                   "RELAIS_VAULT_RETENTION_DAYS": "30"}).retention_days == 30


def test_a_tenant_without_a_policy_gets_the_default():
    assert in_force(None) == Retention(timedelta(days=90), own=False)
    assert in_force(None, timedelta(days=30)) == Retention(timedelta(days=30), own=False)  # RELAIS_VAULT_RETENTION_DAYS


def test_a_tenant_policy_wins_over_the_default_even_zero_days():
    assert in_force(20, timedelta(days=30)) == Retention(timedelta(days=20), own=True)
    assert in_force(0) == Retention(timedelta(0), own=True)  # purge at the next run: a policy, not "no policy"


def test_negative_days_are_refused():
    assert check_days(0) == 0 and check_days(365) == 365
    with pytest.raises(ValueError, match="retention of -1 days: expected 0 or more"):
        check_days(-1)


def test_a_tombstone_is_restorable_until_its_deletion_plus_the_retention():
    deleted = datetime(2026, 9, 1, 8, 30, tzinfo=UTC)
    assert purge_after(deleted, in_force(None).period) == datetime(2026, 11, 30, 8, 30, tzinfo=UTC)
    assert purge_after(deleted, in_force(20).period) == datetime(2026, 9, 21, 8, 30, tzinfo=UTC)


def test_only_an_item_whose_newest_version_is_a_tombstone_past_its_date_may_be_purged():
    assert purgeable(version(None, NOW - timedelta(seconds=1)), NOW)
    assert purgeable(version(None, NOW), NOW)  # the date has come
    assert not purgeable(version(None, NOW + timedelta(seconds=1)), NOW)
    assert not purgeable(version("a" * 64), NOW)  # live (restored, say): never purged
    assert not purgeable(version(None, None), NOW)  # a tombstone with no date is kept
