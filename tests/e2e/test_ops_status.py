"""`relais status` against a real broker vhost and database: queues, dead letters, services, fall-backs."""

from __future__ import annotations

import json
import time

import amqp
from alembic.script import ScriptDirectory
from click.testing import CliRunner

from app.cli import main
from relais.bus.contracts import subscriptions
from relais.bus.topology import consumer_queues
from relais.config import parse_amqp_uri, redact_url
from relais.db import alembic_config, upgrade
from relais.ops import health
from relais.ops.server import OpsApp, serve_ops
from relais.runtime.status import judge, parse_endpoints
from tests import aaf_builder as aaf
from tests.conftest import migrate_to

DEAD = "127.0.0.1:1"


def status(*args: str, env: dict | None = None) -> tuple[int, dict]:
    result = CliRunner().invoke(main, ["status", "--json", *args], env=env)
    assert result.exit_code in (0, 1), result.output
    return result.exit_code, json.loads(result.stdout)


def until(check, *args, timeout: float = 20.0, **kwargs) -> tuple[int, dict]:
    """The management API refreshes queue statistics every few seconds: ask until `check` holds."""
    deadline = time.monotonic() + timeout
    while True:
        code, report = status(*args, **kwargs)
        if check(report) or time.monotonic() > deadline:
            return code, report
        time.sleep(0.5)


def test_status_reads_queues_dead_letters_services_outbox_and_last_import(settings_env, tmp_path):
    uri = settings_env["RELAIS_AMQP_URI"]
    path = aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", *(aaf.pupil(str(i)) for i in range(1, 6)))
    imported = CliRunner().invoke(main, ["directory", "import", str(path)])
    assert imported.exit_code == 0, imported.output
    provisioning = "relais.q.provisioning"

    # Events wait in provisioning's queue and nobody consumes it: unhealthy, and it says what to do.
    code, report = until(lambda r: r["consumers"]["provisioning"]["messages"])
    assert code == 1 and not report["healthy"]
    c = report["consumers"]["provisioning"]
    assert c["queue"] == provisioning and c["messages"] >= 5 and c["consumers"] == 0 and c["dead_lettered"] == 0
    assert any(f"wait in {provisioning} and nobody consumes it: start `relais serve provisioning`" in p
               for p in report["problems"])
    assert report["broker"]["source"].startswith("management API at http://guest:***@")
    assert report["database"]["outbox_backlog"] == 0
    assert report["database"]["last_import"]["status"] == "completed"
    assert report["services"]["provisioning"] == {"up": False, "ready": None,
                                                  "seen_by": f"0 consumer(s) on {provisioning}"}

    # A consumer takes them; a poison message ends in the dead-letter queue.
    conn = amqp.Connection(**parse_amqp_uri(uri).connection_kwargs())
    conn.connect()
    ch = conn.channel()
    ch.basic_publish(amqp.Message(b"not an event", delivery_mode=2), exchange="", routing_key=provisioning)
    from relais.config import Settings
    from relais.db import make_engine
    from relais.runtime.runner import event_consumer
    from services.provisioning.process import consumer

    event_consumer(consumer("test"), make_engine(Settings.from_env().database_url)).run(uri, idle_timeout=2)
    code, report = until(lambda r: r["consumers"]["provisioning"]["dead_lettered"] and
                         not r["consumers"]["provisioning"]["messages"])
    assert code == 1 and report["consumers"]["provisioning"]["dead_lettered"] == 1
    assert any("1 message(s) dead-lettered in relais.q.provisioning.dlq" in p for p in report["problems"])

    # Without the management API: passive declares over AMQP, the same numbers, and it says so.
    code, fallback = status(env={"RELAIS_RABBITMQ_API": f"http://guest:guest@{DEAD}"})
    assert "AMQP passive declares" in fallback["broker"]["source"]
    assert f"management API at http://guest:***@{DEAD} unreachable" in fallback["broker"]["source"]
    seen = fallback["consumers"]["provisioning"]
    assert seen["dead_lettered"] == 1 and seen["unacked"] is None
    assert code == 1

    # Dead letters dealt with: healthy (the import's completion event nobody receives is a warning only).
    ch.queue_purge(consumer_queues("provisioning").dead_letter)
    conn.close()
    code, report = until(lambda r: not r["consumers"]["provisioning"]["dead_lettered"])
    assert code == 0 and report["healthy"] and report["problems"] == [], report["problems"]
    text = CliRunner().invoke(main, ["status"])
    assert text.exit_code == 0 and text.stdout.rstrip().endswith("healthy")
    assert "relais.q.provisioning" in text.stdout and "last directory import:" in text.stdout


