"""The usage service end to end on a real database: events in, a period closed, a report out, no one left in it."""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from app.cli import main
from relais.bus.consumer import EventConsumer
from relais.bus.contracts import subscriptions
from services.usage.adapters.tables import usage_activity, usage_period
from services.usage.handlers.close import NotClosable, close_due, close_period
from services.usage.handlers.ingest import UsageEvents
from services.usage.handlers.report import PUBLICATION, make_report, make_reports
from services.usage.rules.privacy import BudgetExceeded
from services.usage.rules.rows import ALL
from tests.usage.helpers import TENANT, cas_visit, grant, login, logout, saml_visit

PARIS = ZoneInfo("Europe/Paris")
NOV = datetime(2026, 11, 3, 8, 30, tzinfo=PARIS)
MOODLE = "ark:/49591/moodle"
SERVICES = {"moodle-cas": MOODLE}


def pupils(structure: str, n: int) -> list[str]:
    return [f"J-{structure}-{i:04d}" for i in range(n)]


def month_of_events() -> list:
    a, b = pupils("0750001A", 14), pupils("0750002B", 6)
    teachers = [f"J-ens-{i}" for i in range(5)]
    events = [grant(p, MOODLE, NOV - timedelta(days=40)) for p in a + pupils("0750001A-extra", 6)]
    events.append(grant(a[0], MOODLE, NOV - timedelta(days=10), revoked=True))
    for day in range(3):
        at = NOV + timedelta(days=day * 7)
        events += [login(p, at) for p in a]
        events += [login(p, at, structure="0750002B") for p in b]
        events += [login(t, at, profile="National_ENS", level=None) for t in teachers]
    events += [cas_visit(p, NOV + timedelta(hours=1), "moodle-cas") for p in a[:11]]
    events += [cas_visit(p, NOV + timedelta(hours=2), "moodle-cas") for p in a[:3]]  # again: one user each
    events += [saml_visit(t, NOV + timedelta(hours=1), "https://gar.example/sp", profile="National_ENS", level=None)
               for t in teachers]
    events += [logout(p, NOV + timedelta(hours=3)) for p in a]
    return events


def consume(engine, events, consumer: EventConsumer | None = None, expect: str = "handled") -> EventConsumer:
    handler = UsageEvents(TENANT, PARIS, SERVICES)
    consumer = consumer or EventConsumer("usage", list(subscriptions()["usage"]), handler, engine,
                                         batch_handler=handler.many)
    outcomes = consumer.handle_many([(e.to_json(), 0) for e in events])
    assert [(o.status, o.reason) for o in outcomes if o.status != expect] == []
    return consumer


def cell(report, indicator: str, **dims: str):
    found = [r for r in report.rows if r.indicator == indicator
             and all(getattr(r, d) == dims.get(d, ALL) for d in ("structure", "profile", "level", "resource"))]
    assert len(found) == 1, (indicator, dims, found)
    return found[0]


def test_a_month_counted_closed_and_reported(engine):
    consume(engine, month_of_events())
    with pytest.raises(NotClosable, match="2026-11 has not ended"):
        close_period(engine, TENANT, "2026-11", datetime(2026, 12, 1, 12, tzinfo=UTC), PARIS)  # within the grace
    live = make_report(engine, TENANT, "2026-11", ("structure",), "month", threshold=5)
    assert live.provisional and cell(live, "connections", structure="0750001A").value == 14 * 3 + 5 * 3

    done = close_due(engine, TENANT, datetime(2026, 12, 3, 1, tzinfo=UTC), PARIS)
    assert [c.period for c in done] == ["2026-11"] and done[0].activity_rows > 0
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(usage_activity)).scalar_one() == 0
        assert conn.execute(select(usage_period.c.pseudonym_key)).scalar_one() is None

    report = make_report(engine, TENANT, "2026-11", ("structure",), "month", threshold=5)
    assert not report.provisional
    assert cell(report, "connections", structure="0750001A").value == 57
    assert cell(report, "active_users", structure="0750001A").value == 19  # 14 pupils and 5 teachers
    assert cell(report, "active_users").value == 25  # distinct, not the sum of the cells
    assert cell(report, "active_users", structure="0750002B").value == 6

    licences = make_report(engine, TENANT, "2026-11", ("structure", "resource"), "month", threshold=5)
    assert cell(licences, "licences_granted", structure="0750001A", resource=MOODLE).value == 19
    assert cell(licences, "licences_used", structure="0750001A", resource=MOODLE).value == 11
    assert cell(licences, "licences_unused", structure="0750001A", resource=MOODLE).value == 8
    assert cell(licences, "adoption_rate", structure="0750001A", resource=MOODLE).value == round(11 / 19, 4)
    assert cell(licences, "visits", structure="0750001A", resource=MOODLE).value == 14

    weekly = make_report(engine, TENANT, "2026-11", ("profile",), "week", threshold=5)
    starts = sorted({r.start.isoformat() for r in weekly.rows if r.indicator == "active_users"})
    assert starts == ["2026-11-02", "2026-11-09", "2026-11-16"]


