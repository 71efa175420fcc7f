"""One sync pass: what changed at a source since the last pass, into the vault, then a completeness check.

For every vertical the connector handles and every person it has (or those given), the connector says
what changed since the state kept at the last pass (:meth:`connectors.sdk.Exporter.changes`: RFC 6578
sync tokens where the server has them, ETags compared otherwise). Only the items new or changed are
fetched (the SDK's verified fetch, on ``workers`` threads, within the connector's rate limit: the load
on the ENT is bounded by ``rate_limit`` in its configuration); their content goes to the vault store
once by sha256 and their versions are indexed; items deleted at the source get a tombstone (restorable
for the tenant's retention). The new state is kept in the same transaction, and only when every
change went in: an item that failed is asked for again at the next pass.

Every pass ends with the per-person completeness check (:mod:`..rules.completeness`): every item the
source holds is live in the vault with its content in the store, and nothing else is.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from connectors.sdk import Changes, ConnectorError, Exporter, Item
from connectors.sdk.sync import known_etags
from relais.db import writer

from ..adapters import index
from ..adapters.blob_store import BlobStore, StoreError
from ..rules.changes import NEW
from ..rules.completeness import misses
from ..rules.item_ids import refusal
from ..rules.item_metadata import vault_metadata
from ..rules.retention import DEFAULT_PERIOD, in_force, purge_after
from ..transfer.blobs import StoredBlobs
from ..transfer.listing import done_ahead
from ..transfer.peers import Peer
from . import state as sync_state

log = logging.getLogger("relais.vault.sync")


@dataclass
class PersonSync:
    """One person's vertical in a pass."""

    person: str
    vertical: str
    mode: str | None = None  # etag | sync-collection; None when the source could not say
    full: bool = False  # listed in full (first pass, or a token refused)
    changed: int = 0  # items the source reported new or changed
    new_versions: int = 0
    bytes: int = 0  # fetched
    deleted: int = 0  # tombstones added
    failures: list[dict[str, str]] = field(default_factory=list)
    error: str | None = None  # the source could not say what changed
    misses: list[dict[str, str]] = field(default_factory=list)
    source_items: int = 0

    @property
    def complete(self) -> bool:
        return self.error is None and not self.failures and not self.misses

    def to_dict(self) -> dict[str, Any]:
        return {"person": self.person, "vertical": self.vertical, "mode": self.mode, "full": self.full,
                "changed": self.changed, "new_versions": self.new_versions, "bytes": self.bytes,
                "deleted": self.deleted, "source_items": self.source_items, "complete": self.complete,
                "error": self.error, "failures": list(self.failures), "misses": list(self.misses)}


@dataclass
class SyncReport:
    tenant: str
    connector: str
    started_at: datetime
    seconds: float = 0.0
    persons: list[PersonSync] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # a vertical whose persons could not be listed

    @property
    def complete(self) -> bool:
        return not self.errors and all(p.complete for p in self.persons)

    def total(self, name: str) -> int:
        return sum(getattr(p, name) for p in self.persons)

    def to_dict(self) -> dict[str, Any]:
        return {"tenant": self.tenant, "connector": self.connector, "started_at": self.started_at.isoformat(),
                "seconds": round(self.seconds, 3), "complete": self.complete,
                "persons": len({p.person for p in self.persons}),
                **{k: self.total(k) for k in ("changed", "new_versions", "bytes", "deleted", "source_items")},
                "failed": sum(len(p.failures) for p in self.persons),
                "incomplete": [p.to_dict() for p in self.persons if not p.complete],
                "errors": list(self.errors), "details": [p.to_dict() for p in self.persons]}


Progress = Callable[[PersonSync], None]
Row = tuple[str, str, str, str | None, dict, str | None, int | None]
# the person's report so far, the state before, the changes (None: the source could not say), the rows to write
Asked = tuple["PersonSync", dict[str, Any] | None, Changes | None, list[Row]]
ASKERS = 4  # persons whose changes are asked at once


def sync(engine: Engine, store: BlobStore, source: Peer, *, persons: Iterable[str] | None = None, workers: int = 8,
         progress: Progress | None = None, spool_dir: Path | None = None,
         retention: timedelta | None = None) -> SyncReport:
    """One pass over ``persons`` (default: every person the source has) of every vertical of ``source``.
    A store that fails stops the pass (:class:`StoreError`): what was done is committed."""
    report = SyncReport(store.tenant, source.name, datetime.now(UTC))
    t0 = time.monotonic()
    run = _Run(engine, store, source, workers, spool_dir, retention or DEFAULT_PERIOD)
    chosen = list(dict.fromkeys(persons)) if persons is not None else None
    for vertical in source.verticals:
        exporter = source.exporter(vertical)
        try:
            try:
                owners = chosen if chosen is not None else list(exporter.iter_owners())
            except ConnectorError as exc:
                report.errors.append(f"cannot list the persons of {source.name} ({vertical}): {exc}")
                continue
            done: list[tuple[PersonSync, set[str]]] = []
            for _person, asked in _asked_ahead(run, exporter, vertical, owners, max(1, min(workers, ASKERS))):
                one, source_ids = run.apply(vertical, asked.result())
                report.persons.append(one)
                if source_ids is not None:
                    done.append((one, source_ids))
                if progress is not None:
                    progress(one)
            run.check(vertical, done)
        finally:
            exporter.close()
    report.seconds = time.monotonic() - t0
    return report


