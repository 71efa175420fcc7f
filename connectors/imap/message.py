"""What an RFC 5322 message says about itself, and the item key it gets in its folder. No I/O.

A message's item id is ``<folder>/<key>.eml``: the key is the first 24 hex digits of the sha256 of
its ``Message-ID`` (of its whole header block when it has none), so the same message has the same id
on every server it is copied to, and keeps it when its bytes change (a new flag, an edited draft).
Two messages of one folder with the same key are told apart by ``-2``, ``-3``... in UID order.
"""
from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime
from email import policy
from email.headerregistry import AddressHeader
from email.parser import BytesHeaderParser
from email.utils import parsedate_to_datetime
from typing import Any

MEDIA_TYPE = "message/rfc822"
_BARE_LF = re.compile(rb"(?<!\r)\n")
_BARE_CR = re.compile(rb"\r(?!\n)")


def header_block(data: bytes) -> bytes:
    end = data.find(b"\r\n\r\n")
    return data if end < 0 else data[:end + 2]


def problem(data: bytes) -> str | None:
    """Why ``data`` cannot be stored as an RFC 5322 message, or None."""
    if not data:
        return "an empty message"
    if b"\x00" in data:
        return "a NUL byte in the message (RFC 5322 forbids it)"
    if _BARE_LF.search(data) or _BARE_CR.search(data):
        return "a line not ended by CRLF (RFC 5322 lines end with CRLF)"
    first = data.split(b"\r\n", 1)[0]
    if not re.match(rb"[!-9;-~]+:", first):
        return "no header field on the first line (not an RFC 5322 message)"
    return None


def _message_id(data: bytes) -> str | None:
    headers = BytesHeaderParser(policy=policy.compat32).parsebytes(header_block(data))
    value = headers.get("Message-ID")
    return str(value).strip() or None if value is not None else None


def base_key(data: bytes) -> str:
    """The key before duplicates are numbered."""
    mid = _message_id(data)
    seed = mid.encode("utf-8", "surrogateescape") if mid else header_block(data)
    return hashlib.sha256(seed).hexdigest()[:24]


def file_name(key: str, n: int) -> str:
    """The last segment of the item id of the ``n``-th (from 1) message of a folder with ``key``."""
    return f"{key}.eml" if n == 1 else f"{key}-{n}.eml"


def parse_name(name: str) -> tuple[str, int] | None:
    m = re.fullmatch(r"([0-9a-f]{24})(?:-([0-9]+))?\.eml", name)
    if not m:
        return None
    n = int(m.group(2) or 1)
    return (m.group(1), n) if n >= 1 and (n > 1 or m.group(2) is None) else None


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _people(header: Any) -> list[dict[str, str]]:
    out = []
    for addr in getattr(header, "addresses", ()):
        if not addr.addr_spec or addr.addr_spec == "<>":
            continue
        person = {"id": addr.addr_spec, "email": addr.addr_spec}
        if addr.display_name:
            person["name"] = addr.display_name
        out.append(person)
    return out


#: Metadata fields taken from the message's own header.
HEADER_FIELDS = ("subject", "from", "to", "cc", "bcc", "sent", "in_reply_to")


def describe(data: bytes) -> dict[str, Any]:
    """The messages vertical's fields the header says: subject, from, to, cc, bcc, sent, in_reply_to."""
    headers = BytesHeaderParser(policy=policy.default).parsebytes(header_block(data))
    meta: dict[str, Any] = {}
    try:
        subject = headers.get("Subject")
        if subject is not None:
            meta["subject"] = str(subject)
        for name, key in (("To", "to"), ("Cc", "cc"), ("Bcc", "bcc")):
            value = headers.get(name)
            if isinstance(value, AddressHeader) and _people(value):
                meta[key] = _people(value)
        sender = headers.get("From")
        if isinstance(sender, AddressHeader) and _people(sender):
            meta["from"] = _people(sender)[0]
        date = headers.get("Date")
        if date is not None:
            try:
                meta["sent"] = _iso(parsedate_to_datetime(str(date)))
            except (TypeError, ValueError):
                pass
        reply = headers.get("In-Reply-To")
        if reply is not None and str(reply).strip():
            meta["in_reply_to"] = str(reply).strip()
    except (IndexError, ValueError, TypeError):  # a header email's parser cannot read: keep what was read
        pass
    return meta


def folder_label(path: str, special_use: str | None) -> str:
    """The schema's ``folder``: inbox, sent, drafts, trash, or the folder's own path."""
    if path.upper() == "INBOX":
        return "inbox"
    return {"\\Sent": "sent", "\\Drafts": "drafts", "\\Trash": "trash", "\\Junk": "junk",
            "\\Archive": "archive"}.get(special_use or "", path)


def internaldate(text: str) -> str:
    """IMAP's ``"17-Jul-1996 02:44:25 -0700"`` -> ``"1996-07-17T09:44:25Z"``."""
    return _iso(datetime.strptime(text, "%d-%b-%Y %H:%M:%S %z"))


def parse_date(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))