def test_a_small_cell_is_suppressed_and_not_given_back_by_subtraction(sqlite_engine):
    consume(sqlite_engine, month_of_events())
    report = make_report(sqlite_engine, TENANT, "2026-11", ("structure",), "month", threshold=10)
    assert cell(report, "active_users", structure="0750002B").status == "suppressed"  # 6 pupils, under 10
    for indicator in ("connections", "active_users"):
        rows = [r for r in report.rows if r.indicator == indicator]
        assert cell(report, indicator, structure="0750002B").value is None
        assert sum(r.value is None for r in rows) >= 2, f"{indicator}: the total minus the other cell gives it back"


def test_after_closing_no_person_pseudonym_or_key_is_left_in_the_files(tmp_path, sqlite_engine):
    events = month_of_events()
    consume(sqlite_engine, events)
    with sqlite_engine.connect() as conn:
        pseudonyms = {p for (p,) in conn.execute(select(usage_activity.c.pseudonym).distinct())}
        key = conn.execute(select(usage_period.c.pseudonym_key)).scalar_one()
    persons = {e.payload["person"] for e in events}
    assert len(pseudonyms) == 25 and key and len(persons) > 21
    close_period(sqlite_engine, TENANT, "2026-11", datetime(2026, 12, 7, tzinfo=UTC), PARIS)
    report = make_report(sqlite_engine, TENANT, "2026-11", ("structure",), "day", threshold=5)
    out = tmp_path / "report.csv"
    result = CliRunner().invoke(main, ["usage", "report", "--period", "2026-11", "--by", "structure,resource",
                                       "--output", str(out), "--charts", str(tmp_path / "charts")],
                                env={"RELAIS_DATABASE_URL": str(sqlite_engine.url), "RELAIS_TENANT": TENANT})
    assert result.exit_code == 0, result.output
    sqlite_engine.dispose()
    stored = b"".join(p.read_bytes() for p in Path(str(sqlite_engine.url.database)).parent.glob("relais.db*"))
    outputs = b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "relais.db" not in p.name)
    assert report.rows and outputs
    for blob, where in ((stored, "the database files"), (outputs, "the report and charts")):
        for person in persons:
            assert person.encode() not in blob, f"{person} in {where}"
        for p in pseudonyms:
            assert p.encode() not in blob and bytes.fromhex(p) not in blob, f"pseudonym {p} in {where}"
        assert key not in blob, f"the key in {where}"


def test_an_event_after_its_period_closed_counts_as_late_and_never_reopens_the_key(engine):
    consume(engine, [login("J-1", NOV)])
    close_period(engine, TENANT, "2026-11", datetime(2026, 12, 7, tzinfo=UTC), PARIS)
    consume(engine, [login("J-2", NOV + timedelta(days=1)), login("J-3", NOV + timedelta(days=35))])
    with engine.connect() as conn:
        rows = {r.period: r for r in conn.execute(select(usage_period))}
        assert conn.execute(select(usage_activity.c.period).distinct()).scalars().all() == ["2026-12"]
    assert rows["2026-11"].pseudonym_key is None and rows["2026-11"].late_events == 1
    assert rows["2026-12"].pseudonym_key is not None  # the next month is open, with its own key
    report = make_report(engine, TENANT, "2026-11", (), "month", threshold=5)
    assert report.late_events == 1 and cell(report, "connections").value is None  # 1 < 5: suppressed


def test_redelivered_events_are_counted_once(sqlite_engine):
    events = [login("J-1", NOV), login("J-1", NOV + timedelta(hours=1))]
    consumer = consume(sqlite_engine, events)
    consume(sqlite_engine, events, consumer, expect="duplicate")  # the same ids again
    report = make_report(sqlite_engine, TENANT, "2026-11", (), "month", threshold=5)
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(func.sum(usage_activity.c.count))).scalar_one() == 2
    assert report.provisional