class _Run:
    def __init__(self, engine: Engine, store: BlobStore, source: Peer, workers: int, spool_dir: Path | None,
                 retention: timedelta) -> None:
        self.engine, self.store, self.source, self.tenant = engine, store, source, store.tenant
        self.workers, self.spool_dir, self.retention = workers, spool_dir, retention
        self.blobs = StoredBlobs(store.list_digests())
        with engine.connect() as conn:
            self.epoch = index.blob_epoch(conn, self.tenant)

    def _store(self, item: Item) -> None:
        self.blobs.ensure(item.sha256, lambda: self.store.upload(item.sha256, item.size, item.content.open))

    def ask(self, exporter: Exporter, vertical: str, person: str) -> Asked:
        """On a thread: the state kept, what the source says changed since, and the changed items fetched
        and their contents stored (or why the source could not say)."""
        out = PersonSync(person, vertical)
        with self.engine.connect() as conn:
            before = sync_state.load(conn, self.tenant, self.source.name, vertical, person)
        try:
            changes = exporter.changes(person, before)
        except ConnectorError as exc:
            out.error = str(exc)
            return out, before, None, []
        except Exception as exc:  # noqa: BLE001 - a connector choking on garbage must not stop the others
            out.error = f"{self.source.name}: {type(exc).__name__}: {exc}"
            return out, before, None, []
        out.mode, out.full, out.changed = changes.mode, changes.full, len(changes.changed)
        rows: list[Row] = []
        refused = {r.id: refusal(r.owner, r.vertical, r.id, r.path) for r in changes.changed}
        for ref_id, why in refused.items():
            if why:
                out.failures.append({"item": ref_id, "error": f"{self.source.name}: {why}; the vault cannot keep it"})
        wanted = [r for r in changes.changed if not refused[r.id]]
        fetched = exporter.fetch_many(wanted, workers=max(1, self.workers // ASKERS), spool_dir=self.spool_dir)
        for got in fetched:
            if got.item is None:
                out.failures.append({"item": got.ref.id, "error": str(got.error)})
                continue
            item = got.item
            try:
                meta = vault_metadata(item.metadata, item.kind)
                self._store(item)
            except (TypeError, ValueError) as exc:
                out.failures.append({"item": item.id, "error": f"{self.source.name}: metadata is not JSON ({exc})"})
                continue
            finally:
                item.content.release()
            out.bytes += item.size if item.kind == "file" else 0
            rows.append((person, vertical, item.id, item.sha256, meta, item.path, item.size))
        return out, before, changes, rows

    def apply(self, vertical: str, asked: Asked) -> tuple[PersonSync, set[str] | None]:
        """What :meth:`ask` prepared, into the vault; returns the ids the source holds, for :meth:`check`."""
        out, before, changes, rows = asked
        if changes is None:
            return out, None
        if rows or changes.deleted or out.failures or changes.state != before:
            self._write(out, out.person, vertical, rows, changes, datetime.now(UTC))
        source_ids = set(known_etags(changes.state))
        out.source_items = len(source_ids)
        return out, source_ids

    def check(self, vertical: str, done: list[tuple[PersonSync, set[str]]]) -> None:
        """The completeness check of every person of the pass, the vault read in one query per 500 persons."""
        with self.engine.connect() as conn:
            live = index.live_digests(conn, self.tenant, vertical, [p.person for p, _ in done])
        for out, source_ids in done:
            out.misses = misses(source_ids, live.get(out.person, {}), self.blobs)
            if out.misses:
                log.warning("sync of %s (%s) from %s: %d item(s) not as at the source", out.person, vertical,
                            self.source.name, len(out.misses))

    def _write(self, out: PersonSync, person: str, vertical: str, rows: list[Row], changes: Changes,
               now: datetime) -> None:
        """The new versions, the tombstones and the new state, in one transaction."""
        with writer(self.engine).begin() as conn:
            epoch = index.guard_blobs(conn, self.tenant)
            if epoch != self.epoch:  # an erasure or purge deleted blobs since the store was listed
                self.blobs.reload(self.store.list_digests())
                self.epoch = epoch
                lost = {r[2] for r in rows if r[3] not in self.blobs}
                out.failures += [{"item": i, "error": "its content was deleted by an erasure or purge meanwhile"}
                                 for i in sorted(lost)]
                rows = [r for r in rows if r[2] not in lost]
            applied = index.append_many(conn, self.tenant, rows, changed_at=now)
            out.new_versions = sum(1 for a in applied if a.outcome == NEW)
            keep = in_force(index.retention_days(conn, self.tenant), self.retention).period
            for item_id in changes.deleted:
                a = index.append(conn, self.tenant, person, vertical, item_id, digest=None, metadata={}, path=None,
                                 size=None, changed_at=now, purge_after=purge_after(now, keep), check_order=False)
                out.deleted += a.outcome == NEW
            if not out.failures:  # else the next pass asks again from the old state
                sync_state.save(conn, self.tenant, self.source.name, vertical, person, changes.state, now)


def _asked_ahead(run: _Run, exporter: Exporter, vertical: str, persons: Iterable[str],
                 askers: int) -> Iterator[tuple[str, Future[Asked]]]:
    """``(person, what the source said)`` in order, the next persons asked meanwhile on ``askers`` threads
    (each request within the connector's rate limit)."""
    return done_ahead(lambda person: run.ask(exporter, vertical, person), persons, threads=askers,
                      ahead=2 * askers, name="vault-sync-ask")


__all__ = ["PersonSync", "StoreError", "SyncReport", "sync"]
