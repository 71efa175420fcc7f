"""`make demo`: the sample academy through the directory, end to end.

Starts the directory service, imports the anonymised AAF export from
shared/fixtures, lets the service relay the events to RabbitMQ with confirms,
asks the running service a question over RPC, prints a short summary, and
stops everything it started. State goes to ./var/demo (fresh each run).
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

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = Path(os.environ.get("RELAIS_SHARED_DIR", ROOT.parent / "shared")) / "fixtures" / "aaf" / "entcore-2013"
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

    from relais.config import Settings, redact_url
    from relais.db import make_engine, upgrade
    from relais.bus.topology import EVENTS_EXCHANGE, declare_events_exchange, parse_amqp_uri

    settings = Settings.from_env()
    print(f"data: {settings.data_dir}\ndatabase: {redact_url(settings.database_url)}\nbroker: {redact_url(settings.amqp_uri)}")

    # An audit queue bound to every directory event, so we can count what was delivered.
    conn = amqp.Connection(**parse_amqp_uri(settings.amqp_uri).connection_kwargs())
    conn.connect()
    ch = declare_events_exchange(conn.channel())
    ch.queue_declare(AUDIT_QUEUE, durable=True, auto_delete=False)
    ch.queue_purge(AUDIT_QUEUE)
    ch.queue_bind(AUDIT_QUEUE, EVENTS_EXCHANGE, "directory.#")

    engine = make_engine(settings.database_url)
    upgrade(engine)

    say("1/4 starting the directory service (nameko)")
    service = subprocess.Popen([sys.executable, "-m", "relais.serve", "directory"], env=env)
    try:
        _wait_for_queue(ch, "rpc-directory", service)
        print("directory service is up")

        say(f"2/4 importing the sample academy from {SAMPLE}")
        from services.directory.api import Directory
        from services.directory.importer import ImportOptions
        from tqdm import tqdm

        bar = tqdm(unit=" records", file=sys.stderr, disable=not sys.stderr.isatty())
        report = Directory(engine, settings.tenant).import_files(
            [SAMPLE], ImportOptions(), lambda info, n: bar.update(n))
        bar.close()
        for line in report.summary_lines()[:8]:
            print(line)
        print(f"{len(report.rejected)} rejected record(s), {len(report.warnings)} warning(s) "
              f"(unresolved references: {report.unresolved})")

        say("3/4 the running service relays the outbox to RabbitMQ (publisher confirms)")
        delivered = _wait_delivered(ch, report.events, service)
        print(f"{delivered} of {report.events} events delivered to {AUDIT_QUEUE}")

        say("4/4 asking the running service over RPC: pupil 2605692 and their legal guardians")
        rpc = [sys.executable, "-m", "relais.rpc", "directory"]
        pupil = json.loads(subprocess.run(rpc + ["get_person", "2605692"], env=env, check=True,
                                          capture_output=True, text=True).stdout)
        guardians = json.loads(subprocess.run(rpc + ["legal_guardians", "2605692"], env=env, check=True,
                                              capture_output=True, text=True).stdout)
        classes = [m["code"] for m in pupil["memberships"] if m["kind"] == "class"]
        print(f"{pupil['first_name']} {pupil['last_name']}, {', '.join(pupil['profiles'])}, "
              f"structure {pupil['structure']}, class {', '.join(classes)}")
        for g in guardians:
            print(f"  legal guardian: {g['first_name']} {g['last_name']} ({g['jointure']})")
        ok = report.ok and delivered == report.events
    finally:
        say("stopping the directory service")
        service.send_signal(signal.SIGTERM)
        try:
            service.wait(timeout=30)
        except subprocess.TimeoutExpired:
            service.kill()
        ch.queue_delete(AUDIT_QUEUE)
        conn.close()
    print("\ndemo " + ("succeeded" if ok else "FAILED") + ": the directory of the sample academy is loaded, "
          "its events are on the bus, and the service answers queries.")
    return 0 if ok else 1


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
