"""Mailbox names on the wire: IMAP's modified UTF-7 (RFC 3501 §5.1.3)."""
from __future__ import annotations

import base64
import re

_SHIFTED = re.compile(r"&([^-]*)-")


def encode(name: str) -> str:
    """``"Réunions"`` -> ``"R&AOk-unions"``."""
    out: list[str] = []
    pending: list[str] = []

    def flush() -> None:
        if pending:
            raw = "".join(pending).encode("utf-16-be")
            out.append("&" + base64.b64encode(raw).decode("ascii").rstrip("=").replace("/", ",") + "-")
            pending.clear()

    for ch in name:
        if 0x20 <= ord(ch) <= 0x7E:
            flush()
            out.append("&-" if ch == "&" else ch)
        else:
            pending.append(ch)
    flush()
    return "".join(out)


def decode(name: str) -> str:
    """``"R&AOk-unions"`` -> ``"Réunions"``; a malformed shift raises ValueError naming the name."""
    def one(match: re.Match[str]) -> str:
        body = match.group(1)
        if not body:
            return "&"
        raw = body.replace(",", "/")
        try:
            return base64.b64decode(raw + "=" * (-len(raw) % 4)).decode("utf-16-be")
        except (ValueError, UnicodeDecodeError):
            raise ValueError(f"mailbox name {name!r} is not valid modified UTF-7") from None

    return _SHIFTED.sub(one, name)
