"""`relais usage …` commands: report, publish, charts, close, periods.

The indicators, their cells and how they are protected: services/usage/README.md and
DATA-DICTIONARY.md. Every command takes `--json`; errors name what to change and exit 2.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click
from sqlalchemy import select

from relais.commands import Context, pass_ctx
from relais.i18n import UnknownLanguage

from .adapters.aggregates import stored
from .adapters.tables import usage_period, usage_release
from .handlers.close import NotClosable, close_period
from .handlers.report import PUBLICATION, Report, ReportError, make_report, make_reports, parse_by
from .outputs.charts import write_licences_chart, write_weekly_active_users_chart
from .outputs.files import render
from .rules.disclosure import ThresholdTooLow
from .rules.periods import PeriodError
from .rules.privacy import PrivacyError
from .rules.rows import ALL, Row
from .settings import UsageConfigError, UsageSettings

_JSON = click.option("--json", "as_json", is_flag=True, help="Print JSON.")


@click.group()
def usage() -> None:
    """Anonymised usage statistics: connections, active users, visits, licences used against granted."""


@contextmanager
def _fail_on(*errors: type[Exception]) -> Iterator[None]:
    try:
        yield
    except errors as exc:
        raise click.ClickException(str(exc)) from None


def _settings() -> UsageSettings:
    with _fail_on(UsageConfigError):
        return UsageSettings.from_env()


@usage.command("report")
@click.option("--period", required=True, help="The month, YYYY-MM (the open month gives provisional figures).")
@click.option("--by", "by_text", default="structure,resource", show_default=True,
              help="Dimensions to split by, among structure, profile, level, resource (empty: totals only).")
@click.option("--grain", type=click.Choice(["day", "week", "month"]), default="month", show_default=True)
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="Write there [default: stdout].")
@click.option("--threshold", type=int, help="Suppress cells under this count [default: RELAIS_USAGE_THRESHOLD, 10; "
                                            "never below 5].")
@click.option("--epsilon", type=float, help="Release distinct-user counts with differential privacy at this epsilon "
                                            "per table, charged to the period's budget.")
@click.option("--budget", type=float, default=10.0, show_default=True, help="The period's total privacy budget.")
@click.option("--bound", type=int, default=1, show_default=True,
              help="With --epsilon: the most cells of one table a person can count in.")
@click.option("--charts", "charts_dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also draw licences used against granted there (SVG and PNG).")
@click.option("--lang", default="fr", show_default=True, help="Language of the charts (fr, en).")
@pass_ctx
def report(ctx: Context, period: str, by_text: str, grain: str, fmt: str, output: Path | None, threshold: int | None,
           epsilon: float | None, budget: float, bound: int, charts_dir: Path | None, lang: str) -> None:
    """A period's indicators, one row per cell, disclosure control applied (CSV or JSON)."""
    settings = _settings()
    with _fail_on(ReportError, PeriodError, ThresholdTooLow, PrivacyError, UnknownLanguage):
        made = make_report(ctx.engine, ctx.settings.tenant, period, parse_by(by_text), grain,
                           threshold=threshold if threshold is not None else settings.threshold, epsilon=epsilon,
                           budget=budget, bound=bound)
        text = render(fmt, made.rows, period, datetime.now(UTC), details={
            "by": list(made.by), "grain": made.grain, "provisional": made.provisional, "threshold": made.threshold,
            "epsilon": made.epsilon, "late_events": made.late_events})
        if charts_dir is not None:
            charts_dir.mkdir(parents=True, exist_ok=True)
            for suffix in ("svg", "png"):
                write_licences_chart(made.rows, charts_dir / f"licences-{period}.{suffix}", period, lang=lang)
    if output is None:
        sys.stdout.write(text)
    else:
        output.write_text(text, encoding="utf-8")
    click.echo(_summary(made, output, charts_dir), err=True)


@usage.command("publish")
@click.option("--period", required=True, help="The month, YYYY-MM (the open month gives provisional figures).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="The folder the files are written to (made if missing).")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv", show_default=True)
@click.option("--threshold", type=int, help="Suppress cells under this count [default: RELAIS_USAGE_THRESHOLD, 10; "
                                            "never below 5].")
@_JSON
@pass_ctx
def publish(ctx: Context, period: str, out_dir: Path, fmt: str, threshold: int | None, as_json: bool) -> None:
    """A month's full publication: the month and its weeks by structure and resource, its days by structure.

    One file per grain (usage-PERIOD-GRAIN.csv or .json), each as `relais usage report` makes it, made
    together: the cells are read once and the tables the month and its weeks share protected once.
    """
    settings = _settings()
    with _fail_on(ReportError, PeriodError, ThresholdTooLow):
        made = make_reports(ctx.engine, ctx.settings.tenant, period, PUBLICATION,
                            threshold=threshold if threshold is not None else settings.threshold)
    out_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.now(UTC)
    written, paths = [], []
    for report in made:
        path = out_dir / f"usage-{period}-{report.grain}.{fmt}"
        paths.append(path)
        path.write_text(render(fmt, report.rows, period, now, details={
            "by": list(report.by), "grain": report.grain, "provisional": report.provisional,
            "threshold": report.threshold, "epsilon": None, "late_events": report.late_events}), encoding="utf-8")
        written.append({"grain": report.grain, "by": list(report.by), "file": str(path), "cells": len(report.rows),
                        "suppressed": sum(1 for r in report.rows if r.status == "suppressed")})
    if as_json:
        click.echo(json.dumps({"period": period, "provisional": made[0].provisional, "files": written}))
        return
    for report, path in zip(made, paths, strict=True):
        click.echo(_summary(report, path, None), err=True)


