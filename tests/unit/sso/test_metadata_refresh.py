"""When a trusted IdP's metadata is read again (rules/metadata_refresh.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.sso.rules.metadata_refresh import RETRY_AFTER_FAILURE, next_refresh

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def when(**kwargs) -> timedelta:
    options = {"refresh_interval": HOUR, "succeeded": True, "cache_duration": None, "valid_until": None, **kwargs}
    return next_refresh(NOW, **options) - NOW


def test_every_refresh_interval_unless_the_metadata_says_sooner():
    assert when() == HOUR
    assert when(cache_duration=timedelta(minutes=10)) == timedelta(minutes=10)
    assert when(cache_duration=timedelta(days=2)) == HOUR
    assert when(valid_until=NOW + timedelta(minutes=40)) == timedelta(minutes=20)  # halfway to validUntil
    assert when(valid_until=NOW + timedelta(days=10)) == HOUR


def test_never_more_often_than_once_a_minute():
    assert when(cache_duration=timedelta(seconds=5)) == timedelta(seconds=60)
    assert when(valid_until=NOW + timedelta(seconds=30)) == timedelta(seconds=60)


def test_after_a_failure_again_within_five_minutes():
    assert RETRY_AFTER_FAILURE == timedelta(minutes=5)
    assert when(succeeded=False) == timedelta(minutes=5)
    assert when(succeeded=False, refresh_interval=timedelta(minutes=2)) == timedelta(minutes=2)
    assert when(succeeded=False, cache_duration=timedelta(minutes=1)) == timedelta(minutes=1)
