"""Making a report: a period's cells, for the dimensions asked, with disclosure control applied.

For a closed period the cells come from its aggregates; for the open one they are computed from
the pseudonymous activity as it stands (`provisional`: it still grows). Then disclosure control
decides what is published (rules/disclosure.py): entries under the threshold suppressed, then what
would let one be worked out. It decides on how many people an entry stands for (18 connections of 6
pupils are 6 people: under 10, suppressed; the `people:` cells, never published).
- Counts that add up over time (connections, visits, quotas) are protected in one table whose
  dimensions are the finer grains kept for that split (weeks, and days for one dimension or none)
  then the split ones: a hidden week is never the month less the other weeks, and the month's and
  the weeks' reports, made apart, agree.
- Counts of people (active users, licences used) are not sums: each day's, week's or month's table
  takes its totals as they are (`margins`), and a total standing for too few people is suppressed too.
- Licences unused and the adoption rate are derived from the published licences granted and used
  only: where one of them is suppressed, so are they.

With `epsilon`, the distinct-user tables (active users, licences used) are released with
differential privacy instead (rules/privacy.py), charged to the period's privacy budget
(`usage_release`); the other indicators keep suppression.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import lru_cache
from operator import itemgetter
from typing import Any, cast

from sqlalchemy import Connection, Engine, select

from relais.db import writer

from ..adapters.aggregates import PEOPLE, Cell, compute, stored
from ..adapters.tables import usage_period, usage_release
from ..rules.disclosure import CountTable, suppress
from ..rules.periods import bounds, week_start
from ..rules.privacy import PrivacyBudget, Spend, release_counts
from ..rules.rows import ALL, DIMENSIONS, GRAINS, MAX_DIMENSIONS, Row

DP_INDICATORS = ("active_users", "licences_used")
DISTINCT = ("active_users", "licences_used")  # counts of people: a total is not the sum of its cells
ADDITIVE_IN_TIME = ("connections", "visits", "quota_exhausted")  # a month is the sum of its weeks and days
IN_TIME = (*ADDITIVE_IN_TIME, *(PEOPLE + i for i in ADDITIVE_IN_TIME))  # what the joint tables read


# A report's rows in order: by start, indicator, then structure, profile, level and resource.
_ROW_ORDER = itemgetter(*(Row._fields.index(f) for f in ("start", "indicator", *DIMENSIONS)))


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


# The month's publication (`relais usage publish`): the month and its weeks by structure and resource,
# its days by structure (a day's cells are kept split one way at most).
PUBLICATION: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("month", ("structure", "resource")), ("week", ("structure", "resource")), ("day", ("structure",)))


def make_report(engine: Engine, tenant: str, period: str, by: Sequence[str], grain: str, *, threshold: int,
                epsilon: float | None = None, budget: float = 10.0, bound: int = 1) -> Report:
    """One report: the period's cells at `grain`, split by `by`, disclosure control applied."""
    return make_reports(engine, tenant, period, [(grain, by)], threshold=threshold, epsilon=epsilon, budget=budget,
                        bound=bound)[0]


def make_reports(engine: Engine, tenant: str, period: str, asks: Sequence[tuple[str, Sequence[str]]], *,
                 threshold: int, epsilon: float | None = None, budget: float = 10.0, bound: int = 1) -> list[Report]:
    """Several reports of one period at once, each `(grain, by)` as make_report makes it alone: the cells are
    read once for all, and a table protected for one report (the month's and its weeks' share their joint
    tables of connections and visits) is protected once; with `epsilon`, their releases are charged together."""
    bounds(period)  # PeriodError for a malformed period
    asked = [_checked(grain, tuple(by)) for grain, by in asks]
    with engine.connect() as conn:
        state = conn.execute(select(usage_period.c.closed_at, usage_period.c.late_events).where(
            usage_period.c.tenant == tenant, usage_period.c.period == period)).first()
        closed = state is not None and state.closed_at is not None
        read = _read(conn, tenant, period, asked, closed)
    decided: dict[tuple[Any, ...], set[tuple[str, ...]]] = {}
    spends: list[Spend] = []
    reports = []
    for grain, by in asked:
        rows = _rows(period, grain, by, _cells_of(read, grain, by), threshold, epsilon, bound, spends, decided)
        reports.append(Report(period, by, grain, rows, provisional=not closed,
                              late_events=state.late_events if state else 0, threshold=threshold, epsilon=epsilon))
    if spends:
        _charge(engine, tenant, period, budget, spends)
    return reports


def _checked(grain: str, by: tuple[str, ...]) -> tuple[str, tuple[str, ...]]:
    if grain not in GRAINS:
        raise ReportError(f"--grain {grain!r}: one of {', '.join(GRAINS)}")
    if len(by) > MAX_DIMENSIONS[grain]:
        raise ReportError(f"--grain {grain} splits by {MAX_DIMENSIONS[grain]} dimension(s) at most (cells are kept "
                          f"so): ask for fewer than {', '.join(by)}, or a coarser grain")
    return grain, by