def _summary(made: Report, output: Path | None, charts_dir: Path | None) -> str:
    suppressed = sum(1 for r in made.rows if r.status == "suppressed")
    parts = [f"{made.period}: {len(made.rows)} cells ({suppressed} suppressed under {made.threshold})"]
    if made.provisional:
        parts.append("provisional: the period is open")
    if made.late_events:
        parts.append(f"{made.late_events} late event(s) counted nowhere")
    if output is not None:
        parts.append(f"written to {output}")
    if charts_dir is not None:
        parts.append(f"charts in {charts_dir}")
    return "; ".join(parts)


@usage.command("charts")
@click.option("--year", type=int, required=True, help="Weekly active users over this year's closed months.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--structure", default=ALL, help="One structure's UAI [default: all].")
@click.option("--lang", default="fr", show_default=True)
@click.option("--threshold", type=int)
@pass_ctx
def charts(ctx: Context, year: int, out_dir: Path, structure: str, lang: str, threshold: int | None) -> None:
    """Weekly active users over a year, per profile (SVG and PNG), from the months closed so far."""
    settings = _settings()
    rows: list[Row] = []
    with _fail_on(ReportError, ThresholdTooLow, UnknownLanguage):
        with ctx.engine.connect() as conn:
            periods = [r.period for r in conn.execute(select(usage_period.c.period).where(
                usage_period.c.tenant == ctx.settings.tenant, usage_period.c.closed_at.is_not(None),
                usage_period.c.period.like(f"{year:04d}-%")).order_by(usage_period.c.period))]
        by = ("structure", "profile") if structure != ALL else ("profile",)
        for period in periods:
            made = make_report(ctx.engine, ctx.settings.tenant, period, by, "week",
                               threshold=threshold if threshold is not None else settings.threshold)
            rows.extend(r for r in made.rows if r.indicator == "active_users" and r.structure == structure)
        out_dir.mkdir(parents=True, exist_ok=True)
        for suffix in ("svg", "png"):
            write_weekly_active_users_chart(rows, out_dir / f"weekly-active-users-{year}.{suffix}",
                                            structure=structure, lang=lang)
    click.echo(f"{len(periods)} closed month(s) of {year} drawn in {out_dir}", err=True)


@usage.command("close")
@click.option("--period", required=True, help="The month, YYYY-MM.")
@click.option("--force", is_flag=True, help="Close it even before its end and grace (later events count as late).")
@_JSON
@pass_ctx
def close(ctx: Context, period: str, force: bool, as_json: bool) -> None:
    """Close a period now: keep its aggregates, destroy its pseudonyms and key (the service does it hourly)."""
    settings = _settings()
    with _fail_on(NotClosable, PeriodError):
        done = close_period(ctx.engine, ctx.settings.tenant, period, datetime.now(UTC), settings.zone,
                            grace=settings.grace, force=force)
    if as_json:
        click.echo(json.dumps(done.to_dict()))
    elif done.already:
        click.echo(f"{period} was already closed")
    else:
        click.echo(f"{period} closed: {done.cells} cells kept; {done.activity_rows} pseudonymous rows and the key "
                   "destroyed")


@usage.command("periods")
@_JSON
@pass_ctx
def periods(ctx: Context, as_json: bool) -> None:
    """Every period: open or closed, late events, privacy budget spent."""
    with ctx.engine.connect() as conn:
        p, r = usage_period.c, usage_release.c
        spent: dict[str, float] = {}
        for row in conn.execute(select(r.period, r.epsilon).where(r.tenant == ctx.settings.tenant)):
            spent[row.period] = spent.get(row.period, 0.0) + row.epsilon
        found = [{"period": row.period, "closed": row.closed_at is not None,
                  "closed_at": row.closed_at.isoformat() if row.closed_at else None,
                  "late_events": row.late_events, "cells": len(stored(conn, ctx.settings.tenant, row.period))
                  if row.closed_at else None, "epsilon_spent": round(spent.get(row.period, 0.0), 6)}
                 for row in conn.execute(select(p.period, p.closed_at, p.late_events).where(
                     p.tenant == ctx.settings.tenant).order_by(p.period))]
    if as_json:
        click.echo(json.dumps(found, indent=2))
        return
    if not found:
        click.echo("no period yet: no SSO or provisioning event has reached the usage service")
    for f in found:
        state = f"closed {f['closed_at'][:10]}, {f['cells']} cells" if f["closed"] else "open (pseudonyms kept)"
        click.echo(f"{f['period']}  {state}; {f['late_events']} late; epsilon spent {f['epsilon_spent']}")
