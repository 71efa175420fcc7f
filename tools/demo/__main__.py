"""`make demo`: the sample academy through the directory and provisioning, end to end.

Starts the directory and provisioning services, imports the anonymised AAF
sample export (`SAMPLE` below) with a few generated écoles (a first-degree
export, `tools/synthetic_academy.generate_first_degree`) in the same run,
lets the directory relay its events to RabbitMQ with confirms while
provisioning consumes them, asks the directory a question over RPC, loads a
resource catalogue and assignment rules, shows one pupil's resources with
their causes, writes the GAR feeds (the écoles' too) and validates them
against the GAR's XSDs, logs a pupil and a parent in through a local
ÉduConnect stand-in into a CAS app (sso.py), moves documents, calendars and
contacts from an outgoing ENT to an incoming one through the vault and
verifies nothing was lost (vault.py), reports a month of simulated logins with
the usage statistics, anonymised (usage.py), then stops everything it started.
State (the SSO keys included, made at run time, and the vault) goes to
./var/demo (fresh each run).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import amqp

from tools import SHARED

from . import RELAIS

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = SHARED / "fixtures" / "aaf" / "entcore-2013"
GAR_XSD = SHARED / "schemas" / "gar" / "GAR-ENT.xsd"
GAR_XSD_1D = SHARED / "schemas" / "gar" / "GAR-ENT-1D.xsd"
ECOLES_PERSONS = 600  # two écoles
PROVISIONING_CONFIG = ROOT / "services" / "provisioning" / "examples" / "sample-academy.yaml"
PUPIL = "2605692"
AUDIT_QUEUE = "relais.q.demo-audit"


def say(step: str) -> None:
    print(f"\n== {step}", flush=True)


def main() -> int:
    if not SAMPLE.is_dir():
        print(f"the sample export is missing: {SAMPLE} (shared/ must sit beside the checkout)", file=sys.stderr)
        return 1
    data_dir = ROOT / "var" / "demo"
    shutil.rmtree(data_dir, ignore_errors=True)
    data_dir.mkdir(parents=True)
    env = {**os.environ, "RELAIS_DATA_DIR": str(data_dir), "RELAIS_TENANT": "demo"}
    env.pop("RELAIS_DATABASE_URL", None)
    os.environ.update({k: env[k] for k in ("RELAIS_DATA_DIR", "RELAIS_TENANT")})
    os.environ.pop("RELAIS_DATABASE_URL", None)

    from relais.bus.topology import EVENTS_EXCHANGE, declare_events_exchange
    from relais.config import Settings, parse_amqp_uri, redact_url
    from relais.db import make_engine, upgrade

    settings = Settings.from_env()
    print(f"data: {settings.data_dir}\ndatabase: {redact_url(settings.database_url)}\n"
          f"broker: {redact_url(settings.amqp_uri)}")

    # An audit queue bound to every directory event, so we can count what was delivered.
    conn = amqp.Connection(**parse_amqp_uri(settings.amqp_uri).connection_kwargs())
    conn.connect()
    ch = declare_events_exchange(conn.channel())
    ch.queue_declare(AUDIT_QUEUE, durable=True, auto_delete=False)
    ch.queue_purge(AUDIT_QUEUE)
    ch.queue_bind(AUDIT_QUEUE, EVENTS_EXCHANGE, "directory.#")
    # The demo starts from nothing: no provisioning queue left over from an earlier run.
    from relais.bus.topology import consumer_queues

    for consumer in ("provisioning", "usage"):
        q = consumer_queues(consumer)
        for name in (q.main, *q.retries, q.dead_letter):
            ch.queue_delete(name)

    engine = make_engine(settings.database_url)
    upgrade(engine)

    say("1/9 starting the directory (nameko RPC) and provisioning (event consumer) services")
    # `relais serve` for each, their ops endpoints on ports of their own choosing (two share this machine).
    serving = {**env, "RELAIS_OPS_HOST": "127.0.0.1", "RELAIS_OPS_PORT": "0"}
    service = subprocess.Popen([*RELAIS, "serve", "directory"], env=serving)
    provisioning = subprocess.Popen([*RELAIS, "serve", "provisioning"], env=serving, stderr=subprocess.DEVNULL)
    ok = False
    try:
        _wait_for_queue(ch, "rpc-directory", service)
        _wait_for_queue(ch, "relais.q.provisioning", provisioning)
        print("directory and provisioning services are up")

        from tqdm import tqdm

        from services.directory.api import Directory
        from services.directory.importing.options import ImportOptions
        from tools.synthetic_academy import generate_first_degree

        ecoles = generate_first_degree(data_dir / "ecoles", ECOLES_PERSONS, project="DEMO1D")
        say(f"2/9 importing the sample academy from {SAMPLE}, and {ecoles['ecoles']} generated écoles (a "
            "first-degree export) in the same run")

        bar = tqdm(unit=" records", file=sys.stderr, disable=not sys.stderr.isatty())

        def progress(_file, records: int) -> None:
            bar.update(records)

        report = Directory(engine, settings.tenant).import_files([SAMPLE, data_dir / "ecoles"], ImportOptions(),
                                                                 progress)
        bar.close()
        for line in report.summary_lines()[:8]:
            print(line)
        print(f"{len(report.rejected)} rejected record(s), {len(report.warnings)} warning(s) "
              f"(unresolved references: {report.unresolved})")

        say("3/9 the directory service relays the outbox to RabbitMQ (publisher confirms); provisioning consumes")
        delivered = _wait_delivered(ch, report.events, service)
        print(f"{delivered} of {report.events} events delivered to {AUDIT_QUEUE}")
        consumed = _wait_consumed(engine, report.events - 1, provisioning)  # not directory.import.completed
        print(f"{consumed} directory events consumed by provisioning (idempotent on event id, settled in batches)")

        say("4/9 asking the running service over RPC: pupil 2605692 and their legal guardians")
        rpc = [sys.executable, "-m", "relais.runtime.call", "directory"]
        pupil = json.loads(subprocess.run(rpc + ["get_person", "2605692"], env=env, check=True,
                                          capture_output=True, text=True).stdout)
        guardians = json.loads(subprocess.run(rpc + ["legal_guardians", "2605692"], env=env, check=True,
                                              capture_output=True, text=True).stdout)
        classes = [m["code"] for m in pupil["memberships"] if m["kind"] == "class"]
        print(f"{pupil['first_name']} {pupil['last_name']}, {', '.join(pupil['profiles'])}, "
              f"structure {pupil['structure']}, class {', '.join(classes)}")
        for g in guardians:
            print(f"  legal guardian: {g['first_name']} {g['last_name']} ({g['jointure']})")
        _show_ecolier(Directory(engine, settings.tenant))

        say(f"5/9 provisioning: catalogue and rules from {PROVISIONING_CONFIG.relative_to(ROOT)}")
        granted = _provision(engine, settings.tenant)

        say(f"6/9 the GAR feeds of the academy, validated against {GAR_XSD.name} and, the écoles', "
            f"{GAR_XSD_1D.name}; an app's OneRoster roster")
        gar_ok = _gar_feed(engine, data_dir / "gar")
        rosters_ok = _rosters(engine, data_dir / "oneroster-langues.zip")

        say(f"7/9 single sign-on: pupil {PUPIL} and a parent log in through ÉduConnect (a local stand-in) "
            "into a CAS app")
        from . import sso as demo_sso

        sso_ok = demo_sso.run(engine, settings.tenant, data_dir / "sso", PUPIL)

        say(f"8/9 contract end: pupil {PUPIL}'s, a parent's and a teacher's documents, calendars and contacts "
            "go from ENT A to ENT B through the vault (relais vault export, import, verify)")
        from . import vault as demo_vault

        vault_ok = demo_vault.run(engine, settings.tenant, data_dir, PUPIL)

        say("9/9 usage statistics: a month of simulated logins over the academy, pseudonymised on arrival; the "
            "month closed (pseudonyms and key destroyed), reported with small cells suppressed")
        from . import usage as demo_usage

        usage_ok = demo_usage.run(engine, settings.tenant, data_dir, env)
        ok = (report.ok and delivered == report.events and consumed == report.events - 1 and granted and gar_ok
              and rosters_ok and sso_ok and vault_ok and usage_ok)
    finally:
        say("stopping the services")
        for proc in (service, provisioning):
            proc.send_signal(signal.SIGTERM)
        for proc in (service, provisioning):
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
        ch.queue_delete(AUDIT_QUEUE)
        conn.close()
    print("\ndemo " + ("succeeded" if ok else "FAILED") + ": the sample academy's directory is loaded and on the "
          "bus with its écoles, the services answer, resources are assigned by rules with their causes, the GAR "
          "feeds (écoles' too) are valid, an "
          "app reads its roster, a pupil and a parent log in through ÉduConnect into a CAS app, and the data of ENT A "
          "reached ENT B through the vault with nothing lost; a month of usage is reported, anonymised.")
    return 0 if ok else 1


def _wait_consumed(engine, expected: int, proc, timeout: float = 300) -> int:
    from sqlalchemy import func, select

    from relais.bus.tables import processed_events

    deadline, count = time.monotonic() + timeout, 0
    while time.monotonic() < deadline and proc.poll() is None:
        with engine.connect() as c:
            count = c.execute(select(func.count()).select_from(processed_events)
                              .where(processed_events.c.consumer == "provisioning")).scalar_one()
        if count >= expected:
            break
        time.sleep(0.5)
    return count


def _provision(engine, tenant: str) -> bool:
    import yaml

    from relais.db import writer
    from services.provisioning.handlers.configuration import load_catalogue, load_rules
    from services.provisioning.handlers.explain import explain
    from services.provisioning.handlers.work import Context as Work

    doc = yaml.safe_load(PROVISIONING_CONFIG.read_text(encoding="utf-8"))
    work = Work(tenant)
    with writer(engine).begin() as c:
        load_catalogue(c, {"resources": doc["resources"]}, work)
        load_rules(c, {k: v for k, v in doc.items() if k != "resources"}, work)
    print("grants: " + ", ".join(f"{k} {v}" for k, v in work.counts.items())
          + " (the provisioning service relays their events)")
    with engine.connect() as c:
        why = explain(c, PUPIL)
    print(f"pupil {PUPIL} ({', '.join(why['classes'])}):")
    for g in why["grants"]:
        print(f"  {g['title']} in {g['structure']}: {g['cause']}")
    for r in why["refusals"]:
        print(f"  refused {r['resource']}: {r['reason']}")
    return work.counts["granted"] > 0 and bool(why["grants"])


def _show_ecolier(directory) -> None:
    """An écolier of the generated écoles: level, cycle, class (multi-level ones have two levels), guardians."""
    pupils = [p for p in directory.members("70000") if p["category"] == "Eleve"]
    p = next((p for p in pupils if (p["first_degree"] or {}).get("class_type") == "MULTINIVEAU"), pupils[0])
    fd = p["first_degree"]
    klass = next(m for m in p["memberships"] if m["kind"] == "class")
    guardians = directory.legal_guardians(p["jointure"])
    print(f"an écolier: {p['first_name']} {p['last_name']}, {fd['level']['label']} ({fd['cycle']['label']}), "
          f"class {klass.get('label') or klass['code']} ({fd['class_type'].lower()}), "
          f"{len(guardians)} legal guardian(s) from ENTEleveAutoriteParentale")


def _gar_feed(engine, out: Path) -> bool:
    from datetime import UTC, datetime

    from services.provisioning.feeds.gar import export, validate
    from services.provisioning.feeds.gar_1d import export_1d

    now = datetime.now(UTC)
    with engine.connect() as c:
        report = export(c, out, "RELAIS-DEMO", now)
        report_1d = export_1d(c, out, "RELAIS-DEMO", now)
    print(f"{len(report.files)} files in {out}: " + ", ".join(f"{k} {v}" for k, v in report.records.items()))
    print(f"{len(report.skipped)} record(s) left out, with their reason (e.g. staff attached to no known "
          "structure, resource managers without an e-mail)")
    print(f"écoles: {len(report_1d.files)} more files (…_1D_…): "
          + ", ".join(f"{k} {v}" for k, v in report_1d.records.items()))
    if not GAR_XSD.is_file() or not GAR_XSD_1D.is_file():
        print(f"GAR XSDs not found at {GAR_XSD.parent}: not validated")
        return False
    problems = validate(report.files, GAR_XSD) + validate(report_1d.files, GAR_XSD_1D)
    print("every file is valid against its GAR XSD" if not problems else f"INVALID: {problems[:5]}")
    return not problems


def _rosters(engine, out: Path) -> bool:
    """An app serving one resource: its OneRoster bundle, and the same view over REST with a real token."""
    from datetime import UTC, datetime

    from werkzeug.test import Client

    from relais.db import writer
    from services.provisioning.api import apps, wsgi
    from services.provisioning.api.oneroster_view import AppView
    from services.provisioning.feeds.oneroster_csv import write_bundle

    with writer(engine).begin() as c:
        app, secret = apps.add_app(c, "langues-app", ["ark:/49591/langues-lycee"], name="Langues vivantes")
    with engine.connect() as c:
        report = write_bundle(AppView(c, app, now=datetime.now(UTC)), out)
    rows = report.to_dict()["rows"]
    print(f"OneRoster bundle for app {app.id} in {out}: " + ", ".join(f"{k} {v}" for k, v in rows.items()))
    client = Client(wsgi.make_app(engine))
    token = client.post("/oauth/token", data={"grant_type": "client_credentials"}, auth=(app.id, secret)).get_json()
    users = client.get("/ims/oneroster/rostering/v1p2/users", query_string={"limit": 1},
                       headers={"Authorization": f"Bearer {token['access_token']}"})
    total = int(users.headers.get("X-Total-Count", -1))
    print(f"the same app over REST (OAuth 2.0 client credentials): {total} users, "
          "each with only the attributes its resource may receive")
    return users.status_code == 200 and total == rows.get("users.csv", rows.get("users"))


def _wait_for_queue(ch, queue: str, proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the directory service exited with status {proc.returncode}")
        probe = ch.connection.channel()  # a failed passive declare closes its channel
        try:
            probe.queue_declare(queue, passive=True)
            probe.close()
            return
        except amqp.exceptions.NotFound:
            time.sleep(0.5)
    raise SystemExit(f"the directory service did not start within {timeout:.0f}s")


def _wait_delivered(ch, expected: int, proc, timeout: float = 120) -> int:
    deadline = time.monotonic() + timeout
    count = 0
    while time.monotonic() < deadline and proc.poll() is None:
        count = ch.queue_declare(AUDIT_QUEUE, passive=True).message_count
        if count >= expected:
            break
        time.sleep(0.5)
    return count


if __name__ == "__main__":
    sys.exit(main())