def test_the_cli_refuses_what_it_cannot_do_naming_it(sqlite_engine):
    env = {"RELAIS_DATABASE_URL": str(sqlite_engine.url), "RELAIS_TENANT": TENANT}
    runner = CliRunner()
    for args, says in ((["report", "--period", "2026-13"], "period '2026-13' is not a month written YYYY-MM"),
                       (["report", "--period", "2026-11", "--by", "school"], "--by 'school': name each of"),
                       (["report", "--period", "2026-11", "--threshold", "3"], "below the minimum of 5"),
                       (["close", "--period", "2099-01"], "2099-01 has not ended"),
                       (["report", "--period", "2026-11", "--grain", "day"], "--grain day splits by 1 dimension(s)")):
        result = runner.invoke(main, ["usage", *args], env=env)
        assert result.exit_code == 1 and says in result.output, (args, result.output)
    result = runner.invoke(main, ["usage", "report", "--period", "2026-11", "--format", "csv"], env=env)
    assert result.exit_code == 0
    header = next(csv.reader(io.StringIO(result.stdout)))
    assert "indicator" in header and "value" in header


def test_a_hidden_week_is_not_the_month_less_the_other_weeks(sqlite_engine):
    """Connections add up over time: a small week at a school, hidden, stays hidden when the month and the
    other weeks are published beside it (one table, weeks a dimension, decides for both reports)."""
    school = pupils("0750003C", 12)
    events = [login(p, NOV + timedelta(days=d), structure="0750003C") for p in school for d in (0, 7)]
    events += [login(p, NOV + timedelta(days=14), structure="0750003C") for p in school[:3]]  # 3, week of 16/11
    events += [login(p, NOV + timedelta(days=d), structure="0750004D") for p in pupils("0750004D", 15)
               for d in (0, 7, 14)]
    consume(sqlite_engine, events)
    month = make_report(sqlite_engine, TENANT, "2026-11", ("structure",), "month", threshold=10)
    weeks = make_report(sqlite_engine, TENANT, "2026-11", ("structure",), "week", threshold=10)
    small = [r for r in weeks.rows if r.indicator == "connections" and r.structure == "0750003C"
             and r.start.isoformat() == "2026-11-16"]
    assert [r.value for r in small] == [None]
    line = [r.value for r in weeks.rows if r.indicator == "connections" and r.structure == "0750003C"]
    line.append(cell(month, "connections", structure="0750003C").value)
    assert sum(v is None for v in line) >= 2, f"the month less the other weeks gives the hidden week back: {line}"


def test_the_months_publication_made_at_once_is_each_report_made_alone(sqlite_engine, tmp_path):
    """make_reports reads the cells once and protects the tables the month and its weeks share once: each of
    its reports is still, row for row, the one make_report makes alone, open and closed."""
    small = pupils("0750003C", 12)
    events = month_of_events()
    events += [login(p, NOV + timedelta(days=d), structure="0750003C") for p in small for d in (0, 7)]
    events += [cas_visit(p, NOV + timedelta(days=14), "moodle-cas", structure="0750003C") for p in small[:3]]
    consume(sqlite_engine, events)

    def alone():
        return [make_report(sqlite_engine, TENANT, "2026-11", by, grain, threshold=10) for grain, by in PUBLICATION]

    for _ in ("open", "closed"):
        together = make_reports(sqlite_engine, TENANT, "2026-11", PUBLICATION, threshold=10)
        assert [(r.grain, r.by, r.provisional) for r in together] == [(g, b, r.provisional) for (g, b), r in
                                                                      zip(PUBLICATION, together, strict=True)]
        assert [r.rows for r in together] == [r.rows for r in alone()]
        assert any(row.status == "suppressed" for r in together for row in r.rows)
        close_period(sqlite_engine, TENANT, "2026-11", datetime(2026, 12, 7, tzinfo=UTC), PARIS)

    env = {"RELAIS_DATABASE_URL": str(sqlite_engine.url), "RELAIS_TENANT": TENANT}
    result = CliRunner().invoke(main, ["usage", "publish", "--period", "2026-11", "--out", str(tmp_path), "--json"],
                                env=env)
    assert result.exit_code == 0, result.output
    said = json.loads(result.stdout)
    assert [(f["grain"], f["by"]) for f in said["files"]] == [(g, list(b)) for g, b in PUBLICATION]
    for report, file in zip(alone(), said["files"], strict=True):
        written = list(csv.DictReader(io.StringIO(Path(file["file"]).read_text(encoding="utf-8"))))
        assert len(written) == len(report.rows) == file["cells"] > 0
        assert sum(r["status"] == "suppressed" for r in written) == file["suppressed"]