def test_status_asks_the_ops_endpoints_it_is_given(settings_env, sqlite_engine):
    url = sqlite_engine.url.render_as_string(hide_password=False)
    ready = serve_ops(OpsApp("provisioning", {"database": health.database_check(url)}), host="127.0.0.1", port=0)
    unready = serve_ops(OpsApp("sso", {"database": health.database_check(f"sqlite:///{url[10:]}.missing")}),
                        host="127.0.0.1", port=0)
    try:
        code, report = status("--ops", f"provisioning=http://127.0.0.1:{ready.port}",
                              "--ops", f"sso=http://127.0.0.1:{unready.port}", "--ops", f"vault=http://{DEAD}")
        s = report["services"]
        assert s["provisioning"]["up"] and s["provisioning"]["ready"]
        assert s["sso"]["up"] and not s["sso"]["ready"] and s["sso"]["down"] == ["database"]
        assert s["vault"]["up"] is False
        assert code == 1
        assert any(p.startswith("sso: not ready, database down") for p in report["problems"])
        assert any(p.startswith("vault: its ops endpoint does not answer") for p in report["problems"])
        assert not any(p.startswith("provisioning") for p in report["problems"])
        _code, from_env = status(env={"RELAIS_OPS_ENDPOINTS": f"provisioning=http://127.0.0.1:{ready.port}"})
        assert from_env["services"]["provisioning"]["seen_by"] == f"ops endpoint http://127.0.0.1:{ready.port}"
    finally:
        ready.stop()
        unready.stop()
    bad = CliRunner().invoke(main, ["status", "--ops", "provisioning"])
    assert bad.exit_code == 2 and "expected SERVICE=http://host:port" in bad.output


