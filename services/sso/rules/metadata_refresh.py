"""When a trusted IdP's metadata is read again (pure).

Every `refresh_interval`; sooner when the metadata says so: its `cacheDuration`,
or halfway to its `validUntil` (so a fresh copy is in force before it expires),
but never more often than once a minute. After a failed refresh, again within
`RETRY_AFTER_FAILURE`; the metadata in force is kept meanwhile.
"""

from __future__ import annotations

from datetime import datetime, timedelta

RETRY_AFTER_FAILURE = timedelta(minutes=5)
_AT_LEAST = timedelta(seconds=60)


def next_refresh(now: datetime, *, refresh_interval: timedelta, succeeded: bool, cache_duration: timedelta | None,
                 valid_until: datetime | None) -> datetime:
    """The moment of the next refresh; `cache_duration` and `valid_until` are the metadata's in force (if any)."""
    interval = refresh_interval
    if not succeeded:
        interval = min(interval, RETRY_AFTER_FAILURE)
    if cache_duration is not None:
        interval = min(interval, max(cache_duration, _AT_LEAST))
    if valid_until is not None:
        interval = min(interval, max((valid_until - now) / 2, _AT_LEAST))
    return now + interval
