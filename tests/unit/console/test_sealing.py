"""Sealed session cookies and URL references, CSRF comparison, session expiry (services/console/rules/sealing.py)."""

from __future__ import annotations

from services.console.rules.sealing import REFERENCE, SESSION, new_token, same, seal, session_alive, unseal

SECRET = b"s" * 40


def test_a_sealed_value_opens_with_its_secret_and_purpose_only():
    token = seal({"u": "D1"}, SECRET, SESSION, 1000)
    assert "D1" not in token  # encrypted, not only signed: no jointure readable in a URL or a cookie
    assert unseal(token, SECRET, SESSION, 1001) == {"u": "D1"}
    assert unseal(token, b"t" * 40, SESSION, 1001) is None
    assert unseal(token, SECRET, REFERENCE, 1001) is None  # a reference is no session
    assert unseal(token[:-3] + "AAA", SECRET, SESSION, 1001) is None
    assert unseal("", SECRET, SESSION, 1001) is None and unseal("garbage", SECRET, SESSION, 1001) is None


def test_a_sealed_value_expires():
    token = seal("1001", SECRET, REFERENCE, 1000)
    assert unseal(token, SECRET, REFERENCE, 1500, max_age_s=600) == "1001"
    assert unseal(token, SECRET, REFERENCE, 1700, max_age_s=600) is None


def test_csrf_tokens_are_random_and_compared_whole():
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 32
    assert same(a, a) and not same(a, b) and not same(a, None) and not same(None, None) and not same("", "")


def test_a_session_ends_when_idle_or_too_old():
    session = {"iat": 0, "seen": 1000}
    assert session_alive(session, 1500, idle_s=1800, max_s=28800)
    assert not session_alive(session, 2900, idle_s=1800, max_s=28800)  # unused for 1,900 s
    assert not session_alive({"iat": 0, "seen": 28790}, 28800, idle_s=1800, max_s=28800)  # signed in 8 h ago
    assert not session_alive({}, 10, idle_s=1800, max_s=28800)
