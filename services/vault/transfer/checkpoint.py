"""The database adapter of transfer jobs: start or resume a job, record what it finished, report.

What a job finishes is recorded by :meth:`Checkpoint.record` inside the caller's transaction,
the one that writes the vault's index rows (export), so the two never disagree. A process
killed at any point leaves the job ``running`` with everything it committed; the next run of
the same command finds it, sees that its process is gone, and resumes it.
"""
from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, func, select, update

from relais.db import insert_or_update, writer

from .report import DONE, FAILED, Failure, RunStats, TransferReport, VerticalCounts
from .tables import vault_transfer_item as items_t
from .tables import vault_transfer_job as jobs_t
from .tables import vault_transfer_owner as owners_t

RUNNING, STOPPED, INCOMPLETE, COMPLETED, ABANDONED = "running", "stopped", "incomplete", "completed", "abandoned"
UNFINISHED = (RUNNING, STOPPED, INCOMPLETE)
#: A job another host runs is taken for dead when it wrote no checkpoint for this long.
STALE_AFTER = timedelta(minutes=10)


class TransferError(Exception):
    """A transfer that cannot start or go on; the message says why and what to do."""


@dataclass(frozen=True)
class Scope:
    """What a job covers: the persons given (None: every person the source or vault has) and verticals."""

    persons: tuple[str, ...] | None
    verticals: tuple[str, ...]

    def to_json(self) -> str:
        return json.dumps({"persons": list(self.persons) if self.persons is not None else None,
                           "verticals": list(self.verticals)}, sort_keys=True)

    def describe(self) -> str:
        who = "every person" if self.persons is None else f"{len(self.persons)} given person(s)"
        return f"{who}, {', '.join(self.verticals)}"


@dataclass(frozen=True)
class ItemRow:
    person: str
    vertical: str
    item_id: str
    state: str  # done | failed
    outcome: str | None = None
    sha256: str | None = None
    size: int | None = None
    path: str | None = None
    error: str | None = None


@dataclass(frozen=True)
class OwnerRow:
    person: str
    vertical: str
    state: str  # done | failed (its listing)
    items: int = 0
    error: str | None = None


def _now() -> datetime:
    return datetime.now(UTC)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def this_runner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def _runner_alive(runner: str | None, updated_at: datetime | None) -> bool:
    """Whether the process that last ran a ``running`` job may still be running it."""
    if not runner:
        return False
    host, _, pid = runner.rpartition(":")
    if host == socket.gethostname():
        if not pid.isdigit() or int(pid) == os.getpid():
            return False
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return updated_at is not None and _now() - updated_at < STALE_AFTER


class Checkpoint:
    """One job's checkpoint. Build it with :func:`open_job`."""

    def __init__(self, engine: Engine, job_id: str, tenant: str, kind: str, connector: str, scope: Scope,
                 runs: int, resumed: bool) -> None:
        self.engine, self.job_id, self.tenant, self.kind = engine, job_id, tenant, kind
        self.connector, self.scope, self.runs, self.resumed = connector, scope, runs, resumed

    # -- reading what earlier runs did --------------------------------------------------------
    def owners_done(self) -> dict[tuple[str, str], int]:
        """(person, vertical) the job finished (listed to the end, every item done): their item counts."""
        if not self.resumed:
            return {}
        with self.engine.connect() as conn:
            return {(r[0], r[1]): r[2] for r in conn.execute(
                select(owners_t.c.person, owners_t.c.vertical, owners_t.c["items"]).where(
                    owners_t.c.job_id == self.job_id, owners_t.c.state == DONE))}

    def done_items(self, person: str, vertical: str) -> set[str]:
        """Ids of the person's items of this vertical that the job has done (failed ones are tried again)."""
        if not self.resumed:
            return set()
        with self.engine.connect() as conn:
            return {r[0] for r in conn.execute(select(items_t.c.item_id).where(
                items_t.c.job_id == self.job_id, items_t.c.person == person, items_t.c.vertical == vertical,
                items_t.c.state == DONE))}

    # -- writing ------------------------------------------------------------------------------
    def record(self, conn: Connection, items: Iterable[ItemRow], owners: Iterable[OwnerRow] = ()) -> None:
        """Record finished items and persons in the caller's transaction (a later record of the same
        item or person replaces the earlier one: a failure retried and done)."""
        now, items, owners = _now(), list(items), list(owners)
        item_rows = [{"job_id": self.job_id, "person": r.person, "vertical": r.vertical, "item_id": r.item_id,
                      "state": r.state, "outcome": r.outcome, "sha256": r.sha256, "size": r.size, "path": r.path,
                      "error": r.error, "at": now} for r in items]
        owner_rows = [{"job_id": self.job_id, "person": r.person, "vertical": r.vertical, "state": r.state,
                       "items": r.items, "error": r.error} for r in owners]
        _upsert(conn, items_t, ("job_id", "person", "vertical", "item_id"), item_rows)
        _upsert(conn, owners_t, ("job_id", "person", "vertical"), owner_rows)
        for r in owners if self.resumed else ():
            if r.state == DONE:  # every item listed is done: a failure left from an earlier run is gone at the source
                conn.execute(items_t.delete().where(
                    items_t.c.job_id == self.job_id, items_t.c.person == r.person,
                    items_t.c.vertical == r.vertical, items_t.c.state == FAILED))
        conn.execute(update(jobs_t).where(jobs_t.c.job_id == self.job_id).values(updated_at=now))

    def finish(self, state: str, error: str | None = None) -> None:
        with writer(self.engine).begin() as conn:
            conn.execute(update(jobs_t).where(jobs_t.c.job_id == self.job_id).values(
                state=state, error=error, updated_at=_now(), finished_at=_now() if state == COMPLETED else None))

    # -- the report ---------------------------------------------------------------------------
    def report(self, state: str, stats: RunStats, error: str | None = None) -> TransferReport:
        rep = TransferReport(job=self.job_id, kind=self.kind, tenant=self.tenant, connector=self.connector,
                             state=state, resumed=self.resumed, runs=self.runs, error=error, this_run=stats)
        with self.engine.connect() as conn:
            for r in conn.execute(select(items_t.c.vertical, items_t.c.state, items_t.c.outcome, func.count(),
                                         func.coalesce(func.sum(items_t.c.size), 0))
                                  .where(items_t.c.job_id == self.job_id)
                                  .group_by(items_t.c.vertical, items_t.c.state, items_t.c.outcome)):
                counts = rep.verticals.setdefault(r[0], VerticalCounts())
                if r[1] == DONE:
                    counts.items += int(r[3])
                    counts.bytes += int(r[4])
                    counts.outcomes[r[2]] = counts.outcomes.get(r[2], 0) + int(r[3])
                else:
                    counts.failed += int(r[3])
            failures = [Failure(r.person, r.vertical, None, r.error or "") for r in conn.execute(
                select(owners_t.c.person, owners_t.c.vertical, owners_t.c.error).where(
                    owners_t.c.job_id == self.job_id, owners_t.c.state == FAILED)
                .order_by(owners_t.c.person, owners_t.c.vertical))]
            failures += [Failure(r.person, r.vertical, r.item_id, r.error or "") for r in conn.execute(
                select(items_t.c.person, items_t.c.vertical, items_t.c.item_id, items_t.c.error).where(
                    items_t.c.job_id == self.job_id, items_t.c.state == FAILED)
                .order_by(items_t.c.person, items_t.c.vertical, items_t.c.item_id))]
            persons = select(items_t.c.person).where(items_t.c.job_id == self.job_id).union(
                select(owners_t.c.person).where(owners_t.c.job_id == self.job_id)).subquery()
            rep.persons = int(conn.execute(select(func.count()).select_from(persons)).scalar_one())
        for f in failures:
            rep.verticals.setdefault(f.vertical, VerticalCounts())
        rep.failures = failures
        return rep


