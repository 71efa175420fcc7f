"""Checking what the `saml:` (our SP) and `idp:` (our IdP) configuration sections share.

Our key pairs (several at once, for rollover), the signing key among them,
durations in seconds within limits, flags, the contact e-mail, and lists of
id-named entries (IdPs, platforms). Each function notes every problem it finds
in `problems`, naming where it is, and returns what is usable so the checks can
go on: the caller raises `ConfigError` with all of them at once.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

from .keys import KeyPair

_ID = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def is_int(value: Any) -> bool:
    """An integer, not a boolean (YAML's true is an int to Python)."""
    return isinstance(value, int) and not isinstance(value, bool)


def signing_key_of(raw: dict, keys: tuple[KeyPair, ...], section: str, at: str,
                   problems: list[str]) -> KeyPair | None:
    """The section's `signing_key` among its `keys`, or its first key with signing: true when none is named."""
    wanted = raw.get("signing_key")
    if wanted is not None:
        signing_key = next((k for k in keys if k.id == wanted), None)
        if signing_key is None or not signing_key.signing:
            problems.append(f"{at}.signing_key: {wanted!r} is not a key of {section}.keys with signing: true")
        return signing_key
    if not keys:
        return None
    signing_key = next((k for k in keys if k.signing), None)
    if signing_key is None:
        problems.append(f"{at}.keys: at least one key must have signing: true")
    return signing_key


def seconds(raw: dict, at: str, problems: list[str], *limits: tuple[str, int, int, int]) -> dict[str, int]:
    """Durations in seconds, each (name, default, lowest, highest); the default stands in for a bad value."""
    numbers = {}
    for name, default, low, high in limits:
        value = raw.get(name, default)
        if not is_int(value) or not low <= value <= high:
            problems.append(f"{at}.{name}: an integer from {low} to {high} (seconds) is required, got {value!r}")
            value = default
        numbers[name] = value
    return numbers


def contact_email(raw: dict, at: str, problems: list[str]) -> str | None:
    contact = raw.get("contact_email")
    if contact is not None and (not isinstance(contact, str) or "@" not in contact):
        problems.append(f"{at}.contact_email: an e-mail address is required")
    return contact


def flag(raw: dict, name: str, default: bool, at: str, problems: list[str]) -> bool:
    """`raw[name]` as a boolean (`default` when absent)."""
    value = raw.get(name, default)
    if not isinstance(value, bool):
        problems.append(f"{at}.{name}: true or false, got {value!r}")
        return default
    return value


def optional_flag(raw: dict, name: str, at: str, problems: list[str]) -> bool | None:
    """`raw[name]` as a boolean, or None when absent or null (unset: the caller decides)."""
    value = raw.get(name)
    if value is not None and not isinstance(value, bool):
        problems.append(f"{at}.{name}: true or false, got {value!r}")
        return None
    return value


def entries(raw: list, at: str, problems: list[str],
            known: set[str] | frozenset[str]) -> Iterator[tuple[str, str, dict]]:
    """(where, id, mapping) of each well-formed entry of a list of id-named mappings.

    Each entry must be a mapping with known keys and an id of lower-case
    letters, digits, - and _, unique in the list; a problem is noted, naming
    the entry, for each that is not (an entry without a usable id is skipped).
    """
    seen: set[str] = set()
    for i, item in enumerate(raw):
        here = f"{at}[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{here}: must be a mapping")
            continue
        here = f"{here} ({item.get('id', '?')})"
        for key in sorted(set(item) - known):
            problems.append(f"{here}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        entry_id = item.get("id")
        if not isinstance(entry_id, str) or not _ID.fullmatch(entry_id):
            problems.append(f"{here}: id: lower-case letters, digits, - and _ are required")
            continue
        if entry_id in seen:
            problems.append(f"{here}: id: duplicate")
        seen.add(entry_id)
        yield here, entry_id, item


def key_pairs(raw: Any, at: str, problems: list[str], now: datetime, *,
              roles: tuple[str, ...] = ("signing", "encryption")) -> tuple[KeyPair, ...]:
    """Our key pairs (several at once, for rollover); each may take `roles`, true by default.

    The SP's keys sign and decrypt; the IdP's (idp/config.py) only sign.
    """
    known = {"id", "key_file", "cert_file", *roles}
    if not isinstance(raw, list) or not raw:
        problems.append(f"{at}: a list of at least one key pair (id, key_file, cert_file) is required")
        return ()
    out: list[KeyPair] = []
    for here, key_id, item in entries(raw, at, problems, known):
        flags = {name: flag(item, name, True, here, problems) if name in roles else False
                 for name in ("signing", "encryption")}
        key_file, cert_file = item.get("key_file"), item.get("cert_file")
        if not (isinstance(key_file, str) and key_file and isinstance(cert_file, str) and cert_file):
            problems.append(f"{here}: key_file and cert_file (paths to PEM files) are required")
            continue
        try:
            pair = KeyPair.load(key_id, Path(key_file), Path(cert_file), **flags)
        except ValueError as exc:
            problems.append(f"{here}: {exc}")
            continue
        if pair.certificate.not_after <= now:
            problems.append(f"{here}: cert_file {cert_file} expired on {pair.certificate.not_after:%Y-%m-%d}")
        out.append(pair)
    return tuple(out)
