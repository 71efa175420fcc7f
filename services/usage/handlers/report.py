"""Making a report: a period's cells, for the dimensions asked, with disclosure control applied.

For a closed period the cells come from its aggregates; for the open one they are computed from
the pseudonymous activity as it stands (`provisional`: it still grows). Then, for each table (one
indicator, over one day, week or month), disclosure control decides what is published
(rules/disclosure.py): cells and margins under the threshold suppressed, then what would let one
be worked out. Disclosure control decides on how many people an entry stands for (18 connections of
6 pupils are 6 people: under 10, suppressed), the counts of people of the cells and margins as
computed (`people:` cells, never published). The exact value of a margin is published (distinct
users are not the sum of their cells), and a margin whose own count of people is under the
threshold is suppressed too. Licences unused and
the adoption rate are derived from the published licences granted and used only: where one of
them is suppressed, so are they.

With `epsilon`, the distinct-user tables (active users, licences used) are released with
differential privacy instead (rules/privacy.py), charged to the period's privacy budget
(`usage_release`); the other indicators keep suppression.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, Engine, select

from relais.db import writer

from ..adapters.aggregates import PEOPLE, Cell, compute, stored
from ..adapters.tables import usage_period, usage_release
from ..rules.disclosure import CountTable, suppress
from ..rules.periods import bounds
from ..rules.privacy import PrivacyBudget, Spend, release_counts
from ..rules.rows import ALL, DIMENSIONS, GRAINS, MAX_DIMENSIONS, Row

DP_INDICATORS = ("active_users", "licences_used")


class ReportError(ValueError):
    """A report that cannot be made as asked; the message says what to change."""


@dataclass(frozen=True)
class Report:
    period: str
    by: tuple[str, ...]
    grain: str
    rows: list[Row]
    provisional: bool  # the period is open: its figures still grow
    late_events: int  # events that arrived after the period closed, counted nowhere else
    threshold: int
    epsilon: float | None

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "by": list(self.by), "grain": self.grain, "provisional": self.provisional,
                "late_events": self.late_events, "threshold": self.threshold, "epsilon": self.epsilon,
                "rows": [r.to_dict() for r in self.rows]}


def parse_by(text: str) -> tuple[str, ...]:
    names = tuple(n.strip() for n in text.split(",") if n.strip()) if text else ()
    unknown = [n for n in names if n not in DIMENSIONS]
    if unknown or len(set(names)) != len(names):
        raise ReportError(f"--by {text!r}: name each of {', '.join(DIMENSIONS)} at most once, comma-separated")
    return tuple(d for d in DIMENSIONS if d in names)


def make_report(engine: Engine, tenant: str, period: str, by: Sequence[str], grain: str, *, threshold: int,
                epsilon: float | None = None, budget: float = 10.0, bound: int = 1) -> Report:
    bounds(period)  # PeriodError for a malformed period
    if grain not in GRAINS:
        raise ReportError(f"--grain {grain!r}: one of {', '.join(GRAINS)}")
    by = tuple(by)
    if len(by) > MAX_DIMENSIONS[grain]:
        raise ReportError(f"--grain {grain} splits by {MAX_DIMENSIONS[grain]} dimension(s) at most (cells are kept "
                          f"so): ask for fewer than {', '.join(by)}, or a coarser grain")
    with engine.connect() as conn:
        state = conn.execute(select(usage_period.c.closed_at, usage_period.c.late_events).where(
            usage_period.c.tenant == tenant, usage_period.c.period == period)).first()
        closed = state is not None and state.closed_at is not None
        cells = stored(conn, tenant, period) if closed else compute(conn, tenant, period)
    chosen = [c for c in cells if c["grain"] == grain and all(c[d] == ALL for d in DIMENSIONS if d not in by)]
    tables: dict[tuple[Any, str], list[Cell]] = defaultdict(list)
    for cell in chosen:
        tables[(cell["start"], cell["indicator"])].append(cell)
    spends: list[Spend] = []
    rows: list[Row] = []
    for (start, indicator), table in sorted(tables.items(), key=lambda t: (t[0][0], t[0][1])):
        if indicator.startswith(PEOPLE):
            continue
        if epsilon is not None and indicator in DP_INDICATORS and by:
            rows.extend(_noisy(period, grain, by, indicator, table, epsilon, bound))
            spends.append(Spend(f"{indicator} {grain} {start} by {','.join(by)}", Decimal(repr(float(epsilon)))))
        else:
            people = tables.get((start, PEOPLE + indicator), table)
            rows.extend(_suppressed(period, grain, by, indicator, table, people, threshold))
    rows.extend(_derived(rows))
    if spends:
        _charge(engine, tenant, period, budget, spends)
    return Report(period, by, grain, rows, provisional=not closed, late_events=state.late_events if state else 0,
                  threshold=threshold, epsilon=epsilon)


def _key(cell: Cell, by: Sequence[str]) -> tuple[str, ...]:
    return tuple(cell[d] for d in by)


def _row(period: str, grain: str, indicator: str, cell: Cell, value: float | None, status: str) -> Row:
    return Row(period=period, grain=grain, start=cell["start"], indicator=indicator, structure=cell["structure"],
               profile=cell["profile"], level=cell["level"], resource=cell["resource"], value=value, status=status)


def _suppressed(period: str, grain: str, by: Sequence[str], indicator: str, table: list[Cell], people: list[Cell],
                threshold: int) -> Iterable[Row]:
    """`table` with the entries suppressed that disclosure control, deciding on how many people each one
    stands for (`people`: the table itself for counts of people), hides."""
    counted = {_key(c, by): c["value"] for c in people}
    if by:
        inner = {key: n for key, n in counted.items() if ALL not in key}
        hidden = set(suppress(CountTable(tuple(by), inner), threshold).suppressed)
    else:
        hidden = set()
    hidden |= {key for key, n in counted.items() if 0 < n < threshold}  # a margin's own count of people too
    for cell in table:
        key = _key(cell, by)
        yield _row(period, grain, indicator, cell, None if key in hidden else cell["value"],
                   "suppressed" if key in hidden else "published")


def _noisy(period: str, grain: str, by: Sequence[str], indicator: str, table: list[Cell], epsilon: float,
           bound: int) -> Iterable[Row]:
    inner = {_key(c, by): c["value"] for c in table if ALL not in _key(c, by)}
    released = release_counts(CountTable(tuple(by), inner), epsilon, bound)
    template = table[0]
    for key, value in released.counts.items():
        cell = {**template, **{d: ALL for d in DIMENSIONS}, **dict(zip(by, key, strict=True))}
        yield _row(period, grain, indicator, cell, value, "noisy")


def _derived(rows: list[Row]) -> list[Row]:
    """Licences unused and adoption rate, per cell where licences granted and used are both published."""
    granted = {_cell_of(r): r for r in rows if r.indicator == "licences_granted"}
    used = {_cell_of(r): r.value for r in rows if r.indicator == "licences_used"}
    out: list[Row] = []
    for key, row in granted.items():
        g, u = row.value, used.get(key, 0 if key in used or row.value is not None else None)
        if g is None or u is None:
            values: tuple[float | None, float | None] = (None, None)
        else:
            values = (max(g - u, 0), round(u / g, 4) if g else None)
        for indicator, value in zip(("licences_unused", "adoption_rate"), values, strict=True):
            out.append(Row(period=row.period, grain=row.grain, start=row.start, indicator=indicator,
                           structure=row.structure, profile=row.profile, level=row.level, resource=row.resource,
                           value=value, status="published" if value is not None else "suppressed"))
    return out


def _cell_of(row: Row) -> tuple[Any, ...]:
    return (row.start, row.structure, row.profile, row.level, row.resource)


def _charge(engine: Engine, tenant: str, period: str, total: float, spends: list[Spend]) -> None:
    """Charge the releases to the period's budget, refused whole (BudgetExceeded) if it would go over."""
    with writer(engine).begin() as conn:
        budget = PrivacyBudget(period, total, _spent(conn, tenant, period))
        now = datetime.now(UTC)
        for spend in spends:
            budget.spend(float(spend.epsilon), spend.label)
            conn.execute(usage_release.insert().values(tenant=tenant, period=period, released_at=now,
                                                       epsilon=float(spend.epsilon), what=spend.label))


def _spent(conn: Connection, tenant: str, period: str) -> list[Spend]:
    r = usage_release.c
    return [Spend(row.what, Decimal(repr(row.epsilon))) for row in conn.execute(
        select(r.what, r.epsilon).where(r.tenant == tenant, r.period == period).order_by(r.id))]
