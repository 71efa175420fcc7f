"""When an SSO session ends (rules/session_lifetime.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from services.sso.rules.session_lifetime import session_end, why_ended

LOGIN = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def test_a_session_used_often_lives_until_its_absolute_end():
    end = session_end(LOGIN, 300)
    assert end == LOGIN + timedelta(seconds=300)
    for second in (50, 100, 150, 250, 299):
        now = LOGIN + timedelta(seconds=second)
        assert why_ended(now, ends_at=end, last_seen_at=now - timedelta(seconds=50), session_idle=60) is None
    assert why_ended(LOGIN + timedelta(seconds=300), ends_at=end, last_seen_at=LOGIN + timedelta(seconds=299),
                     session_idle=60) == "expired"


def test_a_session_left_idle_ends_before_its_absolute_end():
    end = session_end(LOGIN, 28800)
    assert why_ended(LOGIN + timedelta(seconds=59), ends_at=end, last_seen_at=LOGIN, session_idle=60) is None
    assert why_ended(LOGIN + timedelta(seconds=60), ends_at=end, last_seen_at=LOGIN,
                     session_idle=60) == "idle too long"
    # past both: told as expired
    assert why_ended(end, ends_at=end, last_seen_at=LOGIN, session_idle=60) == "expired"
