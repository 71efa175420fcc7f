"""What an export and an import share: items worked on by a thread pool, results checkpointed in batches.

The main thread walks persons and their items and submits one task per item (at most
``2 * workers`` under way, so memory stays bounded however many items there are); workers
return an :class:`ItemResult`; the main thread records results, and writes them (with what
the job does in the same transaction: the vault's index, for an export) every
``batch_items`` items or ``batch_seconds`` seconds. A person's vertical is recorded as done
once it was listed to the end and every one of its items is done.
"""
from __future__ import annotations

import logging
import queue
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from sqlalchemy import Connection, Engine
from sqlalchemy.exc import DBAPIError

from relais.db import writer

from ..adapters.blob_store import StoreError
from .checkpoint import COMPLETED, INCOMPLETE, STOPPED, Checkpoint, ItemRow, OwnerRow
from .report import DONE, FAILED, RunStats, TransferReport

log = logging.getLogger("relais.vault.transfer")

Progress = Callable[[RunStats], None]


@dataclass
class ItemResult:
    person: str
    vertical: str
    item_id: str
    path: str | None
    outcome: str | None = None  # what happened to it (export: new / unchanged; import: created / updated / unchanged)
    sha256: str | None = None
    size: int | None = None
    metadata: dict | None = None
    error: str | None = None  # the item failed, and why
    fatal: StoreError | None = None  # the vault store failed: the job stops, the item is tried again next run
    fetched: int | None = None  # bytes read from the source (None: not read)
    uploaded: bool = False  # its content was written to the vault store
    deduplicated: bool = False  # its content was in the vault store already

    def row(self) -> ItemRow:
        if self.error is not None:
            return ItemRow(self.person, self.vertical, self.item_id, FAILED, path=self.path, error=self.error)
        return ItemRow(self.person, self.vertical, self.item_id, DONE, self.outcome, self.sha256, self.size, self.path)


@dataclass
class _Owner:
    pending: int = 0  # items submitted, result not handled yet
    items: int = 0  # items listed
    failed: int = 0
    listed: bool = False  # its listing reached its end (or failed)
    listing_error: str | None = None