def open_job(engine: Engine, *, tenant: str, kind: str, connector: str, scope: Scope,
             restart: bool = False) -> Checkpoint:
    """The unfinished job of this tenant, kind and connector, resumed; else a new job.

    An unfinished job whose process still runs raises :class:`TransferError` (two processes
    must not run one job), as does one that covers other persons or verticals (say ``restart``
    to abandon it and start afresh)."""
    me, now = this_runner(), _now()
    with writer(engine).begin() as conn:
        row = conn.execute(select(jobs_t).where(
            jobs_t.c.tenant == tenant, jobs_t.c.kind == kind, jobs_t.c.connector == connector,
            jobs_t.c.state.in_(UNFINISHED)).order_by(jobs_t.c.started_at.desc()).limit(1)).first()
        if row is not None and row.state == RUNNING and _runner_alive(row.runner, _utc(row.updated_at)):
            raise TransferError(
                f"{kind} job {row.job_id} of tenant {tenant} through {connector} is being run by {row.runner} "
                f"(last checkpoint {_utc(row.updated_at):%Y-%m-%d %H:%M:%S} UTC): wait for it to end, or stop it first")
        if row is not None and restart:
            conn.execute(update(jobs_t).where(jobs_t.c.job_id == row.job_id).values(state=ABANDONED, updated_at=now))
            row = None
        if row is not None:
            if row.scope != scope.to_json():
                old = json.loads(row.scope)
                was = Scope(tuple(old["persons"]) if old["persons"] is not None else None, tuple(old["verticals"]))
                raise TransferError(
                    f"an unfinished {kind} job {row.job_id} of tenant {tenant} through {connector} covers "
                    f"{was.describe()}, not {scope.describe()}: run it with the same persons to resume it, "
                    "or add --restart to abandon it and start a new one")
            conn.execute(update(jobs_t).where(jobs_t.c.job_id == row.job_id).values(
                state=RUNNING, runner=me, runs=row.runs + 1, updated_at=now, error=None))
            return Checkpoint(engine, row.job_id, tenant, kind, connector, scope, row.runs + 1, resumed=True)
        job_id = uuid.uuid4().hex
        conn.execute(jobs_t.insert().values(job_id=job_id, tenant=tenant, kind=kind, connector=connector,
                                            scope=scope.to_json(), state=RUNNING, runner=me, runs=1,
                                            started_at=now, updated_at=now))
    return Checkpoint(engine, job_id, tenant, kind, connector, scope, 1, resumed=False)


def _upsert(conn: Connection, table, keys: tuple[str, ...], rows: list[dict]) -> None:
    if not rows:
        return
    stmt = insert_or_update(conn, table)
    stmt = stmt.on_conflict_do_update(index_elements=list(keys), set_={
        c.name: stmt.excluded[c.name] for c in table.columns if c.name not in keys})
    conn.execute(stmt, rows)