def _grains(grain: str, by: Sequence[str]) -> set[str]:
    """The grains a report reads: its own, and the finer ones its joint tables are made of (and the month)."""
    return {grain, *_time_dimensions(len(by)), "month"}


def _read(conn: Connection, tenant: str, period: str, asked: Sequence[tuple[str, tuple[str, ...]]],
          closed: bool) -> dict[str, tuple[set[str], list[Cell]]]:
    """The cells every report asked needs, per grain, read once: split by any dimension one of them splits by
    at that grain (given with them); of every indicator at a report's own grain, else of those adding up over
    time only."""
    wanted: dict[str, set[str]] = defaultdict(set)  # grain -> the dimensions some report splits it by
    whole: set[str] = set()  # the grains some report is at (all their indicators)
    for grain, by in asked:
        whole.add(grain)
        for g in _grains(grain, by):
            wanted[g].update(by)
    if not closed:
        cells = compute(conn, tenant, period)
        return {g: (split, [c for c in cells if c.grain == g and _split_by(c, split)]) for g, split in wanted.items()}
    return {g: (split, stored(conn, tenant, period, {g}, split, indicators=None if g in whole else IN_TIME))
            for g, split in wanted.items()}


def _cells_of(read: dict[str, tuple[set[str], list[Cell]]], grain: str, by: tuple[str, ...]) -> list[Cell]:
    """One report's cells out of those read for all (`_read`): of its grains, not split by more than `by`."""
    out: list[Cell] = []
    in_time = frozenset(IN_TIME)
    for g in sorted(_grains(grain, by)):
        split, cells = read[g]
        if g != grain:
            cells = [c for c in cells if c.indicator in in_time]
        more = [Cell._fields.index(d) for d in sorted(split - set(by))]  # read split by these, not asked
        out.extend([c for c in cells if all(c[i] == ALL for i in more)] if more else cells)
    return out


def _rows(period: str, grain: str, by: tuple[str, ...], cells: list[Cell], threshold: int, epsilon: float | None,
          bound: int, spends: list[Spend], decided: dict[tuple[Any, ...], set[tuple[str, ...]]]) -> list[Row]:
    """One report's rows; `decided` holds the joint tables' suppressions already made for another report."""
    time = _time_dimensions(len(by))
    grains = _grains(grain, by)
    indexed: dict[tuple[str, str], list[Cell]] = defaultdict(list)
    for cell in cells:
        indexed[(cell.grain, cell.indicator)].append(cell)
    rows: list[Row] = []
    for indicator in sorted({i for g, i in indexed if g == grain and not i.startswith(PEOPLE)}):
        table = indexed[(grain, indicator)]
        if epsilon is not None and indicator in DP_INDICATORS and by:
            for start, part in sorted(_by_start(table).items()):
                rows.extend(_noisy(period, grain, by, indicator, part, epsilon, bound))
                spends.append(Spend(f"{indicator} {grain} {start} by {','.join(by)}", Decimal(repr(float(epsilon)))))
            continue
        # The dimensions this indicator is split by at all: connections never by resource, licences never
        # by profile or level; their cells are then the totals of the others, protected as such.
        split = tuple(d for d in by if any(any(map(ALL.__ne__, map(itemgetter(Cell._fields.index(d)),
                                                                    indexed[(g, indicator)]))) for g in grains))
        place_of = _keyer(split)
        if indicator in ADDITIVE_IN_TIME:
            joint = (indicator, split, time, tuple(sorted(grains)), by)  # the same cells, the same table
            hidden = decided.get(joint)
            if hidden is None:
                hidden = decided[joint] = _hidden_in_time(indexed, indicator, split, time, threshold)
            keyed = [(c, _time_place(c.start, c.grain, time) + place_of(c)) for c in table]
        else:
            hidden = set()
            for part in _by_start(table).values():
                hidden |= _hidden(part, split, threshold, distinct=indicator in DISTINCT)
            keyed = [(c, (c.start.isoformat(), *place_of(c))) for c in table]
        rows.extend(Row(period, grain, cell.start, indicator, cell.structure, cell.profile, cell.level,
                        cell.resource, None, "suppressed") if key in hidden else
                    Row(period, grain, cell.start, indicator, cell.structure, cell.profile, cell.level,
                        cell.resource, cell.value, "published") for cell, key in keyed)
    rows.sort(key=_ROW_ORDER)
    rows.extend(_derived(rows))
    return rows


def _split_by(cell: Cell, by: Collection[str]) -> bool:
    return all(cell.dimension(d) == ALL for d in DIMENSIONS if d not in by)


