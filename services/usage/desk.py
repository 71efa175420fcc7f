"""The usage statistics for people at a desk (the operator console), behind one facade.

The console reaches usage only through this object, which the composition root (`app/bootstrap.py`) hands it
as its usage port. What it gives is what `relais usage report` publishes, disclosure control applied (a cell
standing for too few people is suppressed, never shown as 0): the months usage knows, one month's licences
granted, used and unused per resource (every structure, or one), the active users week by week over the
months of that year up to it, both charts (outputs/charts.py, SVG), and the month's report as CSV
(outputs/files.py). A closed month's reports never change: they are kept (a few) once made.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from sqlalchemy import Engine, select

from .adapters.tables import usage_period
from .handlers.report import Report, make_report
from .outputs.charts import LICENCE_SERIES, licence_bars, licences_chart, weekly_active_users_chart, weekly_series
from .outputs.files import to_csv
from .rules.periods import bounds
from .rules.rows import ALL, Row

MONTH_BY = ("structure", "resource")  # the month's report the page and the CSV read
WEEK_BY = ("structure", "profile")  # the weeks' (active users), two dimensions at most
KEPT = 32  # closed months' reports kept in memory


class UsageDesk:
    def __init__(self, engine: Engine, tenant: str, threshold: int):
        self.engine, self.tenant, self.threshold = engine, tenant, threshold
        self._closed: dict[tuple[str, str], Report] = {}

    def periods(self) -> list[dict[str, Any]]:
        """The months usage knows, newest first: `period`, `closed` (False: provisional, its figures still grow)."""
        p = usage_period.c
        with self.engine.connect() as conn:
            found = conn.execute(select(p.period, p.closed_at).where(p.tenant == self.tenant)
                                 .order_by(p.period.desc())).all()
        return [{"period": r.period, "closed": r.closed_at is not None} for r in found]

    def statistics(self, period: str, structure: str | None = None) -> dict[str, Any]:
        """One month (ValueError if `period` is not a month): its licences per resource and its weekly active
        users, of every structure or of `structure` (a UAI); each value None where suppressed."""
        where = structure or ALL
        month = self._report(period, "month", MONTH_BY)
        licences = [{"resource": b.resource, **{i: b.values.get(i) for i, _c, _h in LICENCE_SERIES},
                     "suppressed": sorted(b.suppressed)}
                    for b in licence_bars(month.rows, period, where)]
        adoption = {r.resource: r.value for r in month.rows if r.indicator == "adoption_rate"
                    and r.structure == where and r.profile == ALL and r.level == ALL}
        for line in licences:
            line["adoption_rate"] = adoption.get(str(line["resource"]))
        weeks = weekly_series(self._weeks(period), where, by_profile=False)
        return {"period": period, "provisional": month.provisional, "threshold": month.threshold,
                "late_events": month.late_events,
                "structures": sorted({r.structure for r in month.rows if r.structure != ALL}),
                "licences": licences,
                "weeks": [{"start": d, "active_users": v} for d, v in (weeks[0].points if weeks else ())]}

    def licences_svg(self, period: str, structure: str | None, lang: str, names: Mapping[str, str]) -> bytes:
        """The month's licences chart (granted, used, unused per resource), SVG, in `lang`."""
        return licences_chart(self._report(period, "month", MONTH_BY).rows, "svg", period, structure or ALL, lang,
                              names)

    def active_users_svg(self, period: str, structure: str | None, lang: str) -> bytes:
        """The weekly active users per profile, over the year's months up to `period`, SVG, in `lang`."""
        return weekly_active_users_chart(self._weeks(period), "svg", structure or ALL, True, lang)

    def csv(self, period: str, structure: str | None = None) -> str:
        """The month's report by structure and resource as CSV (the data dictionary's columns), or one
        structure's lines of it."""
        rows = self._report(period, "month", MONTH_BY).rows
        return to_csv([r for r in rows if structure is None or r.structure == structure])

    # -- helpers ---------------------------------------------------------------------------------

    def _weeks(self, period: str) -> list[Row]:
        """The weekly active users rows of the months of `period`'s year up to it that usage knows."""
        first, _last = bounds(period)
        known = {p["period"] for p in self.periods()}
        months = [m for m in (f"{first.year}-{n:02d}" for n in range(1, first.month + 1)) if m in known] or [period]
        return [r for m in months for r in self._report(m, "week", WEEK_BY).rows if r.indicator == "active_users"]

    def _report(self, period: str, grain: str, by: tuple[str, ...]) -> Report:
        key = (period, grain)
        kept = self._closed.get(key)
        if kept is not None:
            return kept
        made = make_report(self.engine, self.tenant, period, by, grain, threshold=self.threshold)
        if not made.provisional:
            if len(self._closed) >= KEPT:
                self._closed.pop(next(iter(self._closed)))
            self._closed[key] = made
        return made

