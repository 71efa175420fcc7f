"""The key of the keyed hash that names a person in the erasure audit trail.

`subject_hash(key, tenant, jointure)` is HMAC-SHA256 over the tenant and the jointure, in hex: the
audit trail and the directory's erasure marks hold it instead of the jointure. With the key, one can
answer "was this jointure erased?" (the directory's next import does); without it, a copy of the
database cannot brute-force the jointures (a few million guesses would do against a plain hash).

The key: RELAIS_SUBJECT_KEY (64 hex digits), which every host of a deployment must share; else
`$RELAIS_DATA_DIR/subject.key`, drawn on first use (mode 0600), for a deployment on one host.
Never in the database.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections.abc import Mapping
from pathlib import Path

from relais.config import Settings

KEY_ENV = "RELAIS_SUBJECT_KEY"
KEY_FILE = "subject.key"
KEY_BYTES = 32


class SubjectKeyError(ValueError):
    """The key is not usable; the message says which setting and why (never the key)."""


def subject_hash(key: bytes, tenant: str, jointure: str) -> str:
    """64 hex digits naming `jointure` of `tenant` for whoever holds `key`, and no one else."""
    return hmac.new(key, f"relais:subject:v1\x00{tenant}\x00{jointure}".encode(), hashlib.sha256).hexdigest()


def subject_key(settings: Settings, env: Mapping[str, str] | None = None) -> bytes:
    """The deployment's key: RELAIS_SUBJECT_KEY, else the data folder's key file (made on first use)."""
    env = os.environ if env is None else env
    raw = env.get(KEY_ENV)
    if raw:
        try:
            key = bytes.fromhex(raw.strip())
        except ValueError:
            raise SubjectKeyError(f"{KEY_ENV}: must be {2 * KEY_BYTES} hexadecimal digits") from None
        if len(key) != KEY_BYTES:
            raise SubjectKeyError(f"{KEY_ENV}: must be {2 * KEY_BYTES} hexadecimal digits, not {2 * len(key)}")
        return key
    return _key_file(settings.data_dir / KEY_FILE)


def _key_file(path: Path) -> bytes:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process drew it meanwhile
            pass
        else:
            with os.fdopen(fd, "w") as f:
                f.write(secrets.token_hex(KEY_BYTES) + "\n")
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise SubjectKeyError(f"{path}: not a readable key of {2 * KEY_BYTES} hexadecimal digits "
                              f"({type(exc).__name__}); restore it, or set {KEY_ENV}") from None
    if len(key) != KEY_BYTES:
        raise SubjectKeyError(f"{path}: must hold {2 * KEY_BYTES} hexadecimal digits; restore it, or set {KEY_ENV}")
    return key