class JobRun:
    """One run of a job. Subclasses walk the items and write the batch (:meth:`write_batch`)."""

    def __init__(self, engine: Engine, cp: Checkpoint, *, workers: int, progress: Progress | None,
                 batch_items: int, batch_seconds: float) -> None:
        if workers < 1:
            raise ValueError("workers must be at least 1")
        self.engine, self.cp, self.workers, self.progress = engine, cp, workers, progress
        self.batch_items, self.batch_seconds = batch_items, batch_seconds
        self.stats = RunStats()
        self.owners: dict[tuple[str, str], _Owner] = {}
        self.results: list[ItemResult] = []  # handled, not written yet
        self.finished_owners: list[OwnerRow] = []
        self.in_flight: set[Future] = set()
        self._finished: queue.SimpleQueue[Future] = queue.SimpleQueue()  # futures as they finish
        self._watched = 0  # watched futures not seen finished yet
        self.fatal: StoreError | None = None
        self.errors: list[str] = []  # what stopped a whole vertical (its persons could not be listed)
        self.t0 = self.last_commit = time.monotonic()

    # -- what subclasses do -------------------------------------------------------------------
    def run(self) -> None:
        """Walk every person and item, submit them, drain, commit."""
        raise NotImplementedError

    def write_batch(self, conn: Connection, results: list[ItemResult]) -> list[ItemRow]:
        """Write what the job does with these results in ``conn``; return the checkpoint rows."""
        return [r.row() for r in results]

    # -- persons and items --------------------------------------------------------------------
    def begin_owner(self, person: str, vertical: str) -> _Owner:
        owner = self.owners[(person, vertical)] = _Owner()
        return owner

    def end_listing(self, person: str, vertical: str, error: str | None = None) -> None:
        owner = self.owners[(person, vertical)]
        owner.listed, owner.listing_error = True, error
        if error:
            log.warning("person %s, %s: %s", person, vertical, error)
        self._settle(person, vertical, owner)

    def submit(self, pool: ThreadPoolExecutor, person: str, vertical: str, fn: Callable[..., ItemResult],
               *args) -> Future:
        while len(self.in_flight) >= 2 * self.workers:
            self.collect(block=True)
        self.owners[(person, vertical)].pending += 1
        fut = pool.submit(fn, *args)
        self.in_flight.add(fut)
        fut.add_done_callback(self._finished.put)
        self.collect(block=False)
        return fut

    def watch(self, fut: Future) -> None:
        """Wake :meth:`collect` up when ``fut`` (not an item: a listing, say) is done."""
        self._watched += 1
        fut.add_done_callback(self._finished.put)

    def collect(self, *, block: bool) -> None:
        """Handle the items that are done; with ``block``, wait for one (or a watched future) first."""
        while True:
            try:
                fut = self._finished.get(block=block and bool(self.in_flight or self._watched))
            except queue.Empty:
                break
            block = False
            if fut in self.in_flight:
                self.in_flight.discard(fut)
                self._handle(fut.result())
            else:
                self._watched -= 1
        if time.monotonic() - self.last_commit >= self.batch_seconds or len(self.results) >= self.batch_items:
            self.commit()

    def drain(self) -> None:
        while self.in_flight:
            self.collect(block=True)

    def abort(self, pool: ThreadPoolExecutor) -> None:
        """After an exception or Ctrl-C: keep what finished, drop what did not start."""
        for fut in self.in_flight:
            fut.cancel()
        pool.shutdown(wait=True, cancel_futures=True)
        for fut in list(self.in_flight):
            if fut.done() and not fut.cancelled() and fut.exception() is None:
                self.in_flight.discard(fut)
                self._handle(fut.result())
        try:
            self.commit()
        except Exception as exc:  # noqa: BLE001 - the database is what failed: the first error tells
            log.warning("could not checkpoint the last %d item(s) of %s job %s (%s); they are done again on resume",
                        len(self.results), self.cp.kind, self.cp.job_id, type(exc).__name__)

    def tick(self) -> None:
        if self.progress is not None:
            self.stats.seconds = time.monotonic() - self.t0
            self.progress(self.stats)

    def _handle(self, r: ItemResult) -> None:
        owner = self.owners[(r.person, r.vertical)]
        owner.pending -= 1
        if r.fatal is not None:
            self.fatal = self.fatal or r.fatal
            owner.failed += 1  # not recorded: tried again on resume
        else:
            s = self.stats
            s.items += 1
            if r.fetched is not None:
                s.fetched += 1
                s.fetched_bytes += r.fetched
            if r.uploaded:
                s.uploaded += 1
                s.uploaded_bytes += r.size or 0
            s.deduplicated += r.deduplicated
            if r.error is not None:
                owner.failed += 1
                log.warning("%s", r.error)
            self.results.append(r)
        self._settle(r.person, r.vertical, owner)
        self.tick()

    def _settle(self, person: str, vertical: str, owner: _Owner) -> None:
        if not owner.listed or owner.pending:
            return
        if owner.listing_error:
            self.finished_owners.append(OwnerRow(person, vertical, FAILED, owner.items, owner.listing_error))
        elif not owner.failed:
            self.finished_owners.append(OwnerRow(person, vertical, DONE, owner.items))
        del self.owners[(person, vertical)]

    # -- the checkpoint -----------------------------------------------------------------------
    def commit(self) -> None:
        self.last_commit = time.monotonic()
        if not self.results and not self.finished_owners:
            return
        for attempt in (1, 2):
            try:
                with writer(self.engine).begin() as conn:
                    rows = self.write_batch(conn, self.results)
                    self.cp.record(conn, rows, self.finished_owners)
                break
            except DBAPIError:
                if attempt == 2:
                    raise
                log.warning("checkpoint of %s job %s collided with another writer; writing it again",
                            self.cp.kind, self.cp.job_id)
        self.results, self.finished_owners = [], []


def run_job(run: JobRun) -> TransferReport:
    """Run ``run`` to its end and close its job: ``completed``, ``incomplete`` (items or a listing
    failed: the report says which and why) or ``stopped`` (the vault store failed; what was done
    is kept). Running the same command again resumes an incomplete or stopped job."""
    cp = run.cp
    try:
        run.run()
    except StoreError as exc:  # listing the store before anything started
        run.fatal = exc
    except KeyboardInterrupt:
        cp.finish(STOPPED, "interrupted")
        raise
    except BaseException as exc:
        cp.finish(STOPPED, f"{type(exc).__name__}: {exc}")
        raise
    run.stats.seconds = time.monotonic() - run.t0
    if run.fatal is not None:
        stopped = f"{run.fatal}; the {cp.kind} stopped, keeping what it had done: run it again to resume"
        cp.finish(STOPPED, stopped)
        return cp.report(STOPPED, run.stats, stopped)
    report = cp.report(COMPLETED, run.stats)
    error = "; ".join(run.errors) or None
    state = COMPLETED if not report.failures and not error else INCOMPLETE
    cp.finish(state, error)
    report.state, report.error = state, error
    return report
