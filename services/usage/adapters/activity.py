"""Writing what events tell: periods and their keys, pseudonymous activity, licences held, quotas."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Connection, select

from relais.db import bulk_add, insert_or_update

from ..rules.pseudonyms import new_key
from .tables import usage_licence, usage_period, usage_quota


@dataclass(frozen=True)
class PeriodState:
    key: bytes | None  # None once the period has closed (its key destroyed)

    @property
    def open(self) -> bool:
        return self.key is not None


def periods(conn: Connection, tenant: str, names: Iterable[str], now: datetime) -> dict[str, PeriodState]:
    """The state of each period named, opening (with a fresh key) those not seen yet.

    On PostgreSQL the rows are read FOR SHARE: a period cannot close (which takes them FOR UPDATE)
    while a batch writes its activity, so no pseudonym is written after its period's key is gone.
    """
    wanted = sorted(set(names))
    if not wanted:
        return {}
    found = _read(conn, tenant, wanted)
    if len(found) == len(wanted):  # the usual case: every period seen already
        return found
    stmt = insert_or_update(conn, usage_period).values(
        [{"tenant": tenant, "period": p, "pseudonym_key": new_key(), "opened_at": now, "late_events": 0}
         for p in wanted])
    conn.execute(stmt.on_conflict_do_nothing(index_elements=["tenant", "period"]))
    return _read(conn, tenant, wanted)


def _read(conn: Connection, tenant: str, wanted: list[str]) -> dict[str, PeriodState]:
    query = select(usage_period.c.period, usage_period.c.pseudonym_key).where(
        usage_period.c.tenant == tenant, usage_period.c.period.in_(wanted))
    if conn.dialect.name == "postgresql":
        query = query.with_for_update(read=True)
    return {row.period: PeriodState(row.pseudonym_key) for row in conn.execute(query)}


ACTIVITY_KEY = ("tenant", "day", "kind", "pseudonym", "structure", "profile", "level", "resource")


def add_activity(conn: Connection, rows: list[tuple]) -> None:
    """Add each row's count to its cell: rows of ACTIVITY_KEY's values, then period, week and count (the
    driver's executemany: this is the ingestion's hot path)."""
    bulk_add(conn, "usage_activity", ACTIVITY_KEY, ("period", "week", "count"), "count", rows)


def add_late(conn: Connection, tenant: str, late: Mapping[str, int]) -> None:
    """Count events that arrived after their period closed (they are counted nowhere else)."""
    for period, n in late.items():
        conn.execute(usage_period.update().where(usage_period.c.tenant == tenant, usage_period.c.period == period)
                     .values(late_events=usage_period.c.late_events + n))


def change_licences(conn: Connection, tenant: str, deltas: Mapping[tuple[str, str], int]) -> None:
    rows = [{"tenant": tenant, "structure": s, "resource": r, "held": d} for (s, r), d in deltas.items() if d]
    if rows:
        stmt = insert_or_update(conn, usage_licence)
        conn.execute(stmt.on_conflict_do_update(index_elements=["tenant", "structure", "resource"],
                                                set_={"held": usage_licence.c.held + stmt.excluded.held}), rows)


def add_quota(conn: Connection, tenant: str, counts: Mapping[tuple[date, str, str], int]) -> None:
    rows = [{"tenant": tenant, "day": d, "structure": s, "resource": r, "count": n} for (d, s, r), n in counts.items()]
    if rows:
        stmt = insert_or_update(conn, usage_quota)
        conn.execute(stmt.on_conflict_do_update(index_elements=["tenant", "day", "structure", "resource"],
                                                set_={"count": usage_quota.c.count + stmt.excluded.count}), rows)