def test_bad_events_are_dead_lettered_naming_what_and_the_rest_is_counted(sqlite_engine):
    good = login("J-good", NOV)
    no_person = login("J-x", NOV)
    del no_person.payload["person"]
    wrong_type = login("J-y", NOV)
    wrong_type.payload["structure"] = 75
    unknown = dataclasses.replace(login("J-z", NOV), type="sso.session.extended")
    handler = UsageEvents(TENANT, PARIS, SERVICES)
    consumer = EventConsumer("usage", list(subscriptions()["usage"]), handler, sqlite_engine,
                             batch_handler=handler.many)
    outcomes = consumer.handle_many([(e.to_json(), 0) for e in (no_person, good, wrong_type, unknown)])
    assert [o.status for o in outcomes] == ["dead", "handled", "dead", "dead"]
    assert "breaks the contract of sso.login.succeeded" in (outcomes[0].reason or "")
    assert "person" in (outcomes[0].reason or "") and "J-x" not in (outcomes[0].reason or "")
    assert "payload.structure" in (outcomes[2].reason or "") and "75" not in (outcomes[2].reason or "")
    assert "sso.session.extended" in (outcomes[3].reason or "")
    with sqlite_engine.connect() as conn:
        assert conn.execute(select(func.sum(usage_activity.c.count))).scalar_one() == 1


def test_a_closing_cut_short_after_the_key_is_destroyed_is_finished_by_the_next(sqlite_engine):
    consume(sqlite_engine, [login(p, NOV) for p in pupils("0750001A", 12)])
    with sqlite_engine.begin() as conn:  # as a closing stopped after its first step
        conn.execute(usage_period.update().values(pseudonym_key=None))
    consume(sqlite_engine, [login("J-late", NOV)])  # no key: late, not counted
    done = close_due(sqlite_engine, TENANT, datetime(2026, 12, 3, 1, tzinfo=UTC), PARIS)
    assert [d.period for d in done] == ["2026-11"]
    report = make_report(sqlite_engine, TENANT, "2026-11", (), "month", threshold=10)
    assert cell(report, "connections").value == 12 and report.late_events == 1 and not report.provisional


def test_a_differentially_private_release_is_charged_to_the_months_budget(sqlite_engine):
    consume(sqlite_engine, month_of_events())
    report = make_report(sqlite_engine, TENANT, "2026-11", ("structure",), "month", threshold=10, epsilon=1.0,
                         budget=2.0)
    noisy = [r for r in report.rows if r.indicator == "active_users"]
    assert noisy and all(r.status == "noisy" and r.value is not None and r.value >= 0 for r in noisy)
    assert {r.structure for r in noisy} == {"0750001A", "0750002B", ALL}
    assert cell(report, "connections", structure="0750002B").status == "suppressed"  # the others keep suppression
    make_report(sqlite_engine, TENANT, "2026-11", ("structure",), "month", threshold=10, epsilon=1.0, budget=2.0)
    with pytest.raises(BudgetExceeded, match="budget"):  # 1 + 1 spent of 2: a third release is refused
        make_report(sqlite_engine, TENANT, "2026-11", ("structure",), "month", threshold=10, epsilon=1.0, budget=2.0)


def test_an_indicator_not_split_by_a_dimension_asked_is_protected_as_the_total_it_is(sqlite_engine):
    """Connections are never by resource: asked by structure and resource, they are per structure, and a small
    structure's stays hidden beside the total and the other structures."""
    consume(sqlite_engine, month_of_events())
    report = make_report(sqlite_engine, TENANT, "2026-11", ("structure", "resource"), "month", threshold=10)
    line = [r for r in report.rows if r.indicator == "connections"]
    assert {r.resource for r in line} == {ALL}
    assert cell(report, "connections", structure="0750002B").value is None
    assert sum(r.value is None for r in line) >= 2, line
