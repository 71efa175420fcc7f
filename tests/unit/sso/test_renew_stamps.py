"""CAS renew=true: only a login made after the request satisfies it (rules/renew_stamps.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from services.sso.rules.renew_stamps import ForgedStamp, logged_in_after, renew_stamp

SECRET = b"s" * 40
ASKED = datetime(2026, 9, 1, 8, 0, 0, 250000, tzinfo=UTC)


def test_a_login_at_or_after_the_request_is_fresh_an_older_one_is_not():
    stamp = renew_stamp(ASKED, SECRET)
    assert stamp.startswith("1788249600250.")  # milliseconds: a login in the same second is not "after"
    assert logged_in_after(stamp, ASKED, SECRET)
    assert logged_in_after(stamp, ASKED + timedelta(seconds=3), SECRET)
    assert not logged_in_after(stamp, ASKED - timedelta(milliseconds=1), SECRET)
    assert not logged_in_after(None, ASKED, SECRET) and not logged_in_after("", ASKED, SECRET)
    assert not logged_in_after("nodot", ASKED, SECRET)


def test_a_stamp_we_did_not_sign_is_refused():
    stamp = renew_stamp(ASKED, SECRET)
    moment, mac = stamp.split(".")
    for forged in (f"{int(moment) - 60_000}.{mac}", f"{moment}.{'0' * 32}", f"x{moment}.{mac}",
                   renew_stamp(ASKED, b"t" * 40)):
        with pytest.raises(ForgedStamp):
            logged_in_after(forged, ASKED + timedelta(hours=1), SECRET)
