"""Pseudonymous identifiers for resource platforms (rules/pseudonyms.py)."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from services.sso.rules.pseudonyms import persistent_name_id, secret_fingerprint, session_index

SECRET = b"a deployment secret of at least 32 bytes"
MATHS, HISTORY = "https://maths.example/sp", "https://history.example/sp"


def test_the_nameid_is_the_documented_formula():
    mac = hmac.new(SECRET, b"relais:saml-nameid:v1\0" + MATHS.encode() + b"\0" + b"2605692", hashlib.sha256)
    expected = base64.b32encode(mac.digest()).decode().rstrip("=").lower()
    assert persistent_name_id(SECRET, MATHS, "2605692") == expected
    assert len(expected) == 52 and expected == expected.lower() and "=" not in expected


def test_stable_per_platform_unrelated_across_platforms_and_secrets():
    one = persistent_name_id(SECRET, MATHS, "2605692")
    assert persistent_name_id(SECRET, MATHS, "2605692") == one
    assert persistent_name_id(SECRET, HISTORY, "2605692") != one
    assert persistent_name_id(SECRET, MATHS, "2605693") != one
    assert persistent_name_id(b"another deployment secret, 32 bytes+", MATHS, "2605692") != one


def test_ambiguous_or_empty_inputs_are_refused():
    for entity, jointure in ((MATHS, ""), ("", "1"), (MATHS + "\0x", "1"), (MATHS, "1\0")):
        with pytest.raises(ValueError):
            persistent_name_id(SECRET, entity, jointure)


def test_a_session_index_per_session_and_platform():
    index = session_index(SECRET, "a1b2c3d4e5f60718", MATHS)
    assert index.startswith("_") and len(index) == 41 and index == session_index(SECRET, "a1b2c3d4e5f60718", MATHS)
    assert session_index(SECRET, "a1b2c3d4e5f60718", HISTORY) != index
    assert session_index(SECRET, "ffffffffffffffff", MATHS) != index
    mac = hmac.new(SECRET, b"relais:idp-session-index:v1\0a1b2c3d4e5f60718\0" + MATHS.encode(), hashlib.sha256)
    assert index == "_" + mac.hexdigest()[:40]


def test_a_fingerprint_names_a_secret_without_revealing_it():
    fingerprint = secret_fingerprint(SECRET)
    assert len(fingerprint) == 64 and fingerprint == secret_fingerprint(SECRET)
    assert fingerprint != secret_fingerprint(SECRET + b"!") and SECRET.hex() not in fingerprint
