"""Logs: JSON lines with the bus's ids, text on request, and no personal data, even from database errors."""

from __future__ import annotations

import io
import json
import logging
import re
import shutil

import pytest
from click.testing import CliRunner
from lxml import etree
from sqlalchemy import Column, Integer, MetaData, String, Table

from relais.bus.consumer import EventConsumer
from relais.bus.envelope import Event
from relais.ops.logs import configure_logging, describe_error, log_format
from tests import aaf_builder as aaf

log = logging.getLogger("tests.ops.handler")


@pytest.fixture
def captured():
    """Every record of the process, formatted by our handler into a buffer; the handler removed afterwards."""
    buffers = []

    def install(fmt: str, level: int = logging.INFO) -> io.StringIO:
        buf = io.StringIO()
        buffers.append(configure_logging("provisioning", level=level, fmt=fmt, stream=buf))
        return buf

    yield install
    root = logging.getLogger()
    for handler in buffers:
        root.removeHandler(handler)
    root.setLevel(logging.WARNING)


def ev(code: str, correlation: str = "corr-42", causation: str | None = "cause-7") -> Event:
    return Event(type="directory.mef.created", payload={"mef": {"code": code, "label": None}},
                 source="relais.directory", tenant="t", correlation_id=correlation, causation_id=causation)


def test_json_lines_carry_the_ids_of_the_message_being_handled(sqlite_engine, captured):
    buf = captured("json")

    def handler(event, conn):
        log.info("handling mef %s", event["payload"]["mef"]["code"])

    consumer = EventConsumer("logs", ["directory.#"], handler, sqlite_engine,
                             batch_handler=lambda events, conn: log.info("a batch of %d", len(events)))
    one = ev("one")
    consumer.handle(one.to_json())
    consumer.handle_many([(ev("a").to_json(), 0), (ev("b").to_json(), 0)])
    consumer.handle_many([(ev("c", correlation="x").to_json(), 0), (ev("d", correlation="y").to_json(), 0)])
    log.info("outside any handler")
    lines = [json.loads(line) for line in buf.getvalue().splitlines()]
    mine = [r for r in lines if r["logger"] == "tests.ops.handler"]
    first = mine[0]
    assert set(first) >= {"timestamp", "level", "service", "logger", "message"}
    assert first["message"] == "handling mef one" and first["level"] == "INFO" and first["service"] == "provisioning"
    assert (first["event_id"], first["event_type"], first["correlation_id"], first["causation_id"]) == (
        one.id, "directory.mef.created", "corr-42", "cause-7")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["timestamp"])
    assert (mine[1]["message"], mine[1]["correlation_id"], mine[1]["batch_size"]) == ("a batch of 2", "corr-42", 2)
    assert "correlation_id" not in mine[2] and mine[2]["batch_size"] == 2  # their events share none
    assert mine[3]["message"] == "outside any handler" and "event_id" not in mine[3] and "batch_size" not in mine[3]


