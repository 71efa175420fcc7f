"""Edifice dates <-> RFC 3339.

Mongo documents of the workspace carry dates as ``yyyy-MM-dd HH:mm.ss.SSS`` strings in the
server's local time (``MongoDb.formatDate``; the workspace's front end parses
``YYYY-MM-DD HH:mm.ss.SSS``), sometimes Mongo's ``{"$date": ...}``; SQL rows (conversation)
carry milliseconds since the epoch. The server's zone is not in the archive: it is the
connector's ``timezone`` option (French ENTs run on Europe/Paris).
"""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

_EDIFICE = re.compile(r"^(\d{4})-(\d{2})-(\d{2}) (\d{2}):(\d{2})\.(\d{2})(?:\.(\d{1,3}))?$")


def to_iso(value: Any, tz: ZoneInfo) -> str | None:
    """An Edifice date as RFC 3339 with the zone's offset, or None if it is not one."""
    dt: datetime | None = None
    if isinstance(value, str):
        m = _EDIFICE.match(value)
        if m:
            y, mo, d, h, mi, s, ms = m.groups()
            try:
                dt = datetime(int(y), int(mo), int(d), int(h), int(mi), int(s), int((ms or "0").ljust(3, "0")) * 1000,
                              tzinfo=tz)
            except ValueError:
                return None
    elif isinstance(value, dict) and set(value) == {"$date"}:
        inner = value["$date"]
        if isinstance(inner, int) and not isinstance(inner, bool):
            return from_millis(inner, tz)
        if isinstance(inner, str):
            try:
                dt = datetime.fromisoformat(inner.replace("Z", "+00:00"))
            except ValueError:
                return None
            if dt.tzinfo is None:
                return None
            dt = dt.astimezone(tz)
    if dt is None:
        return None
    return dt.isoformat(timespec="milliseconds")


def from_millis(value: Any, tz: ZoneInfo) -> str | None:
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    try:
        return datetime.fromtimestamp(value / 1000, tz=UTC).astimezone(tz).isoformat(timespec="milliseconds")
    except (OverflowError, OSError, ValueError):
        return None


def parse_iso(value: str) -> datetime:
    dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return dt if dt.tzinfo else dt.replace(tzinfo=UTC)


def to_edifice(value: str, tz: ZoneInfo) -> str:
    dt = parse_iso(value).astimezone(tz)
    return dt.strftime("%Y-%m-%d %H:%M.%S.") + f"{dt.microsecond // 1000:03d}"


def to_millis(value: str) -> int:
    return int(round(parse_iso(value).timestamp() * 1000))
