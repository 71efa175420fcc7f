"""Continuous mode on the bus: `ent.item.changed` and `ent.item.deleted` (contracts/schemas/ent.item.*.json).

Connectors build these events with `item_changed` / `item_deleted` and publish them (the SDK's
job); the vault reads them with `parse`. No I/O here except the `store.put` a connector asks
for when content is too large to travel inline.

**Where content travels.** Small items (an event, a contact card, a homework entry: up to
`INLINE_MAX` = 256 KiB) go inline, base64 in the event: one message carries the whole change
and nothing else has to be reachable. Larger ones (documents, attachments, up to gigabytes)
would make the broker hold and persist megabytes per message and stall its queues, so the
connector first puts the content into the tenant's vault store (content-addressed: an unchanged
file is not uploaded twice) and the event carries only its sha256 and size (`"mode": "stored"`).
Either way the vault checks the content against `sha256` and `size` before indexing it.

`parse` turns an event into an `ItemChange` or `ItemDeletion` and refuses a bad one with an
`ItemEventError` naming the field at fault and never quoting its value: item ids, paths and
metadata may hold names, and these messages are logged and sent to the dead-letter queue.
It accepts exactly what the JSON Schemas accept (tests/vault/test_continuous.py checks both
on the same cases), plus the checks a schema cannot make (base64 that decodes, sha256 and size
of inline content, safe item ids).
"""
from __future__ import annotations

import base64
import binascii
import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from relais.bus import contracts
from relais.bus.envelope import Event, new_event_id

from ..adapters.blob_store import BlobStore
from ..rules.item_ids import ITEM_MAX, PATH_MAX, PERSON_MAX, VERTICALS, UnsafePath, check_item