def _by_start(table: list[Cell]) -> dict[Any, list[Cell]]:
    parts: dict[Any, list[Cell]] = defaultdict(list)
    for cell in table:
        parts[cell.start].append(cell)
    return parts


def _keyer(by: Sequence[str]) -> Callable[[Cell], tuple[str, ...]]:
    """What reads a cell's values of the dimensions `by`, as a tuple (read for every cell: made once)."""
    at = [Cell._fields.index(d) for d in by]
    read: Callable[[Cell], Any]
    if len(at) > 1:
        read = itemgetter(*at)
    else:
        read = (lambda cell: (cell[at[0]],)) if at else (lambda cell: ())
    return cast(Callable[[Cell], tuple[str, ...]], read)


def _time_dimensions(n: int) -> tuple[str, ...]:
    """The finer grains kept for cells split `n` ways: their counts add up to the month's."""
    return tuple(g for g in ("week", "day") if n <= MAX_DIMENSIONS[g])


@lru_cache(maxsize=4096)  # a month has some forty starts: each placed once
def _time_place(start: date, grain: str, time: tuple[str, ...]) -> tuple[str, ...]:
    """Where a cell of any grain starting on `start` sits on the time dimensions `time` of a joint table."""
    week = week_start(start).isoformat() if grain in ("day", "week") else ALL
    day = start.isoformat() if grain == "day" else ALL
    return tuple(week if t == "week" else day for t in time)


def _hidden_in_time(indexed: dict[tuple[str, str], list[Cell]], indicator: str, by: Sequence[str],
                    time: tuple[str, ...], threshold: int) -> set[tuple[str, ...]]:
    """The entries suppressed of an indicator that adds up over time (connections, visits, quotas): one table
    with the finer grains as dimensions, so that no hidden week is the month less the other weeks; its
    entries standing for fewer people than the threshold suppressed first."""
    finest = time[-1] if time else "month"
    if not time and not by:  # the month's total alone
        return {() for c in indexed[("month", indicator)] if 0 < c.value < threshold}
    place_of = _keyer(by)
    cells = {_time_place(c.start, c.grain, time) + place: c.value for c in indexed[(finest, indicator)]
             if ALL not in (place := place_of(c))}
    people = [(_time_place(c.start, c.grain, time) + place_of(c), c.value)
              for g in ("day", "week", "month") for c in indexed[(g, PEOPLE + indicator)]]
    also = {key for key, n in people if 0 < n < threshold}
    dims = (*time, *by)
    decision = suppress(CountTable(dims, cells), threshold, also=also)
    return set(decision.suppressed) | also


def _hidden(table: list[Cell], by: Sequence[str], threshold: int, *, distinct: bool) -> set[tuple[str, ...]]:
    """The entries suppressed of one day's, week's or month's table of an indicator kept at one grain (licences)
    or counting people (active users, licences used: `distinct`, whose totals are not sums), keyed by start."""
    if not table:
        return set()
    start = table[0].start.isoformat()
    place_of = _keyer(by)
    values = {place_of(c): c.value for c in table}
    if not by:
        return {(start,) for n in values.values() if 0 < n < threshold}
    if distinct:
        counted = _people_table(values, by)
    else:
        counted = CountTable(tuple(by), {k: n for k, n in values.items() if ALL not in k})
    decision = suppress(counted, threshold)
    hidden = set(decision.suppressed) | {k for k, n in values.items() if 0 < n < threshold}
    return {(start, *k) for k in hidden}


def _people_table(values: dict[tuple[str, ...], int], by: Sequence[str]) -> CountTable:
    """A table of counts of people (its totals are not sums): every margin of its lattice given, its own
    count where kept, else the sum of its cells (an upper bound)."""
    inner = {k: n for k, n in values.items() if ALL not in k}
    sums = CountTable(tuple(by), inner).entries()
    return CountTable(tuple(by), inner, {k: values.get(k, n) for k, n in sums.items() if ALL in k})


def _noisy(period: str, grain: str, by: Sequence[str], indicator: str, table: list[Cell], epsilon: float,
           bound: int) -> Iterable[Row]:
    """A table of people (DP_INDICATORS: its totals are not sums) released with noise: cells and totals
    noised together (rules/privacy.py)."""
    place_of = _keyer(by)
    released = release_counts(_people_table({place_of(c): c.value for c in table}, by), epsilon, bound)
    start = table[0].start
    for key, value in released.counts.items():
        place = {**dict.fromkeys(DIMENSIONS, ALL), **dict(zip(by, key, strict=True))}
        yield Row(period=period, grain=grain, start=start, indicator=indicator, structure=place["structure"],
                  profile=place["profile"], level=place["level"], resource=place["resource"], value=value,
                  status="noisy")


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