def test_status_with_the_broker_and_database_unreachable(settings_env, monkeypatch):
    monkeypatch.setenv("RELAIS_AMQP_URI", f"amqp://guest:pw-never-shown@{DEAD}/")
    monkeypatch.setenv("RELAIS_DATABASE_URL", f"postgresql://postgres:pw-never-shown@{DEAD}/relais")
    result = CliRunner().invoke(main, ["status", "--json", "--rabbitmq-api", f"http://guest:pw-never-shown@{DEAD}",
                                       "--timeout", "2"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert not report["broker"]["reachable"] and not report["database"]["reachable"]
    assert any(p.startswith("RabbitMQ unreachable") for p in report["problems"])
    unreachable = f"database postgresql://postgres:***@{DEAD}/relais unreachable"
    assert any(p.startswith(unreachable) for p in report["problems"])
    assert "pw-never-shown" not in result.output


def test_status_on_a_fresh_data_directory_says_not_migrated_not_unreachable(settings_env, tmp_path):
    db_file = tmp_path / "var" / "relais.db"
    code, report = status()
    assert code == 1 and report["database"]["reachable"] and report["database"]["revisions"] == []
    [problem] = [p for p in report["problems"] if p.startswith("database ")]
    assert problem.startswith(f"database sqlite:///{db_file} is not migrated (no database file yet): run "
                              "`relais db upgrade`"), problem
    assert "unreachable" not in problem
    assert not db_file.exists()  # reading the state created nothing
    text = CliRunner().invoke(main, ["status"])
    assert "is not migrated (no database file yet): run `relais db upgrade`" in text.stdout

    upgraded = CliRunner().invoke(main, ["db", "upgrade"])
    assert upgraded.exit_code == 0, upgraded.output
    _code, report = status()
    assert report["database"]["migrations_pending"] == 0 and report["database"]["outbox_backlog"] == 0
    assert not [p for p in report["problems"] if p.startswith("database ")], report["problems"]


def test_status_counts_the_migrations_a_database_lacks(settings_env, empty_engine, monkeypatch):
    url = empty_engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("RELAIS_DATABASE_URL", url)
    with empty_engine.connect():
        pass  # an empty database (PostgreSQL: created; SQLite: the file now exists)
    _code, report = status()
    assert [p for p in report["problems"] if "is not migrated: run `relais db upgrade`" in p]

    migrate_to(empty_engine, "0012_outbox_event_id")  # 0001-0004, 0008 and 0012: 6 of the history's
    behind = len(list(ScriptDirectory.from_config(alembic_config(url)).walk_revisions())) - 6
    code, report = status()
    db = report["database"]
    assert code == 1 and db["reachable"] and db["revisions"] == ["0012_outbox_event_id"]
    assert behind >= 10 and db["migrations_pending"] == behind and "outbox_backlog" not in db
    [problem] = [p for p in report["problems"] if p.startswith("database ")]
    assert problem == (f"database {redact_url(url)} is {behind} migration(s) behind this version of Relais: run "
                       "`relais db upgrade` (a service also migrates it when it starts)")

    upgrade(empty_engine)
    _code, report = status()
    assert report["database"]["migrations_pending"] == 0
    assert not [p for p in report["problems"] if p.startswith("database ")]


def test_judge_needs_no_io():
    report = {"broker": {"reachable": True}, "services": {"directory": {"up": None, "ready": None}},
              "consumers": {"provisioning": {"queue": "relais.q.provisioning", "messages": 0, "consumers": 1,
                                             "retrying": 2, "dead_lettered": 0}},
              "unrouted": 3, "database": {"reachable": True, "last_import": {"import_id": "i1", "status": "failed"}}}
    problems, warnings = judge(report)
    assert problems == ["the last directory import (i1) failed: `relais directory status --json` and its report "
                        "say why"]
    assert len(warnings) == 2 and "wait for a retry" in warnings[0] and "relais.unrouted" in warnings[1]
    assert parse_endpoints([], {"RELAIS_OPS_ENDPOINTS": "a=http://x:1, b=https://y:2/"}) == {
        "a": "http://x:1", "b": "https://y:2"}


def fill_queues(uri: str, provisioning: int, unrouted: int) -> None:
    """Events for provisioning's queue (directory.mef.created) and for nobody yet (directory.import.completed:
    the audit archive is planned)."""
    from relais.bus.publisher import ConfirmedPublisher, OutgoingMessage

    with ConfirmedPublisher(uri) as pub:
        pub.publish([OutgoingMessage("directory.mef.created", b"{}", f"m{i}", "directory.mef.created")
                     for i in range(provisioning)] +
                    [OutgoingMessage("directory.import.completed", b"{}", f"s{i}", "directory.import.completed")
                     for i in range(unrouted)])


def test_status_warns_before_a_queue_reaches_its_bound(settings_env, monkeypatch):
    uri = settings_env["RELAIS_AMQP_URI"]
    fill_queues(uri, 9, 4)

    # Not bounded yet (a deployment from before): said, with the command that bounds them.
    _code, report = until(lambda r: r["unrouted"] == 4)
    assert report["bounds"]["relais.q.provisioning"]["max_length"] is None
    unbounded = [q for c in sorted(subscriptions()) for q in (f"relais.q.{c}", f"relais.q.{c}.dlq")]
    assert "relais.q.provisioning.dlq" in unbounded and "relais.q.usage-subject" in unbounded
    assert (f"no bound in force on {', '.join(unbounded)}: they grow as long as nobody takes from them; "
            "run `relais queues bound` (deploy/queues.md)") in report["warnings"], report["warnings"]
    assert any(w.startswith("4 event(s) in relais.unrouted, which has no bound in force") for w in report["warnings"])

    monkeypatch.setenv("RELAIS_QUEUE_MAX_LENGTH", "10")
    monkeypatch.setenv("RELAIS_UNROUTED_MAX_LENGTH", "5")
    bounded = CliRunner().invoke(main, ["queues", "bound"])
    assert bounded.exit_code == 0, bounded.output
    fill_queues(uri, 0, 6)  # relais.unrouted at its bound: the oldest dropped

    # 90% of provisioning's bound, relais.unrouted at its own: warned, naming the queue, its fill and what to do.
    _code, report = until(lambda r: r["bounds"]["relais.q.provisioning"]["max_length"] == 10 and r["unrouted"] == 5
                          and r["bounds"]["relais.unrouted"]["max_length"] == 5)  # the broker shows both bounds
    assert report["bounds"]["relais.q.provisioning"] == {
        "messages": 9, "bytes": 18, "max_length": 10, "max_bytes": 1024 ** 3, "overflow": "reject-publish",
        "policy": "relais-consumers", "source": "broker", "fill": 0.9}
    assert ("relais.q.provisioning is 90% of its bound (9 of 10 messages, 18 B of 1.0 GiB): at it RabbitMQ "
            "refuses new events for it and they wait in the outbox; is `relais serve provisioning` running and "
            "keeping up? (deploy/queues.md)") in report["warnings"]
    [unrouted] = [w for w in report["warnings"] if w.startswith("relais.unrouted")]
    assert unrouted.startswith("relais.unrouted is 100% of its bound (5 of 5 messages")
    assert "consumers not built yet (audit)" in unrouted
    assert not any("no bound in force" in w for w in report["warnings"])
    text = CliRunner().invoke(main, ["status"]).stdout
    assert "relais.q.provisioning" in text and "90%" in text and "100%" in text

    # Full: RabbitMQ refuses what comes, the events wait in the outbox: a problem, with what to do.
    fill_queues(uri, 1, 0)
    code, report = until(lambda r: r["bounds"]["relais.q.provisioning"]["messages"] == 10)
    assert code == 1 and any(p.startswith("relais.q.provisioning is full (10 of 10 messages") and
                             "start or scale `relais serve provisioning`" in p for p in report["problems"])

    # Without the management API the bounds configured are used, on the message counts.
    _code, fallback = status(env={"RELAIS_RABBITMQ_API": f"http://guest:guest@{DEAD}"})
    assert fallback["bounds"]["relais.q.provisioning"]["source"] == "configured"
    assert any(p.startswith("relais.q.provisioning is full (10 of 10 messages)") for p in fallback["problems"])


def test_judge_weighs_each_queue_against_its_bound():
    def bound(messages, max_length, overflow="reject-publish", bytes_=None, max_bytes=None):
        ratio = max(messages / max_length if max_length else 0, (bytes_ or 0) / max_bytes if max_bytes else 0)
        return {"messages": messages, "bytes": bytes_, "max_length": max_length, "max_bytes": max_bytes,
                "overflow": overflow, "policy": "p", "source": "broker", "fill": ratio}

    report = {"broker": {"reachable": True}, "services": {}, "database": {"reachable": True},
              "consumers": {"provisioning": {"queue": "relais.q.provisioning", "messages": 79, "consumers": 1,
                                             "retrying": 0, "dead_lettered": 0},
                            "vault": {"queue": "relais.q.vault", "messages": 1, "consumers": 1, "retrying": 0,
                                      "dead_lettered": 80}},
              "unrouted": 5, "planned_consumers": ["audit"],
              "bounds": {"relais.q.provisioning": bound(79, 100),
                         "relais.q.provisioning.dlq": bound(0, 100),
                         "relais.q.vault": bound(1, 100, bytes_=900, max_bytes=1000),
                         "relais.q.vault.dlq": bound(80, 80),
                         "relais.unrouted": bound(5, None, "drop-head", 0, None) | {"max_length": None}}}
    problems, warnings = judge(report)
    assert [w.split(" (")[0] for w in warnings] == ["5 event(s) in relais.unrouted, which has no bound in force: it "
                                                    "grows as long as events come that no consumer's queue is bound "
                                                    "for; run `relais queues bound`",
                                                    "relais.q.vault is 90% of its bound"]
    assert "(1 of 100 messages, 900 B of 1000 B)" in warnings[1]  # the larger fraction counts: its size
    assert any(p.startswith("relais.q.vault.dlq is 100% of its bound (80 of 80 messages): at it, vault stops at its "
                            "next dead letter") for p in problems), problems
    assert not any("relais.q.provisioning" in m for m in problems + warnings)  # 79%: under the warning line
    # A bounded relais.unrouted holding a few events is no warning: the planned consumers' events live there.
    report["bounds"]["relais.unrouted"] = {**report["bounds"]["relais.unrouted"], "max_length": 100_000, "fill": 0.0}
    _problems, warnings = judge(report)
    assert not any("relais.unrouted" in w for w in warnings), warnings
