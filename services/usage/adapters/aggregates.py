"""Indicators computed from the pseudonymous activity, and a closed period's aggregates read back.

`compute` makes every cell of a period: for each grain (day, week, month), each combination of the
dimensions (structure, profile, level, resource; `*` where a dimension is not split; at most
`MAX_DIMENSIONS[grain]` of them) and each
indicator, an exact count. Distinct users cannot be added up from finer cells, so each combination
is one GROUP BY over `usage_activity`. Cells split by resource count visits only (a connection
opens a session, not a resource). Licences come from `usage_licence` as they stand (closing a period
takes that snapshot) and `usage_quota`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from itertools import combinations
from typing import Any, NamedTuple

from sqlalchemy import Connection, and_, case, func, literal, select

from ..rules.periods import bounds, month_start, week_start
from ..rules.rows import ALL, DIMENSIONS, MAX_DIMENSIONS
from .tables import usage_activity, usage_aggregate, usage_licence, usage_quota


class Cell(NamedTuple):
    """One exact count: an indicator over a day, week or month, for one combination of the dimensions."""

    grain: str
    start: date
    indicator: str
    structure: str
    profile: str
    level: str
    resource: str
    value: int

    def dimension(self, name: str) -> str:
        """The value of the dimension `name` (one of DIMENSIONS)."""
        return getattr(self, name)


PEOPLE = "people:"  # "people:connections": how many people the connections of a cell stand for (not published)


def dimension_sets(dimensions: Iterable[str] = DIMENSIONS) -> list[tuple[str, ...]]:
    """Every subset of `dimensions`, the empty one (the grand total) first."""
    dims = tuple(dimensions)
    return [combo for n in range(len(dims) + 1) for combo in combinations(dims, n)]


def compute(conn: Connection, tenant: str, period: str) -> list[Cell]:
    """Every cell of `period`, exact (no disclosure control yet)."""
    first, last = bounds(period)
    cells: list[Cell] = []
    a = usage_activity.c
    buckets = {"day": a.day, "week": a.week, "month": literal(first)}
    for grain, bucket in buckets.items():
        for dims in dimension_sets():
            if len(dims) > MAX_DIMENSIONS[grain]:
                continue
            split = [a[d] for d in dims]
            where = and_(a.tenant == tenant, a.period == period)
            if "resource" in dims:
                query = (select(bucket.label("start"), *split, func.sum(a.count).label("visits"),
                                func.count(a.pseudonym.distinct()).label("active_users"))
                         .where(where, a.kind == "visit"))
            else:
                query = select(bucket.label("start"), *split,
                               func.sum(case((a.kind == "session", a.count), else_=0)).label("connections"),
                               func.sum(case((a.kind == "visit", a.count), else_=0)).label("visits"),
                               func.count(a.pseudonym.distinct()).label("active_users"),
                               func.count(case((a.kind == "session", a.pseudonym)).distinct()).label("people_c"),
                               func.count(case((a.kind == "visit", a.pseudonym)).distinct()).label("people_v"),
                               ).where(where)
            query = query.group_by(bucket, *split) if grain != "month" else query.group_by(*split)
            for row in conn.execute(query):
                values = row._mapping
                start = _day(values["start"])
                structure, profile, level, resource = (values[d] if d in dims else ALL for d in DIMENSIONS)
                place: tuple[str, str, str, str] = (structure, profile, level, resource)
                for indicator in ("connections", "visits", "active_users"):
                    if indicator in values and (indicator != "connections" or values[indicator]):
                        cells.append(Cell(grain, start, indicator, *place, int(values[indicator] or 0)))
                # How many people each count stands for: disclosure control decides on them (PEOPLE).
                people = ((values["people_c"], values["people_v"]) if "people_c" in values
                          else (None, values["active_users"]))
                for indicator, n in zip(("connections", "visits"), people, strict=True):
                    if n is not None and (indicator != "connections" or values["connections"]):
                        cells.append(Cell(grain, start, PEOPLE + indicator, *place, int(n)))
                if grain == "month" and "resource" in dims and set(dims) <= {"structure", "resource"}:
                    cells.append(Cell(grain, start, "licences_used", *place, int(values["active_users"])))
    cells.extend(_licences(conn, tenant, first))
    cells.extend(_quotas(conn, tenant, first, last))
    return cells


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def _licences(conn: Connection, tenant: str, first: date) -> Iterator[Cell]:
    """Licences held now, per structure and resource and their totals (month grain)."""
    held: dict[tuple[str, str], int] = {}
    for row in conn.execute(select(usage_licence.c.structure, usage_licence.c.resource, usage_licence.c.held)
                            .where(usage_licence.c.tenant == tenant, usage_licence.c.held > 0)):
        held[(row.structure, row.resource)] = row.held
    for dims in (("structure", "resource"), ("resource",), ("structure",), ()):
        totals: dict[tuple[str, str], int] = {}
        for (structure, resource), n in held.items():
            key = (structure if "structure" in dims else ALL, resource if "resource" in dims else ALL)
            totals[key] = totals.get(key, 0) + n
        for (structure, resource), n in totals.items():
            yield Cell("month", first, "licences_granted", structure, ALL, ALL, resource, n)


def _quotas(conn: Connection, tenant: str, first: date, last: date) -> Iterator[Cell]:
    q = usage_quota.c
    counts: dict[tuple[str, date, str, str], int] = {}
    for row in conn.execute(select(q.day, q.structure, q.resource, q.count.label("n"))
                            .where(q.tenant == tenant, q.day >= first, q.day <= last)):
        day = _day(row.day)
        for grain, start in (("day", day), ("week", week_start(day)), ("month", month_start(day))):
            for dims in (("structure", "resource"), ("resource",), ("structure",), ()):
                key = (grain, start, row.structure if "structure" in dims else ALL,
                       row.resource if "resource" in dims else ALL)
                counts[key] = counts.get(key, 0) + row.n
    for (grain, start, structure, resource), n in counts.items():
        yield Cell(grain, start, "quota_exhausted", structure, ALL, ALL, resource, n)


def store(conn: Connection, tenant: str, period: str, cells: list[Cell]) -> None:
    conn.execute(usage_aggregate.delete().where(usage_aggregate.c.tenant == tenant,
                                                usage_aggregate.c.period == period))
    if cells:
        conn.execute(usage_aggregate.insert(), [{"tenant": tenant, "period": period, **c._asdict()} for c in cells])


def stored(conn: Connection, tenant: str, period: str, grains: Iterable[str] | None = None,
           by: Iterable[str] | None = None, indicators: Iterable[str] | None = None) -> list[Cell]:
    """A closed period's cells: of these `grains` only, split by `by` (or fewer) only, of these `indicators`
    only, if given."""
    g = usage_aggregate.c
    query = select(g.grain, g.start, g.indicator, g.structure, g.profile, g.level, g.resource, g.value).where(
        g.tenant == tenant, g.period == period)
    if grains is not None:
        query = query.where(g.grain.in_(sorted(grains)))
    if indicators is not None:
        query = query.where(g.indicator.in_(sorted(indicators)))
    if by is not None:
        split = set(by)
        query = query.where(*(g[d] == ALL for d in DIMENSIONS if d not in split))
    days: dict[Any, date] = {}  # a month has few distinct starts: each parsed once
    texts: dict[str, str] = {}  # and its cells repeat few names: each kept once in memory
    out = []
    for grain, start, indicator, structure, profile, level, resource, value in conn.execute(query):
        day = days.get(start)
        if day is None:
            day = days[start] = _day(start)
        out.append(Cell(texts.setdefault(grain, grain), day, texts.setdefault(indicator, indicator),
                        texts.setdefault(structure, structure), texts.setdefault(profile, profile),
                        texts.setdefault(level, level), texts.setdefault(resource, resource), value))
    return out
