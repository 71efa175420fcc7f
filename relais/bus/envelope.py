"""The event envelope every message on the bus shares (see contracts/README.md)."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson


def new_event_id() -> str:
    """A time-ordered UUID (version 7, RFC 9562) as text.

    Ids made one after another sort one after another (millisecond time, then
    a 12-bit counter within the millisecond), so indexes on event ids (the
    consumers' processed events) grow at their end instead of at random
    places: bulk paths write millions of them, which is also why the time's
    text is made once per millisecond. The 62 random bits come from
    `random`'s global generator: ids must be unique, not secret, and that
    generator is reseeded in a forked child.
    """
    global _last_ms, _counter, _time_text
    ms = _time_ns() // 1_000_000
    if ms > _last_ms:
        _last_ms, _counter = ms, _getrandbits(9)  # room to count up
        _time_text = _time_part(ms)
    else:
        _counter += 1
        if _counter > 0xFFF:  # 4,096 ids in one millisecond: borrow the next one
            _last_ms, _counter = _last_ms + 1, 0
            _time_text = _time_part(_last_ms)
    return f"{_time_text}{_counter:03x}-{0x8000 | _getrandbits(14):04x}-{_getrandbits(48):012x}"


def _time_part(ms: int) -> str:
    """The id's first 15 hex digits: 48 bits of milliseconds, then the version (7)."""
    t = f"{ms:012x}"
    return f"{t[:8]}-{t[8:]}-7"


_last_ms, _counter, _time_text = 0, 0, ""
_time_ns, _getrandbits = time.time_ns, random.getrandbits


def utc_now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    payload: dict[str, Any]
    source: str
    tenant: str
    correlation_id: str
    causation_id: str | None = None
    version: int = 1
    id: str = field(default_factory=new_event_id)
    occurred_at: str = field(default_factory=utc_now_iso)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "type": self.type,
            "version": self.version,
            "occurred_at": self.occurred_at,
            "source": self.source,
            "tenant": self.tenant,
            "correlation_id": self.correlation_id,
            "causation_id": self.causation_id,
            "payload": self.payload,
        }

    def to_json(self) -> bytes:
        return dumps(self.to_dict())

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Event:
        return cls(
            id=data["id"],
            type=data["type"],
            version=data["version"],
            occurred_at=data["occurred_at"],
            source=data["source"],
            tenant=data["tenant"],
            correlation_id=data["correlation_id"],
            causation_id=data.get("causation_id"),
            payload=data["payload"],
        )


class SharedEnvelope:
    """The JSON bodies of many events that differ only in id and payload, made without an `Event` each.

    A bulk writer (an import's million `.created` events) already holds each
    payload serialized: `body(id, payload_json)` splices it between the
    envelope's fixed parts, bytes for bytes what `Event(...).to_json()` gives
    for the same fields, provided `payload_json` is `dumps(payload)`.
    """

    __slots__ = ("_head", "_middle", "_tail")

    def __init__(self, type_: str, source: str, tenant: str, correlation_id: str, occurred_at: str,
                 causation_id: str | None = None, version: int = 1):
        # Sorted keys (`dumps`): causation_id, correlation_id, id, occurred_at, payload, source, tenant, type, version.
        self._head = dumps({"causation_id": causation_id, "correlation_id": correlation_id})[:-1] + b',"id":"'
        self._middle = b'","occurred_at":' + dumps(occurred_at) + b',"payload":'
        self._tail = b"," + dumps({"source": source, "tenant": tenant, "type": type_, "version": version})[1:]

    def body(self, event_id: str, payload_json: bytes) -> bytes:
        return self._head + event_id.encode() + self._middle + payload_json + self._tail


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; keys sorted so equal content gives equal bytes."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
