"""Continuous mode: the handler of `ent.item.changed` / `ent.item.deleted` events.

It runs in the bus consumer's transaction (`relais.bus.consumer.EventConsumer`, which skips
an event id already handled and records it with the handler's effects), so a change is
either fully indexed, with its event marked handled, or not at all and retried.

- A change stores the content first (inline content is put into the store; stored content
  must be there already, with the size the event says), then adds a version in the index:
  no row ever points to a blob that is not stored. Unchanged content, metadata and path
  add no version, so the same change arriving twice under different event ids does nothing
  the second time; a change older than the item's latest version is not applied
  (`rules/changes.py`).
- A deletion adds a tombstone, restorable until the tenant's retention period ends
  (`rules/retention.py`).
- Anything wrong with an event raises, naming the event and the field, never a value that
  could be personal: the consumer retries it, then dead-letters it with that message.
"""
from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection

from ..adapters import index
from ..adapters.blob_store import BlobStore, StoreError
from ..rules.changes import NEW, Applied, plan_change
from ..rules.retention import DEFAULT_PERIOD, in_force, purge_after
from .events import ItemChange, ItemDeletion, ItemEventError, parse

log = logging.getLogger(__name__)

CONSUMER = "vault"  # queue relais.q.vault; its bindings are the contracts' receive operations


class ItemEvents:
    """`handler(event, conn)` for the consumer: one tenant's store, the tenant's retention policy."""

    def __init__(self, store: BlobStore, *, default_retention: timedelta = DEFAULT_PERIOD) -> None:
        self.store, self.tenant, self.default_retention = store, store.tenant, default_retention

    def __call__(self, event: dict[str, Any], conn: Connection) -> None:
        self.apply(event, conn)

    def apply(self, event: dict[str, Any], conn: Connection) -> Applied:
        if event.get("tenant") != self.tenant:
            raise ItemEventError(f"{event.get('type')} {event.get('id')} is for tenant {event.get('tenant')!r}; "
                                 f"this vault serves {self.tenant!r} (a connector publishing to the wrong broker?)")
        change = parse(event)
        index.guard_blobs(conn, self.tenant)  # no erasure or purge deletes blobs until this commits
        last = index.latest(conn, self.tenant, change.person, change.vertical, change.item_id)
        if isinstance(change, ItemDeletion):
            retention = in_force(index.retention_days(conn, self.tenant), self.default_retention)
            applied = index.append(
                conn, self.tenant, change.person, change.vertical, change.item_id, digest=None, metadata={},
                path=change.path, size=None, changed_at=change.changed_at,
                purge_after=purge_after(datetime.now(UTC), retention.period))
        else:
            plan = plan_change(last, change.sha256, change.metadata, change.path, change.changed_at)
            if plan != NEW:
                applied = Applied(plan, last)
            else:
                self._store_content(change, event)
                applied = index.append(conn, self.tenant, change.person, change.vertical, change.item_id,
                                       digest=change.sha256, metadata=change.metadata, path=change.path,
                                       size=change.size, changed_at=change.changed_at)
        log.info("%s: person %s, %s: %s%s", event["type"], change.person, change.vertical, applied.outcome,
                 f" (version {applied.version.version})" if applied.version and applied.outcome == NEW else "")
        return applied

    def _store_content(self, change: ItemChange, event: dict[str, Any]) -> None:
        where = f"{event['type']} {event['id']} (person {change.person}, {change.vertical})"
        if change.data is not None:
            self.store.put(change.data)  # checked against sha256 and size by `parse`
            return
        size = self.store.size(change.sha256)
        if size is None:
            raise StoreError(f"{where}: content {change.sha256} is not in tenant {self.tenant}'s vault store; "
                             "a connector must put it there before publishing a \"stored\" change")
        if size != change.size:
            raise StoreError(f"{where}: content {change.sha256} in the store is {size} bytes, the event says "
                             f"{change.size}")
