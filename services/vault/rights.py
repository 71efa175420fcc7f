"""People's rights over their vault data: erasure on request, retention, the access log.

- `erase_person` deletes every version of every item of a person and every blob no other
  person of the tenant references (from every stored version of it, on a versioned bucket),
  and publishes the audit event `vault.person.erased` (counts and opaque ids only) in the
  same transaction. If the object store fails midway nothing of the index is deleted and
  running it again finishes the job.
- A tenant's retention policy says how long tombstones stay restorable; `purge_expired`
  removes items whose newest version is a tombstone past it (all their versions), and the
  blobs nobody references any more.
- The access log (`index.log_access`, written by `Vault`) says who read what; after an
  erasure it keeps who accessed a person's data and when, without the item ids.
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

from . import index
from .model import Vault
from .store import BlobStore

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
    if not actor.strip():
        raise ValueError("say who orders the erasure (an operator or DPO reference): it goes in the audit event")
    tenant = vault.tenant
    with writer(vault.engine).begin() as conn:
        index.guard_blobs(conn, tenant, exclusive=True)
        rows = index.person_rows(conn, tenant, person)
        items = index.count_items(conn, tenant, person)
        sizes: dict[str, int] = {}
        for digest, size in rows:
            if digest is not None:
                sizes[digest] = max(sizes.get(digest, 0), size or 0)
        index.delete_person(conn, tenant, person)
        kept = index.referenced(conn, tenant, sizes)  # by someone else: this person's rows are gone
        doomed = sorted(set(sizes) - kept)
        _delete_blobs(conn, vault.store, doomed)
        index.forget_items_in_access_log(conn, tenant, person)
        event_id = new_event_id()
        event = Event(type="vault.person.erased", source=SOURCE, tenant=tenant, id=event_id,
                      correlation_id=correlation_id or event_id, payload={
                          "person": person, "actor": actor, "versions": len(rows), "items": items,
                          "blobs_deleted": len(doomed), "blobs_kept": len(kept),
                          "bytes_deleted": sum(sizes[d] for d in doomed)})
        add_events(conn, [event])
    p = event.payload
    log.info("erased person %s for %s: %d version(s), %d blob(s) deleted, %d kept (shared)",
             person, actor, p["versions"], p["blobs_deleted"], p["blobs_kept"])
    return ErasureReport(person, actor, p["versions"], p["items"], p["blobs_deleted"], p["blobs_kept"],
                         p["bytes_deleted"], event.id)


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
    sizes: dict[str, int] = {}
    versions = 0
    for person, vertical, item_id in expired:
        for digest, size in index.item_rows(conn, tenant, person, vertical, item_id):
            versions += 1
            if digest is not None:
                sizes[digest] = max(sizes.get(digest, 0), size or 0)
        index.delete_item(conn, tenant, person, vertical, item_id)  # rolled back on a dry run
    doomed = sorted(set(sizes) - index.referenced(conn, tenant, sizes))
    if not dry_run:
        _delete_blobs(conn, store, doomed)
    return PurgeReport(len(expired), versions, len(doomed), sum(sizes[d] for d in doomed), dry_run)


def _delete_blobs(conn: Connection, store: BlobStore, digests: list[str]) -> None:
    """Inside the exclusive blob guard, before the rows' deletion commits: if the store fails,
    the transaction rolls back and a new run deletes what is left."""
    if digests:
        index.bump_blob_epoch(conn, store.tenant)
    for digest in digests:
        store.delete(digest)


def set_retention(vault: Vault, days: int, *, by: str) -> int:
    """Set the tenant's retention policy; returns how many tombstones got a new purge date."""
    if days < 0:
        raise ValueError(f"retention of {days} days: expected 0 or more")
    with writer(vault.engine).begin() as conn:
        return index.set_retention_days(conn, vault.tenant, days, by)


def retention_days(vault: Vault) -> tuple[int, bool]:
    """(days, whether the tenant has a policy of its own rather than the default)."""
    with vault.engine.connect() as conn:
        days = index.retention_days(conn, vault.tenant)
    return (int(vault.default_retention.days), False) if days is None else (days, True)


def access_log(vault: Vault, person: str, *, since: datetime | None = None, limit: int | None = None) -> list[dict]:
    with vault.engine.connect() as conn:
        return index.access_log(conn, vault.tenant, person, since=since, limit=limit)

