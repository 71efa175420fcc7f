"""`make bench-usage`: the usage service's ingestion and report, measured against a bare consumer.

Workload: USAGE_EVENTS events (default 2,000,000: logins 70 %, CAS visits 25 %, SAML visits 5 %) of
November 2026 over an academy of USAGE_PERSONS people (default 1,000,000; about a thousand per
structure), published to RabbitMQ in time order, as the SSO publishes them (each person drawn at
random at each moment).
- ingestion: the consumer as `relais serve usage` runs it (contract check, pseudonyms, batched
  upserts, idempotency on event id), to the last message; the floor: bare py-amqp consuming the same
  messages, decoding each and counting it per structure (consume-and-count);
- closing the month (aggregates kept, pseudonyms and key destroyed), timed;
- the month's full report, as `relais usage publish` makes it (the month and its weeks by structure and
  resource, its days by structure; disclosure control, CSV),
  in a process of its own whose peak memory is read.
Prints one JSON line last; `--database-url` runs on that database (emptied first).
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

TENANT = "bench"
PARIS = ZoneInfo("Europe/Paris")
PROFILES = [("National_ELV", 85), ("National_ENS", 8), ("National_TUT", 5), ("National_DIR", 2)]
LEVELS = ["6EME", "5EME", "4EME", "3EME", "2NDE", "1ERE", "TERM"]
SERVICES = [f"service-{i:02d}" for i in range(20)]
PLATFORMS = [f"https://platform-{i}.example/sp" for i in range(5)]


def bodies(persons: int, events: int, rng: random.Random) -> list[bytes]:
    from relais.bus.envelope import Event

    profiles = [p for p, w in PROFILES for _ in range(w)]
    start = datetime(2026, 11, 1, tzinfo=PARIS)
    moments = sorted(rng.randrange(30 * 86400) for _ in range(events))  # in time order, as the SSO publishes
    out = []
    for i, second in enumerate(moments):
        n = rng.randrange(persons)
        person, structure = f"J{n:08d}", f"{n // 1000:07d}A"
        profile = profiles[n % len(profiles)]
        level = LEVELS[n % len(LEVELS)] if profile == "National_ELV" else None
        at = (start + timedelta(seconds=second)).isoformat()
        kind = rng.random()
        common = {"session": f"s{i}", "person": person, "profile": profile, "structure": structure, "level": level}
        if kind < 0.70:
            type_, payload = "sso.login.succeeded", {**common, "auth_source": "educonnect"}
        elif kind < 0.95:
            type_, payload = "sso.cas.ticket.validated", {**common, "service": rng.choice(SERVICES)}
        else:
            type_, payload = "sso.saml.response.sent", {**common, "platform": rng.choice(PLATFORMS)}
        out.append(Event(type=type_, payload=payload, source="relais.sso", tenant=TENANT, correlation_id="bench",
                         occurred_at=at).to_json())
    return out


def floor_consume_and_count(amqp_uri: str, queue: str, n: int) -> float:
    """The bare floor: consume n messages, decode each and count it per structure; seconds."""
    import orjson

    from tools.bench import floor_consume

    counts: Counter[str] = Counter()

    def count(body: bytes) -> None:
        counts[orjson.loads(body)["payload"]["structure"]] += 1

    elapsed = floor_consume(amqp_uri, queue, n, count)
    assert sum(counts.values()) == n
    return elapsed


def report_phase(database_url: str, out: Path) -> dict:
    """The month's full report, as `relais usage report` makes it, once per grain; this process's peak memory."""
    from relais.db import make_engine
    from services.usage.handlers.report import PUBLICATION, make_reports
    from services.usage.outputs.files import render

    engine = make_engine(database_url)
    t = time.perf_counter()
    cells = 0
    for made in make_reports(engine, TENANT, "2026-11", PUBLICATION, threshold=10):  # as `relais usage publish`
        (out / f"report-{made.grain}.csv").write_text(render("csv", made.rows, "2026-11", datetime.now(UTC)))
        cells += len(made.rows)
    return {"report_s": round(time.perf_counter() - t, 2), "report_cells": cells,
            "report_peak_rss_mb": _peak_rss_mb()}


def _peak_rss_mb() -> int:
    """This process's peak resident memory (VmHWM: unlike ru_maxrss, not inherited from the parent across exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024)
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=2_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/usage"))
    parser.add_argument("--database-url", default=None,
                        help="Run on this database (emptied first) instead of a fresh SQLite file in the workdir, "
                             "e.g. postgresql://postgres@127.0.0.1/relais_bench.")
    parser.add_argument("--report-only", action="store_true", help=argparse.SUPPRESS)  # the report's own process
    args = parser.parse_args(argv)
    if args.report_only:
        print(json.dumps(report_phase(args.database_url, args.workdir)))
        return 0

    from relais.bus.publisher import ConfirmedPublisher, OutgoingMessage
    from relais.runtime.runner import event_consumer
    from services.usage.handlers.close import close_period
    from services.usage.process import consumer
    from services.usage.settings import UsageSettings
    from tools.bench import consumer_vhost, fresh_engine

    engine = fresh_engine(args.database_url, args.workdir)
    database_url = engine.url.render_as_string(hide_password=False)
    result: dict = {"persons": args.persons, "events": args.events, "database": engine.dialect.name}
    t = time.perf_counter()
    messages = bodies(args.persons, args.events, random.Random(0))
    print(f"{len(messages)} events made in {time.perf_counter() - t:.0f}s", file=sys.stderr)

    with consumer_vhost("usage") as uri:
        t = time.perf_counter()
        with ConfirmedPublisher(uri, exchange="") as pub:
            pub.publish(OutgoingMessage("bench.floor", b, f"f{i}", "x") for i, b in enumerate(messages))
        floor_s = floor_consume_and_count(uri, "bench.floor", len(messages))
        with ConfirmedPublisher(uri) as pub:
            pub.publish(OutgoingMessage(json.loads(b)["type"], b, f"e{i}", "usage") for i, b in enumerate(messages))
        print(f"published twice in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        del messages
        # The consumer as `relais serve usage` runs it (its batch size included), bounded here.
        declared = consumer(TENANT, UsageSettings(zone=PARIS))
        t = time.perf_counter()
        consumed = event_consumer(declared, engine).run(uri, max_messages=args.events, idle_timeout=30,
                                                        batch_size=declared.batch_size,
                                                        prefetch=2 * declared.batch_size)
        ingest_s = time.perf_counter() - t
    result.update(consumed=consumed, ingest_s=round(ingest_s, 2), ingest_per_s=round(consumed / ingest_s),
                  floor_per_s=round(args.events / floor_s), ingest_ratio=round(floor_s / ingest_s, 3))
    print(f"ingested {consumed} in {ingest_s:.1f}s (floor {floor_s:.1f}s)", file=sys.stderr)

    t = time.perf_counter()
    closed = close_period(engine, TENANT, "2026-11", datetime(2026, 12, 7, tzinfo=UTC), PARIS)
    result.update(close_s=round(time.perf_counter() - t, 2), aggregate_cells=closed.cells,
                  activity_rows=closed.activity_rows)
    print(f"closed: {closed.cells} cells from {closed.activity_rows} rows in {result['close_s']}s", file=sys.stderr)
    engine.dispose()
    report = subprocess.run([sys.executable, "-m", "tools.bench.usage", "--report-only", "--database-url",
                             database_url, "--workdir", str(args.workdir)], capture_output=True, text=True, check=True)
    result.update(json.loads(report.stdout.strip().splitlines()[-1]))
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
