"""The demo's usage statistics: a month of simulated logins over the sample academy, then the report.

Everyone who holds a licence after provisioning logs in on some school days of November 2026 and
visits some of their resources through a CAS service; the events go through the outbox and the bus
to `relais serve usage`, as the SSO's would. Then the month is closed (`relais usage close`: its
pseudonyms and key destroyed) and reported (`relais usage report`: CSV, charts), and the
unused-licences table is printed: what a collectivité reads before renewing a purchase.
"""

from __future__ import annotations

import json
import random
import subprocess
import time
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from . import RELAIS

PERIOD = "2026-11"
PARIS = ZoneInfo("Europe/Paris")


def service_of(resource: str) -> str:
    return "cas-" + resource.rsplit("/", 1)[-1]


def simulate(engine, tenant: str, rng: random.Random) -> tuple[list, dict[str, list[str]]]:
    """A month of logins and visits of everyone holding a licence; the resources' CAS services."""
    from relais.bus.envelope import Event
    from services.directory.api import Directory
    from services.provisioning.adapters.tables import grant

    with engine.connect() as conn:
        grants = conn.execute(select(grant.c.person, grant.c.resource, grant.c.structure)).all()
    held: dict[str, list[tuple[str, str]]] = {}
    for person, resource, structure in grants:
        held.setdefault(person, []).append((resource, structure))
    directory = Directory(engine, tenant)
    days = [date(2026, 11, d) for d in range(1, 31) if date(2026, 11, d).weekday() < 5]
    events = []
    for person, resources in sorted(held.items()):
        record = directory.get_person(person) or {}
        profile = (record.get("profiles") or ["-"])[0]
        structure = resources[0][1]
        keen = rng.random()  # how often this person comes
        curious = {r for r, _s in resources if rng.random() < 0.7}  # the resources they ever open
        for day in days:
            if rng.random() > keen:
                continue
            at = datetime(day.year, day.month, day.day, 8, rng.randrange(60), tzinfo=PARIS)
            common = {"person": person, "profile": profile, "structure": structure, "level": None}
            events.append(Event(type="sso.login.succeeded", source="relais.sso", tenant=tenant, correlation_id="demo",
                                occurred_at=at.isoformat(),
                                payload={"session": f"s-{person}-{day}", "auth_source": "educonnect", **common}))
            for resource in sorted(curious):
                if rng.random() < 0.5:
                    events.append(Event(type="sso.cas.ticket.validated", source="relais.sso", tenant=tenant,
                                        correlation_id="demo", occurred_at=(at + timedelta(minutes=5)).isoformat(),
                                        payload={"session": f"s-{person}-{day}", "service": service_of(resource),
                                                 **common}))
    services = {r: [service_of(r)] for r in sorted({r for _p, r, _s in grants})}
    return events, services


def run(engine, tenant: str, data_dir: Path, env: dict[str, str]) -> bool:
    from relais.bus.outbox import OutboxRelay, add_events
    from relais.bus.publisher import ConfirmedPublisher
    from relais.bus.tables import processed_events
    from relais.config import Settings

    out = data_dir / "usage"
    out.mkdir(parents=True, exist_ok=True)
    events, services = simulate(engine, tenant, random.Random(7))
    mapping = out / "resources.yaml"
    mapping.write_text(json.dumps(services, indent=2))  # JSON is YAML
    serving = {**env, "RELAIS_OPS_HOST": "127.0.0.1", "RELAIS_OPS_PORT": "0", "RELAIS_USAGE_RESOURCES": str(mapping)}
    usage = subprocess.Popen([*RELAIS, "serve", "usage"], env=serving, stderr=subprocess.DEVNULL)
    try:
        with engine.connect() as c:
            before = c.execute(select(func.count()).select_from(processed_events)
                               .where(processed_events.c.consumer == "usage")).scalar_one()
        with engine.begin() as conn:
            add_events(conn, events)
        relay = OutboxRelay(engine, lambda: ConfirmedPublisher(Settings.from_env().amqp_uri))
        relay.drain()
        relay.close()
        print(f"{len(events)} simulated SSO events of {PERIOD} (logins, CAS visits) published through the outbox")
        expected = before + len(events)
        deadline, count = time.monotonic() + 180, 0
        while time.monotonic() < deadline and usage.poll() is None:
            with engine.connect() as c:
                count = c.execute(select(func.count()).select_from(processed_events)
                                  .where(processed_events.c.consumer == "usage")).scalar_one()
            if count >= expected:
                break
            time.sleep(0.5)
        print(f"{count} events consumed by the usage service (grants included): pseudonymised on arrival")
    finally:
        usage.terminate()
        usage.wait(timeout=30)
    closed = subprocess.run([*RELAIS, "usage", "close", "--period", PERIOD, "--json"], env=env, capture_output=True,
                            text=True)
    print(closed.stdout.strip() or closed.stderr.strip())
    report_path = out / f"usage-{PERIOD}.json"
    made = subprocess.run([*RELAIS, "usage", "report", "--period", PERIOD, "--by", "structure,resource",
                           "--format", "json", "-o", str(report_path), "--charts", str(out)], env=env,
                          capture_output=True, text=True)
    print(made.stderr.strip())
    if made.returncode != 0 or closed.returncode != 0:
        return False
    rows = json.loads(report_path.read_text())["rows"]
    table: dict[tuple[str, str], dict[str, object]] = {}
    for row in rows:
        if row["indicator"] in ("licences_granted", "licences_used", "licences_unused", "adoption_rate") \
                and row["resource"] != "*" and row["structure"] != "*":
            table.setdefault((row["structure"], row["resource"]), {})[row["indicator"]] = row["value"]
    print(f"\nlicences in {PERIOD} (— : suppressed, fewer than 10 people behind it)")
    print(f"{'structure':<10} {'resource':<32} {'granted':>8} {'used':>6} {'unused':>7} {'adoption':>9}")

    def shown(value: object, percent: bool = False) -> str:
        if value is None:
            return "—"
        return f"{float(value):.0%}" if percent else str(value)  # type: ignore[arg-type]

    hidden = 0  # a pair with no licences_used row: nobody used it (0 is no cell), not suppressed
    for (structure, resource), values in sorted(table.items()):
        if all(v is None for v in values.values()):
            hidden += 1
            continue
        print(f"{structure:<10} {resource:<32} {shown(values.get('licences_granted')):>8} "
              f"{shown(values.get('licences_used', 0)):>6} {shown(values.get('licences_unused')):>7} "
              f"{shown(values.get('adoption_rate'), percent=True):>9}")
    print(f"... and {hidden} structure/resource pair(s) entirely suppressed (small schools)")
    print(f"report: {report_path}; charts: {', '.join(sorted(p.name for p in out.glob('licences-*')))}")
    return bool(table) and count >= expected

