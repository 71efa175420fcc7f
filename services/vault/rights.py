"""People's rights over their vault data, as commands: erasure on request, retention, the access log.

- `erase_person` deletes every version of every item of a person and every blob no other
  person of the tenant references (from every stored version of it, on a versioned bucket),
  and publishes the audit event `vault.person.erased` (counts and opaque ids only) in the
  same transaction (what goes: `rules/erasure.py`, `rules/blob_deletion.py`). If the object
  store fails midway nothing of the index is deleted and running it again finishes the job.
- A tenant's retention policy says how long tombstones stay restorable (`rules/retention.py`);
  `set_retention` sets it, `purge_expired` removes items whose newest version is a tombstone
  past it (all their versions), and the blobs nobody references any more.
- The access log (`index.log_access`, written by `Vault`; `rules/access_log.py`) says who read
  what; after an erasure it keeps who accessed a person's data and when, without the item ids.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection

from relais.bus.envelope import Event, new_event_id
from relais.bus.outbox import add_events
from relais.db import writer

from .adapters import index
from .adapters.blob_store import BlobStore
from .items import Vault
from .rules.blob_deletion import BlobsToDelete, blobs_to_delete, content_sizes
from .rules.erasure import AUDIT_EVENT, audit_payload, check_requester
from .rules.retention import check_days, in_force

log = logging.getLogger(__name__)

SOURCE = "relais.vault"


@dataclass(frozen=True)
class ErasureReport:
    person: str
    actor: str
    versions: int
    items: int
    blobs_deleted: int
    blobs_kept: int
    bytes_deleted: int
    event_id: str

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class PurgeReport:
    items: int = 0
    versions: int = 0
    blobs_deleted: int = 0
    bytes_deleted: int = 0
    dry_run: bool = False

    def to_dict(self) -> dict:
        return asdict(self)


def erase_person(vault: Vault, person: str, *, actor: str, correlation_id: str | None = None) -> ErasureReport:
    """Erase a person's vault data for good (a right-to-erasure request), with its audit event."""
    check_requester(actor)
    tenant = vault.tenant
    with writer(vault.engine).begin() as conn:
        rows, items, blobs = erase_in(conn, vault.store, person)
        event_id = new_event_id()
        event = Event(type=AUDIT_EVENT, source=SOURCE, tenant=tenant, id=event_id,
                      correlation_id=correlation_id or event_id,
                      payload=audit_payload(person, actor, versions=len(rows), items=items, blobs=blobs))
        add_events(conn, [event])
    p = event.payload
    log.info("erased person %s for %s: %d version(s), %d blob(s) deleted, %d kept (shared)",
             person, actor, p["versions"], p["blobs_deleted"], p["blobs_kept"])
    return ErasureReport(person, actor, p["versions"], p["items"], p["blobs_deleted"], p["blobs_kept"],
                         p["bytes_deleted"], event.id)


def erase_in(conn: Connection, store: BlobStore, person: str) -> tuple[list[tuple[str | None, int | None]], int,
                                                                       BlobsToDelete]:
    """`erase_person`'s deletions in the caller's transaction, without its audit event (a subject request
    across every service confirms on the bus instead: `services/vault/subject.py`): (rows, items, blobs)."""
    tenant = store.tenant
    index.guard_blobs(conn, tenant, exclusive=True)
    rows = index.person_rows(conn, tenant, person)
    items = index.count_items(conn, tenant, person)
    sizes = content_sizes(rows)
    index.delete_person(conn, tenant, person)
    blobs = blobs_to_delete(sizes, index.referenced(conn, tenant, sizes))  # by someone else: these rows are gone
    _delete_blobs(conn, store, blobs.digests)
    index.forget_items_in_access_log(conn, tenant, person)
    return rows, items, blobs


def purge_expired(vault: Vault, *, now: datetime | None = None, dry_run: bool = False, batch: int = 500,
                  progress: Callable[[PurgeReport], None] | None = None) -> PurgeReport:
    """Remove items whose tombstone is past retention, `batch` items per transaction.

    `dry_run` counts what would go (blobs: those no remaining row references) and changes nothing."""
    now = now or datetime.now(UTC)
    total = PurgeReport(dry_run=dry_run)
    while True:
        with writer(vault.engine).connect() as conn:
            tx = conn.begin()
            try:
                report = _purge_batch(conn, vault.tenant, vault.store, now, batch, dry_run)
            except BaseException:
                tx.rollback()
                raise
            if dry_run:
                tx.rollback()
            else:
                tx.commit()
        total = PurgeReport(total.items + report.items, total.versions + report.versions,
                            total.blobs_deleted + report.blobs_deleted, total.bytes_deleted + report.bytes_deleted,
                            dry_run)
        if progress and report.items:
            progress(total)
        if dry_run or report.items < batch:
            break
    if total.items:
        log.info("purge%s: %d item(s) past retention, %d version(s), %d blob(s), %d byte(s)",
                 " (dry run)" if dry_run else "", total.items, total.versions, total.blobs_deleted,
                 total.bytes_deleted)
    return total


def _purge_batch(conn: Connection, tenant: str, store: BlobStore, now: datetime, batch: int,
                 dry_run: bool) -> PurgeReport:
    index.guard_blobs(conn, tenant, exclusive=True)
    expired = index.expired_items(conn, tenant, now)
    if not dry_run:
        expired = expired[:batch]
    rows: list[tuple[str | None, int | None]] = []
    for person, vertical, item_id in expired:
        rows += index.item_rows(conn, tenant, person, vertical, item_id)
        index.delete_item(conn, tenant, person, vertical, item_id)  # rolled back on a dry run
    sizes = content_sizes(rows)
    blobs = blobs_to_delete(sizes, index.referenced(conn, tenant, sizes))
    if not dry_run:
        _delete_blobs(conn, store, blobs.digests)
    return PurgeReport(len(expired), len(rows), len(blobs.digests), blobs.bytes, dry_run)


def _delete_blobs(conn: Connection, store: BlobStore, digests: list[str]) -> None:
    """Inside the exclusive blob guard, before the rows' deletion commits: if the store fails,
    the transaction rolls back and a new run deletes what is left."""
    if digests:
        index.bump_blob_epoch(conn, store.tenant)
    for digest in digests:
        store.delete(digest)


def set_retention(vault: Vault, days: int, *, by: str) -> int:
    """Set the tenant's retention policy; returns how many tombstones got a new purge date."""
    check_days(days)
    with writer(vault.engine).begin() as conn:
        return index.set_retention_days(conn, vault.tenant, days, by)


def retention_days(vault: Vault) -> tuple[int, bool]:
    """(days, whether the tenant has a policy of its own rather than the default)."""
    with vault.engine.connect() as conn:
        retention = in_force(index.retention_days(conn, vault.tenant), vault.default_retention)
    return retention.period.days, retention.own


def access_log(vault: Vault, person: str, *, since: datetime | None = None, limit: int | None = None) -> list[dict]:
    with vault.engine.connect() as conn:
        return index.access_log(conn, vault.tenant, person, since=since, limit=limit)
