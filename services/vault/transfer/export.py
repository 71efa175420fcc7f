"""Contract-end export: every item of every person at a source, into the vault.

For each vertical the source's connector handles and each person it has (or those given), the
person's items are listed through the connector's exporter and fetched on ``workers`` threads
(the SDK's verified fetch: hashed as they come, checked against what the source announced,
retried when cut off). Each content goes to the vault store once, by sha256 (a file shared by
several persons, or stored by an earlier run, is not uploaded again), and the versions are
indexed in the vault in batches, in the same transaction as the job's checkpoint.

So a process killed at any moment loses nothing and redoes little: what was committed is
skipped by the next run; what was fetched and uploaded but not committed is fetched again and
found in the store (not uploaded again). An item the source cannot give (timeout, garbage, a
checksum that does not match) is recorded as failed with the reason and the rest goes on; the
next run tries it again. The object store failing stops the job (nothing more could be kept),
with what is done committed and a message saying so; running the command again resumes.

The vault keeps, per item, the connector's metadata plus ``kind`` (``file`` or ``folder``), so
that an import can rebuild folders.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine

from connectors.sdk import ConnectorError, Exporter, ItemRef
from connectors.sdk.items import ref_label

from ..adapters import index
from ..adapters.blob_store import BlobStore, StoreError
from ..item_version import ItemVersion
from ..rules.changes import NEW, UNCHANGED, plan_change
from ..rules.item_ids import refusal
from ..rules.item_metadata import vault_metadata
from .blobs import StoredBlobs
from .checkpoint import Checkpoint, ItemRow, Scope, open_job
from .listing import listings_ahead
from .peers import Peer
from .pipeline import ItemResult, JobRun, Progress, run_job
from .report import TransferReport

log = logging.getLogger("relais.vault.transfer")


def _result(ref: ItemRef, **kw) -> ItemResult:
    return ItemResult(ref.owner, ref.vertical, ref.id, ref.path, **kw)


class _ExportRun(JobRun):
    def __init__(self, engine: Engine, store: BlobStore, source: Peer, cp: Checkpoint, *, spool_dir: Path | None,
                 **kw) -> None:
        super().__init__(engine, cp, **kw)
        self.store, self.source, self.tenant, self.spool_dir = store, source, store.tenant, spool_dir
        self.blobs = StoredBlobs()
        self.epoch = 0
        self.in_vault: set[str] = set()

    def run(self) -> None:
        self.blobs = StoredBlobs(self.store.list_digests())
        with self.engine.connect() as conn:
            self.epoch = index.blob_epoch(conn, self.tenant)
        done_owners = self.cp.owners_done()
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vault-export")
        try:
            for vertical in self.cp.scope.verticals:
                if self.fatal:
                    break
                exporter = self.source.exporter(vertical)
                try:
                    self._vertical(pool, exporter, vertical, done_owners)
                    self.drain()
                finally:
                    exporter.close()
        except BaseException:
            self.abort(pool)
            raise
        pool.shutdown(wait=True)
        self.commit()

    def _vertical(self, pool: ThreadPoolExecutor, exporter: Exporter, vertical: str,
                  done_owners: dict[tuple[str, str], int]) -> None:
        def done_before(person: str) -> bool:
            if (person, vertical) not in done_owners:
                return False
            self.stats.skipped_resumed += done_owners[(person, vertical)]
            self.tick()
            return True

        persons = self.cp.scope.persons if self.cp.scope.persons is not None else exporter.iter_owners()
        with self.engine.connect() as conn:
            self.in_vault = set(index.persons(conn, self.tenant, vertical))  # others have no version to compare
        listings = listings_ahead(exporter, persons, skip=done_before)
        try:
            while not self.fatal:
                try:
                    person, listing = next(listings)
                except StopIteration:
                    return
                except Exception as exc:  # noqa: BLE001 - the source's list of persons: ConnectorError, or garbage
                    self.errors.append(f"cannot list the persons of {self.source.name} ({vertical}): {exc}")
                    log.warning("%s", self.errors[-1])
                    return
                self.watch(listing)
                while not listing.done():  # keep handling results meanwhile
                    self.collect(block=True)
                self._owner(pool, exporter, person, vertical, *listing.result())
        finally:
            listings.close()

    def _owner(self, pool: ThreadPoolExecutor, exporter: Exporter, person: str, vertical: str,
               refs: list[ItemRef], error: str | None) -> None:
        owner = self.begin_owner(person, vertical)
        done = self.cp.done_items(person, vertical)
        latest: dict[str, ItemVersion] = {}
        if person in self.in_vault:
            with self.engine.connect() as conn:
                latest = {v.item_id: v for v in index.current(conn, self.tenant, person) if v.vertical == vertical}
        for ref in refs:
            if self.fatal:
                return
            owner.items += 1
            if ref.id in done:
                self.stats.skipped_resumed += 1
                continue
            self.submit(pool, person, vertical, self._one, exporter, ref, latest.get(ref.id))
        self.end_listing(person, vertical, error)

    # -- one item, on a worker thread ---------------------------------------------------------
    def _one(self, exporter: Exporter, ref: ItemRef, latest: ItemVersion | None) -> ItemResult:
        refused = refusal(ref.owner, ref.vertical, ref.id, ref.path)
        if refused:
            return _result(ref, error=f"{self.source.name}: {refused}; the vault cannot keep it "
                                      f"(item {ref_label(ref)!r})")
        if (latest is not None and ref.sha256 is not None and ref.sha256 == latest.content_sha256
                and ref.path == latest.path and ref.sha256 in self.blobs):
            try:
                meta = vault_metadata(ref.metadata, ref.kind)
            except (TypeError, ValueError):
                meta = None
            if meta == latest.metadata:  # the source announces the very content the vault has: not read
                return _result(ref, outcome=UNCHANGED, sha256=latest.content_sha256, size=latest.size, metadata=meta)
        try:
            item = exporter.fetch(ref, spool_dir=self.spool_dir)
        except ConnectorError as exc:
            return _result(ref, error=str(exc))
        except Exception as exc:  # noqa: BLE001 - garbage a connector did not expect: this item fails, not the job
            return _result(ref, error=f"{self.source.name}: {type(exc).__name__}: {exc} (item {ref_label(ref)!r})")
        try:
            try:
                meta = vault_metadata(item.metadata, item.kind)
            except (TypeError, ValueError) as exc:
                return _result(ref, error=f"{self.source.name}: metadata is not JSON ({exc}) "
                                          f"(item {ref_label(ref)!r})")
            try:
                uploaded = self.blobs.ensure(item.sha256, lambda: self.store.upload(
                    item.sha256, item.size, item.content.open))
            except StoreError as exc:
                return _result(ref, fatal=exc)
            except OSError as exc:  # the local store's disk full, say
                return _result(ref, fatal=StoreError(f"vault store of tenant {self.tenant}: cannot store blob "
                                                     f"{item.sha256}: {type(exc).__name__}: {exc}"))
            outcome = plan_change(latest, item.sha256, meta, item.path, None)  # new or unchanged: no order check
            return _result(ref, outcome=outcome, sha256=item.sha256, size=item.size, metadata=meta,
                           fetched=item.size if item.kind == "file" else None, uploaded=uploaded,
                           deduplicated=not uploaded and item.kind == "file")
        finally:
            item.content.release()

    # -- the batch: the vault's index and the checkpoint, in one transaction ------------------
    def write_batch(self, conn: Connection, results: list[ItemResult]) -> list[ItemRow]:
        epoch = index.guard_blobs(conn, self.tenant)
        if epoch != self.epoch:  # an erasure or purge deleted blobs since the store was listed
            self.blobs.reload(self.store.list_digests())
            for r in results:
                if r.outcome == NEW and r.error is None and r.sha256 not in self.blobs:
                    r.error = ("its content was deleted from the vault store by an erasure or purge running at "
                               "the same time; run the export again")
        new = [r for r in results if r.outcome == NEW and r.error is None]
        applied = index.append_many(conn, self.tenant, [
            (r.person, r.vertical, r.item_id, r.sha256, r.metadata or {}, r.path, r.size) for r in new],
            changed_at=datetime.now(UTC))
        for r, a in zip(new, applied, strict=True):
            r.outcome = a.outcome
        self.epoch = epoch
        return [r.row() for r in results]


def export(engine: Engine, store: BlobStore, source: Peer, *, persons: Iterable[str] | None = None,
           workers: int = 8, restart: bool = False, progress: Progress | None = None,
           spool_dir: Path | None = None, batch_items: int = 500, batch_seconds: float = 2.0) -> TransferReport:
    """Export every item of ``persons`` (default: every person the source has) from ``source``
    into the tenant's vault (``store.tenant``), resuming the unfinished export job of this tenant
    and connector if there is one (``restart``: abandon it and start afresh).

    Returns the job's report (state ``completed``, ``incomplete`` when items failed, ``stopped``
    when the object store failed); raises :class:`TransferError` when the job cannot start."""
    scope = Scope(tuple(dict.fromkeys(persons)) if persons is not None else None, tuple(source.verticals))
    cp = open_job(engine, tenant=store.tenant, kind="export", connector=source.name, scope=scope, restart=restart)
    return run_job(_ExportRun(engine, store, source, cp, workers=workers, spool_dir=spool_dir, progress=progress,
                              batch_items=batch_items, batch_seconds=batch_seconds))
