"""Keyed pseudonyms: a person becomes, for one period, a value that counts them and names no one.

pseudonym = HMAC-SHA256(period key, tenant NUL person)[:16], written as 32 hex digits. The key is
32 random bytes drawn when the period's first event arrives and destroyed when the period closes:
within a period the same person always gives the same pseudonym (distinct users can be counted);
across periods the keys differ, so pseudonyms cannot be linked; once the key is gone, no one can
recompute a pseudonym from a person's id, not even with the database and this code.
128 bits make a collision between two people of an academy negligible (~1e-26 for 10^6 people).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_BYTES = 32
PSEUDONYM_BYTES = 16


def new_key() -> bytes:
    return secrets.token_bytes(KEY_BYTES)


def pseudonym(key: bytes, tenant: str, person: str) -> str:
    digest = hmac.new(key, f"{tenant}\x00{person}".encode(), hashlib.sha256).digest()
    return digest[:PSEUDONYM_BYTES].hex()
