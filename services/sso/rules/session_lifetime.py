"""When an SSO session ends (pure): `session_idle` seconds after its last use, or `session_max` seconds
after the login, whichever comes first (`lifetimes:` in the configuration)."""

from __future__ import annotations

from datetime import datetime, timedelta


def session_end(logged_in_at: datetime, session_max: int) -> datetime:
    """The absolute end of a session opened at `logged_in_at`: it ends then, used or not."""
    return logged_in_at + timedelta(seconds=session_max)


def why_ended(now: datetime, *, ends_at: datetime, last_seen_at: datetime, session_idle: int) -> str | None:
    """Why a session is over at `now` ("expired": past its end; "idle too long"), or None while it lives."""
    if now >= ends_at:
        return "expired"
    if now >= last_seen_at + timedelta(seconds=session_idle):
        return "idle too long"
    return None
