"""The event envelope every message on the bus shares (see contracts/README.md)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson


def new_event_id() -> str:
    """A random (version 4) UUID as text; cheaper than uuid.uuid4() on bulk paths."""
    b = bytearray(os.urandom(16))
    b[6] = (b[6] & 0x0F) | 0x40
    b[8] = (b[8] & 0x3F) | 0x80
    h = b.hex()
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


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
    def from_dict(cls, data: dict[str, Any]) -> "Event":
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


def dumps(obj: Any) -> bytes:
    """Compact UTF-8 JSON; keys sorted so equal content gives equal bytes."""
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)