CHANGED, DELETED = "ent.item.changed", "ent.item.deleted"
INLINE_MAX = 256 * 1024  # bytes of content that may travel inline (base64 makes it 4/3 bigger)
INLINE_B64_MAX = 4 * ((INLINE_MAX + 2) // 3)

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_B64 = re.compile(r"^[A-Za-z0-9+/]*={0,2}$")


class ItemEventError(ValueError):
    """An `ent.item.*` event the vault cannot take; the message names the field, not its value."""


@dataclass(frozen=True)
class ItemChange:
    person: str
    vertical: str
    item_id: str
    path: str | None
    metadata: dict
    sha256: str
    size: int
    data: bytes | None  # inline content; None: stored by the connector in the vault's store
    changed_at: datetime


@dataclass(frozen=True)
class ItemDeletion:
    person: str
    vertical: str
    item_id: str
    path: str | None
    changed_at: datetime


# -- building (connectors) -------------------------------------------------------------------


def item_changed(*, tenant: str, source: str, person: str, vertical: str, item: str, data: bytes,
                 store: BlobStore | None = None, path: str | None = None, metadata: dict | None = None,
                 changed_at: datetime | None = None, correlation_id: str | None = None,
                 causation_id: str | None = None) -> Event:
    """The `ent.item.changed` event for this content of an item, checked against its contract.

    Content up to INLINE_MAX travels inline; larger content is first put into `store` (the
    tenant's vault store: required then) and the event references it by sha256.
    `changed_at` is when the ENT recorded the change (default now): the vault keeps the newest.
    """
    item = _checked_item(vertical, item)
    digest = hashlib.sha256(data).hexdigest()
    if len(data) <= INLINE_MAX:
        content: dict[str, Any] = {"mode": "inline", "data": base64.b64encode(data).decode("ascii")}
    else:
        if store is None:
            raise ValueError(f"{len(data)} bytes is more than the {INLINE_MAX} that travel inline: "
                             "give the tenant's vault store (store=) so the content is put there first")
        if store.tenant != tenant:
            raise ValueError(f"the store given is tenant {store.tenant!r}'s, the event is for {tenant!r}")
        if store.put(data) != digest:
            raise ValueError("the store returned another digest than the content's sha256")
        content = {"mode": "stored"}
    payload = {"person": person, "vertical": vertical, "item": item, "path": path, "metadata": metadata or {},
               "sha256": digest, "size": len(data), "content": content}
    return _event(CHANGED, payload, tenant, source, changed_at, correlation_id, causation_id)


def item_deleted(*, tenant: str, source: str, person: str, vertical: str, item: str, path: str | None = None,
                 changed_at: datetime | None = None, correlation_id: str | None = None,
                 causation_id: str | None = None) -> Event:
    """The `ent.item.deleted` event: the ENT deleted this item (the vault keeps a tombstone)."""
    payload = {"person": person, "vertical": vertical, "item": _checked_item(vertical, item), "path": path}
    return _event(DELETED, payload, tenant, source, changed_at, correlation_id, causation_id)


def _checked_item(vertical: str, item: str) -> str:
    try:
        return check_item(vertical, item)
    except UnsafePath:
        raise ValueError("unsafe item id: empty, NUL, backslash, absolute, or a '.', '..' or empty segment") from None


def _event(type_: str, payload: dict, tenant: str, source: str, changed_at: datetime | None,
           correlation_id: str | None, causation_id: str | None) -> Event:
    when = (changed_at or datetime.now(UTC)).astimezone(UTC)
    event_id = new_event_id()
    event = Event(type=type_, payload=payload, source=source, tenant=tenant, id=event_id,
                  correlation_id=correlation_id or event_id, causation_id=causation_id,
                  occurred_at=when.isoformat(timespec="microseconds").replace("+00:00", "Z"))
    contracts.validate_event(event.to_dict())
    return event


# -- reading (the vault) ---------------------------------------------------------------------


def parse(event: dict[str, Any]) -> ItemChange | ItemDeletion:
    """The change an `ent.item.*` event reports; ItemEventError naming the field at fault."""
    type_ = event.get("type")
    where = f"{type_} {event.get('id')}"
    if type_ not in (CHANGED, DELETED):
        raise ItemEventError(f"{where}: not an ent.item.changed or ent.item.deleted event")
    if event.get("version") != 1:
        raise ItemEventError(f"{where}: version {event.get('version')!r} unknown (this vault reads version 1)")
    payload = event.get("payload")
    if not isinstance(payload, dict):
        raise ItemEventError(f"{where}: payload is not an object")
    person = _string(payload, "person", where, PERSON_MAX)
    vertical = payload.get("vertical")
    if vertical not in VERTICALS:
        raise ItemEventError(f"{where}: payload/vertical must be one of {', '.join(VERTICALS)}")
    where = f"{where} (person {person}, {vertical})"  # jointures are opaque ids: safe to name
    raw_item = _string(payload, "item", where, ITEM_MAX)
    try:
        item_id = check_item(vertical, raw_item)
    except UnsafePath:
        raise ItemEventError(f"{where}: payload/item is not a safe item id (empty, NUL, backslash, absolute, "
                             "or a '.', '..' or empty segment)") from None
    path = payload.get("path")
    if path is not None and (not isinstance(path, str) or len(path) > PATH_MAX):
        raise ItemEventError(f"{where}: payload/path must be null or a string of at most {PATH_MAX} characters")
    try:
        changed_at = datetime.fromisoformat(str(event.get("occurred_at")).replace("Z", "+00:00"))
    except ValueError:
        raise ItemEventError(f"{where}: occurred_at is not an RFC 3339 date-time") from None
    if changed_at.tzinfo is None:
        raise ItemEventError(f"{where}: occurred_at has no time zone")
    changed_at = changed_at.astimezone(UTC)
    allowed = {"person", "vertical", "item", "path"}
    if type_ == DELETED:
        _no_extra(payload, allowed, where)
        return ItemDeletion(person, vertical, item_id, path, changed_at)

    _no_extra(payload, allowed | {"metadata", "sha256", "size", "content"}, where)
    metadata = payload.get("metadata")
    if not isinstance(metadata, dict):
        raise ItemEventError(f"{where}: payload/metadata must be an object")
    sha256 = payload.get("sha256")
    if not isinstance(sha256, str) or not _SHA256.match(sha256):
        raise ItemEventError(f"{where}: payload/sha256 must be 64 lowercase hex digits")
    size = payload.get("size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ItemEventError(f"{where}: payload/size must be a whole number of bytes, 0 or more")
    content = payload.get("content")
    if not isinstance(content, dict) or content.get("mode") not in ("inline", "stored"):
        raise ItemEventError(f"{where}: payload/content must be {{\"mode\": \"inline\", \"data\": ...}} "
                             "or {\"mode\": \"stored\"}")
    data = None
    if content["mode"] == "stored":
        _no_extra(content, {"mode"}, where, "payload/content")
    else:
        _no_extra(content, {"mode", "data"}, where, "payload/content")
        encoded = content.get("data")
        if not isinstance(encoded, str) or len(encoded) > INLINE_B64_MAX or not _B64.match(encoded):
            raise ItemEventError(f"{where}: payload/content/data must be base64 of at most {INLINE_MAX} bytes "
                                 "(larger content goes to the vault's store, mode \"stored\")")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            raise ItemEventError(f"{where}: payload/content/data is not valid base64") from None
        if len(data) != size:
            raise ItemEventError(f"{where}: payload/content/data holds {len(data)} bytes, payload/size says {size}")
        if hashlib.sha256(data).hexdigest() != sha256:
            raise ItemEventError(f"{where}: the inline content's sha256 is not payload/sha256 "
                                 "(content altered in transit or by the connector)")
    return ItemChange(person, vertical, item_id, path, metadata, sha256, size, data, changed_at)


def _string(payload: dict, key: str, where: str, limit: int) -> str:
    value = payload.get(key)
    if not isinstance(value, str) or not value or len(value) > limit:
        raise ItemEventError(f"{where}: payload/{key} must be a non-empty string of at most {limit} characters")
    return value


def _no_extra(obj: dict, allowed: set[str], where: str, at: str = "payload") -> None:
    extra = sorted(set(obj) - allowed)
    if extra:
        raise ItemEventError(f"{where}: {at} has unknown field(s) {', '.join(extra)}")
    missing = sorted(k for k in allowed if k not in obj and not (at == "payload" and k == "path"))
    if missing:
        raise ItemEventError(f"{where}: {at} lacks {', '.join(missing)}")
