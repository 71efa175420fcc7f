"""Closing a period: its indicators kept as aggregates, its pseudonyms and key destroyed, for good.

First the key is destroyed (set NULL, a short write: a batch that has read it on PostgreSQL holds
the row FOR SHARE until it commits, so none writes a pseudonym after), then every cell is computed
from the activity, reading only, then stored (`usage_aggregate`) while the activity is deleted and
the period marked closed. A crash between the steps leaves the period open without a key: the next
closing takes it up where it stopped. Then the bytes are scrubbed where the database lets us: on
SQLite (the embedded default), deletes overwrite the freed space with zeros (`secure_delete`) and
the write-ahead log is checkpointed and truncated, so neither file holds a pseudonym or the key any
more; on PostgreSQL, `VACUUM FULL` rewrites the two tables (its write-ahead log and the backups keep
the old pages until they are recycled: the data-protection description says so).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, Engine, select

from relais.db import writer

from ..adapters.aggregates import compute, store
from ..adapters.tables import usage_activity, usage_period
from ..rules.periods import DEFAULT_GRACE, bounds, closable

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Closed:
    period: str
    cells: int
    activity_rows: int
    already: bool = False

    def to_dict(self) -> dict[str, object]:
        return {"period": self.period, "cells": self.cells, "activity_rows_deleted": self.activity_rows,
                "already_closed": self.already}


class NotClosable(Exception):
    """A period that has not ended yet (or whose grace has not passed) without `force`."""


def close_period(engine: Engine, tenant: str, period: str, now: datetime, zone: ZoneInfo, *,
                 grace=DEFAULT_GRACE, force: bool = False) -> Closed:
    """Close `period` in three steps, none holding the database long, and safe to run again after a crash:
    1. its key is destroyed (a short write): from then on its events count as late;
    2. its cells are computed, reading only (on SQLite, the other writers go on meanwhile);
    3. its aggregates stored, its activity deleted, it is marked closed (one write), then scrubbed."""
    bounds(period)  # a malformed period is refused here (PeriodError)
    if not force and not closable(period, now, zone, grace):
        raise NotClosable(f"period {period} has not ended, or its grace ({grace}) has not passed: it may still "
                          f"receive events (--force closes it anyway; later events count as late)")
    with writer(engine).begin() as conn:
        query = select(usage_period.c.closed_at).where(usage_period.c.tenant == tenant,
                                                       usage_period.c.period == period)
        if conn.dialect.name == "postgresql":
            query = query.with_for_update()
        row = conn.execute(query).first()
        if row is not None and row.closed_at is not None:
            return Closed(period, 0, 0, already=True)
        if row is None:  # no event came in the period: closed all the same, so that none opens it later
            conn.execute(usage_period.insert().values(tenant=tenant, period=period, pseudonym_key=None,
                                                      opened_at=now, late_events=0))
        else:
            conn.execute(usage_period.update().where(usage_period.c.tenant == tenant,
                                                     usage_period.c.period == period).values(pseudonym_key=None))
    with engine.connect() as conn:
        cells = compute(conn, tenant, period)
    with writer(engine).begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA secure_delete = ON")
        store(conn, tenant, period, cells)
        deleted = conn.execute(usage_activity.delete().where(usage_activity.c.tenant == tenant,
                                                             usage_activity.c.period == period)).rowcount
        conn.execute(usage_period.update().where(usage_period.c.tenant == tenant, usage_period.c.period == period)
                     .values(closed_at=now))
    scrub(engine)
    log.info("usage: period %s closed: %d cells kept, %d pseudonymous rows and the key destroyed",
             period, len(cells), deleted)
    return Closed(period, len(cells), deleted)


def scrub(engine: Engine) -> None:
    """Make the deleted bytes unreadable where the database allows it (see the module's docstring)."""
    if engine.dialect.name == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    elif engine.dialect.name == "postgresql":
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.exec_driver_sql("VACUUM FULL usage_activity, usage_period")


def open_periods(conn: Connection, tenant: str) -> list[str]:
    return [r.period for r in conn.execute(select(usage_period.c.period).where(
        usage_period.c.tenant == tenant, usage_period.c.closed_at.is_(None)).order_by(usage_period.c.period))]


def close_due(engine: Engine, tenant: str, now: datetime, zone: ZoneInfo, grace=DEFAULT_GRACE) -> list[Closed]:
    """Close every open period that has ended and whose grace has passed (the service's timer)."""
    with engine.connect() as conn:
        due = [p for p in open_periods(conn, tenant) if closable(p, now, zone, grace)]
    return [close_period(engine, tenant, p, now, zone, grace=grace) for p in due]