def test_text_lines_and_the_default_format(sqlite_engine, captured):
    buf = captured("text")
    consumer = EventConsumer("logs-text", ["directory.#"], lambda e, c: log.warning("careful"), sqlite_engine)
    one = ev("t")
    consumer.handle(one.to_json())
    [line] = [line for line in buf.getvalue().splitlines() if "careful" in line]
    assert re.match(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} WARNING provisioning tests\.ops\.handler: careful \[", line)
    assert f"event_id={one.id}" in line and "correlation_id=corr-42" in line

    class Tty(io.StringIO):
        def isatty(self):
            return True

    assert log_format({}, Tty()) == "text" and log_format({}, io.StringIO()) == "json"
    assert log_format({"RELAIS_LOG_FORMAT": "TEXT"}, io.StringIO()) == "text"


NAME, EMAIL = "Gwendoline Secretname", "g.secret@ac-test.fr"  # not in the handler's line: tracebacks quote code
people = MetaData()
person = Table("test_log_person", people, Column("id", Integer, primary_key=True),
               Column("name", String(80)), Column("email", String(80)), Column("required", String(10), nullable=False))


def test_database_errors_are_logged_and_dead_lettered_without_the_row(pg_engine, captured):
    people.create_all(pg_engine)
    buf = captured("json")

    def handler(event, conn):  # a bug that puts a person's row in PostgreSQL's error DETAIL
        conn.execute(person.insert().values(id=1, name=NAME, email=EMAIL, required=None))

    consumer = EventConsumer("logs-db", ["directory.#"], handler, pg_engine, retry_delays_ms=())
    outcome = consumer.handle(ev("x").to_json())
    assert outcome.status == "dead"
    assert "IntegrityError (NotNullViolation): null value in column \"required\"" in outcome.reason
    try:
        with pg_engine.begin() as conn:
            handler(None, conn)
    except Exception as exc:  # noqa: BLE001
        assert "Secretname" in str(exc)  # what the driver says: the whole row
        logging.getLogger("tests.ops").error("insert failed: %s", exc)
        logging.getLogger("tests.ops").exception("insert failed")
        assert "Secretname" not in describe_error(exc)
    text = buf.getvalue()
    assert "NotNullViolation" in text and "Traceback" in text
    for secret in ("Secretname", "Gwendoline", "g.secret@ac-test.fr"):
        assert secret not in text, text[max(0, text.find(secret) - 400):text.find(secret) + 50]
        assert secret not in (outcome.reason or "")


def _people_in(files) -> set[str]:
    """Names, e-mail addresses and birth dates of the sample's people."""
    found = set()
    for path in files:
        for attr in etree.parse(str(path)).iter("attr"):
            if attr.get("name") in ("sn", "givenName", "mail", "ENTPersonAutresPrenoms", "ENTPersonNomPatro",
                                    "ENTPersonDateNaissance"):
                found.update(v.text.strip() for v in attr.iter("value") if v.text and len(v.text.strip()) >= 4)
    return found


def test_an_import_and_a_consume_log_no_name_nor_email(aaf_sample, tmp_path, settings_env, monkeypatch, captured):
    from app.cli import main
    from relais.config import Settings
    from relais.db import make_engine, writer
    from relais.runtime.runner import event_consumer
    from services.provisioning.handlers.configuration import load_catalogue, load_rules
    from services.provisioning.handlers.work import Context as Work
    from services.provisioning.process import consumer

    folder = tmp_path / "aaf"
    folder.mkdir()
    for name in ("FULL_ENTTSSERVICES_Complet_20130117_EtabEducNat_0000.xml",
                 "FULL_ENTTSSERVICES_Complet_20130117_Eleve_0001.xml",
                 "FULL_ENTTSSERVICES_Complet_20130117_PersEducNat_0001.xml",
                 *(f"clean-FULL_ENTTSSERVICES_Complet_20130117_PersRelEleve_000{i}.xml" for i in range(1, 6))):
        shutil.copy(aaf_sample / name, folder / name)
    secrets = _people_in(folder.iterdir())
    # Bad records (no jointure; a broken `$` field) are rejected: the report says where, the logs never who.
    aaf.write(folder, "P_Delta_20130118_Eleve_0000.xml",
              aaf.add("Eleve", None, sn="Zébulonsecret", givenName="Anatolia", mail="zebulon@ac-test.fr"),
              aaf.pupil("9999001", sn="Quirinussecret", ENTEleveClasses="no-dollar-here"))
    secrets |= {"Zébulonsecret", "Anatolia", "zebulon@ac-test.fr", "Quirinussecret"}
    assert len(secrets) > 1000
    monkeypatch.setenv("RELAIS_LOG_FORMAT", "json")
    monkeypatch.setenv("RELAIS_LOG_LEVEL", "DEBUG")
    runner = CliRunner()
    imported = runner.invoke(main, ["-v", "directory", "import", str(folder), "--json"])
    assert imported.exit_code == 0, imported.output
    relayed = runner.invoke(main, ["outbox", "relay"])
    assert relayed.exit_code == 0, relayed.output
    logs = imported.stderr + relayed.stderr

    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    with writer(engine).begin() as conn:
        work = Work("test")
        load_catalogue(conn, {"resources": [{"id": "ark:/1/dico", "title": "Dico", "publisher": "P",
                                             "licence": "unlimited"}]}, work)
        load_rules(conn, {"rules": [{"id": "all-pupils", "resource": "ark:/1/dico",
                                     "profiles": ["National_ELV"]}]}, work)
    buf = captured("json", logging.DEBUG)
    settled = event_consumer(consumer("test"), engine).run(settings.amqp_uri, idle_timeout=2)
    assert settled > 600
    logs += buf.getvalue()
    lines = [json.loads(line) for line in logs.splitlines() if line.startswith("{")]
    assert len(lines) > 5 and {"directory", "outbox", "provisioning"} <= {r["service"] for r in lines}
    words = set(re.findall(r"[^\W\d_][\w'-]*|\d\d/\d\d/\d{4}|[\w.+-]+@[\w.-]+", logs))
    leaked = sorted(s for s in secrets if s in words or ("@" in s and s in logs))
    assert not leaked, leaked[:20]


def test_the_provisioning_api_logs_paths_without_their_query_strings(settings_env, tmp_path):
    import os
    import subprocess
    import time
    import urllib.error
    import urllib.request

    from tests.ops_helpers import RELAIS, free_port

    port = free_port()
    log_path = tmp_path / "api.log"
    env = {**os.environ, **settings_env, "RELAIS_LOG_FORMAT": "json", "RELAIS_HTTP_PORT": str(port),
           "RELAIS_OPS_PORT": str(free_port()), "RELAIS_OPS_HOST": "127.0.0.1"}
    with open(log_path, "wb") as out:
        proc = subprocess.Popen([RELAIS, "serve", "provisioning-api"], env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/ims/oneroster/rostering/v1p2/users?filter=familyName%3D%27Secretname%27"
            for _ in range(100):
                try:
                    urllib.request.urlopen(url, timeout=2)
                except urllib.error.HTTPError as exc:
                    assert exc.code == 401  # no token: refused, and logged
                    break
                except OSError:
                    time.sleep(0.1)
            time.sleep(0.3)
        finally:
            proc.terminate()
            proc.wait(10)
    logs = log_path.read_text()
    assert '"GET /ims/oneroster/rostering/v1p2/users\\" 401' in logs, logs
    assert "Secretname" not in logs and "filter" not in logs
