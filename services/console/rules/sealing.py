"""Sealed tokens (pure): the session cookie and the references put in URLs instead of personal data.

Both are Fernet tokens (AES-CBC and HMAC-SHA256, with their time) under a key derived from the console's
secret and the token's purpose, so a reference cannot be replayed as a session. A URL never holds a
jointure or a name: `/people/<sealed jointure>`. CSRF tokens are random per session, compared in
constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
from typing import Any

from cryptography.fernet import Fernet, InvalidToken

SESSION, REFERENCE, STATE, PREVIEW = "session", "reference", "state", "preview"


def _fernet(secret: bytes, purpose: str) -> Fernet:
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(purpose.encode() + b"\0" + secret).digest()))


def seal(data: Any, secret: bytes, purpose: str, now: int) -> str:
    return _fernet(secret, purpose).encrypt_at_time(json.dumps(data, separators=(",", ":")).encode(), now).decode()


def unseal(token: str | None, secret: bytes, purpose: str, now: int, max_age_s: int | None = None) -> Any:
    """What `seal` sealed, or None: absent, altered, of another purpose, or older than `max_age_s`."""
    if not token:
        return None
    try:
        f = _fernet(secret, purpose)
        raw = (f.decrypt_at_time(token.encode(), max_age_s, now) if max_age_s is not None
               else f.decrypt(token.encode()))
        return json.loads(raw)
    except (InvalidToken, ValueError, UnicodeError):
        return None


def digest(text: str) -> str:
    """The SHA-256 of a text, its line ends made LF (browsers send CRLF): what a preview token vouches for."""
    return hashlib.sha256(text.replace("\r\n", "\n").encode()).hexdigest()


def new_token() -> str:
    return secrets.token_urlsafe(24)


def same(expected: str | None, given: str | None) -> bool:
    """Do two tokens match (both present, compared in constant time)?"""
    return bool(expected) and bool(given) and hmac.compare_digest(str(expected), str(given))


def session_alive(session: dict[str, Any], now: int, idle_s: int, max_s: int) -> bool:
    """Is a session still valid: used within `idle_s`, and signed in within `max_s`?"""
    try:
        return now - int(session["seen"]) < idle_s and now - int(session["iat"]) < max_s
    except (KeyError, TypeError, ValueError):
        return False
