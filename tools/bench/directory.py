"""`make bench-directory`: the directory import measured against its raw floors.

In one run, on one synthetic academy (tools/synthetic_academy.py):
- the parse floor: bare `lxml.etree.iterparse` over the same files, extracting
  each record's attributes into a dict, one process;
- the full import (parse, validate, store, diff, outbox) on a fresh SQLite
  database (or the one `--database-url` names, emptied first), with the peak
  memory of the whole process tree sampled;
- the same import again, unchanged: it must write and publish nothing;
- with `--first-degree-share 0.5`, a mixed academy: half its persons in écoles
  (a first-degree export beside the second-degree one, in one run), the line
  then saying how many écoles, first-degree persons and pupils it held;
- the publish floor: bare pika, pipelined confirms, the same event bodies to the
  same exchange and queue; then our relay publishing every event of the import,
  both as rates and as CPU seconds of this process per 100,000 events.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import threading
import time
import urllib.request
import uuid
from base64 import b64encode
from pathlib import Path

import amqp
import pika
import psutil
from lxml import etree

from relais.bus.outbox import OutboxRelay, unpack
from relais.bus.publisher import ConfirmedPublisher
from relais.bus.topology import EVENTS_EXCHANGE, UNROUTED_QUEUE, declare_events_exchange
from relais.config import parse_amqp_uri
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from tools.bench import fresh_engine
from tools.synthetic_academy import generate_academy


def floor_parse(paths: list[Path]) -> tuple[int, float]:
    """Bare iterparse with per-record attribute extraction; (records, seconds)."""
    start, n = time.perf_counter(), 0
    for path in paths:
        for _event, el in etree.iterparse(str(path), events=("end",),
                                          tag=("addRequest", "modifyRequest", "deleteRequest"),
                                          resolve_entities=False, load_dtd=False, no_network=True):
            record = {"id": el.findtext("identifier/id")}
            for attr in el.find("attributes"):
                record[attr.get("name")] = [v.text for v in attr]
            n += 1
            el.clear(keep_tail=True)
            while el.getprevious() is not None:
                del el.getparent()[0]
    return n, time.perf_counter() - start


def floor_publish(amqp_uri: str, bodies: list[tuple[str, str, bytes]], window: int) -> float:
    """Bare pika, pipelined confirms, persistent messages to relais.events: messages per second."""
    p = parse_amqp_uri(amqp_uri)
    st = {"sent": 0, "acked": 0}
    clock = {"t0": 0.0, "t1": 0.0}
    n = len(bodies)

    def pump(ch):
        while st["sent"] < n and st["sent"] - st["acked"] < window:
            eid, typ, body = bodies[st["sent"]]
            ch.basic_publish(EVENTS_EXCHANGE, typ, body, pika.BasicProperties(
                content_type="application/json", content_encoding="utf-8", delivery_mode=2, message_id=eid, type=typ))
            st["sent"] += 1

    def on_confirm(frame, ch):
        m = frame.method
        st["acked"] = m.delivery_tag if m.multiple else st["acked"] + 1
        if st["acked"] >= n:
            clock["t1"] = time.perf_counter()
            conn.ioloop.stop()
        else:
            pump(ch)

    def start(ch):
        clock["t0"] = time.perf_counter()
        pump(ch)

    def on_channel(ch):
        # Publish only once confirm mode is on (Confirm.SelectOk), as our publisher does.
        ch.confirm_delivery(lambda f: on_confirm(f, ch), callback=lambda _frame: start(ch))

    conn = pika.SelectConnection(
        pika.ConnectionParameters(host=p.host, port=p.port, virtual_host=p.virtual_host,
                                  credentials=pika.PlainCredentials(p.userid, p.password)),
        on_open_callback=lambda c: c.channel(on_open_callback=on_channel),
        on_close_callback=lambda c, _reason: c.ioloop.stop())
    conn.ioloop.start()
    conn.close()
    conn.ioloop.start()
    return n / (clock["t1"] - clock["t0"])


def outbox_sample(engine, limit: int) -> list[tuple[str, str, bytes]]:
    """(event id, type, JSON body) of the oldest `limit` events in the outbox, packed rows unpacked."""
    sample: list[tuple[str, str, bytes]] = []
    with engine.connect() as conn:
        for row in conn.exec_driver_sql("SELECT seq, event_id, type, body, events FROM relais_outbox ORDER BY seq"):
            sample.extend((m.message_id, m.type, m.body) for m in unpack(*row))
            if len(sample) >= limit:
                break
    return sample[:limit]


class PeakRss:
    """Samples the resident memory of this process and its children, summed."""

    def __init__(self, interval: float = 0.2):
        self.interval, self.peak, self._stop = interval, 0, threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        me = psutil.Process()
        while not self._stop.is_set():
            total = 0
            for proc in [me, *me.children(recursive=True)]:
                try:
                    total += proc.memory_info().rss
                except psutil.Error:
                    pass
            self.peak = max(self.peak, total)
            self._stop.wait(self.interval)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def _management(method: str, path: str, body: dict | None = None) -> None:
    api = os.environ.get("RELAIS_BENCH_RABBITMQ_API", "http://127.0.0.1:15672")
    req = urllib.request.Request(api + path, method=method, data=json.dumps(body or {}).encode())
    req.add_header("Authorization", "Basic " + b64encode(b"guest:guest").decode())
    req.add_header("content-type", "application/json")
    urllib.request.urlopen(req, timeout=10).read()


def _purge(amqp_uri: str) -> None:
    conn = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs())
    conn.connect()
    ch = declare_events_exchange(conn.channel())
    ch.queue_purge(UNROUTED_QUEUE)
    conn.close()


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--workdir", type=Path, default=Path("bench-data"))
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=ImportOptions.batch_size)
    parser.add_argument("--database-url", default=None,
                        help="Import into this database (emptied first) instead of a fresh SQLite file in the workdir, "
                             "e.g. postgresql://postgres@127.0.0.1/relais_bench.")
    parser.add_argument("--first-degree-share", type=float, default=0.0,
                        help="share of the persons in écoles (a mixed export), e.g. 0.5")
    parser.add_argument("--publish-floor-sample", type=int, default=100_000,
                        help="events the bare-pika floor publishes (a sample of the import's)")
    args = parser.parse_args(argv)

    mixed = f"-1d{args.first_degree_share:g}" if args.first_degree_share else ""
    academy = args.workdir / f"academy-{args.persons}{mixed}"
    marker = academy / "summary.json"
    if marker.exists():
        summary = json.loads(marker.read_text())
        print(f"reusing the synthetic academy in {academy}", file=sys.stderr)
    else:
        shutil.rmtree(academy, ignore_errors=True)
        t = time.perf_counter()
        summary = generate_academy(academy, args.persons, first_degree_share=args.first_degree_share)
        marker.write_text(json.dumps(summary))
        print(f"generated {summary['persons']} persons in {time.perf_counter() - t:.0f}s into {academy}",
              file=sys.stderr)
    files = [Path(f) for f in summary["files"]]

    records, floor_s = floor_parse(files)
    print(f"parse floor: {records} records in {floor_s:.1f}s ({records / floor_s:.0f}/s)", file=sys.stderr)

    engine = fresh_engine(args.database_url, args.workdir / "db")
    importer = DirectoryImporter(engine, "bench", ImportOptions(workers=args.workers, batch_size=args.batch_size))
    with PeakRss() as rss:
        t = time.perf_counter()
        first = importer.run([academy])
        import_s = time.perf_counter() - t
    print(f"import: {first.status} in {import_s:.1f}s, {first.events} events, peak {rss.peak / 2**20:.0f} MB",
          file=sys.stderr)
    t = time.perf_counter()
    again = importer.run([academy])
    noop_s = time.perf_counter() - t
    changed = sum(c.added + c.updated + c.deleted for c in again.totals.values())
    print(f"re-import: {noop_s:.1f}s, {changed} records changed, {again.events - 1} change events", file=sys.stderr)

    vhost = f"relais_bench_{uuid.uuid4().hex[:8]}"
    _management("PUT", f"/api/vhosts/{vhost}")
    _management("PUT", f"/api/permissions/{vhost}/guest", {"configure": ".*", "write": ".*", "read": ".*"})
    base = os.environ.get("RELAIS_BENCH_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")
    uri = f"{base}/{vhost}"
    try:
        _purge(uri)  # declares the topology the relay uses
        sample = outbox_sample(engine, args.publish_floor_sample)
        cpu = time.process_time()
        publish_floor = floor_publish(uri, sample, ConfirmedPublisher.DEFAULT_WINDOW)
        floor_cpu = time.process_time() - cpu
        _purge(uri)
        # Routed as the floor's messages are (to relais.unrouted): no subscriber queues declared.
        relay = OutboxRelay(engine, lambda: ConfirmedPublisher(uri, subscribers=()))
        t, cpu = time.perf_counter(), time.process_time()
        published = relay.drain()
        publish_s, publish_cpu = time.perf_counter() - t, time.process_time() - cpu
        relay.close()
    finally:
        _management("DELETE", f"/api/vhosts/{vhost}")
    print(f"publish: {published} events in {publish_s:.1f}s; bare pika floor {publish_floor:.0f}/s", file=sys.stderr)

    persons = summary["persons"]
    one = summary.get("first_degree") or {"persons": 0, "ecoles": 0, "counts": {}}
    result = {
        "persons": persons,
        "first_degree_share": args.first_degree_share,
        "first_degree_persons": one["persons"],
        "ecoles": one["ecoles"],
        "first_degree_pupils": one["counts"].get("Eleve", 0),
        "first_degree_imported": first.status == "completed" and not first.rejected,
        "database": engine.dialect.name,
        "records": records,
        "workers": args.workers,
        "import_s": round(import_s, 2),
        "persons_per_s": round(persons / import_s),
        "records_per_s": round(records / import_s),
        "floor_s": round(floor_s, 2),
        "floor_per_s": round(records / floor_s),
        "ratio": round(floor_s / import_s, 3),
        "peak_rss_mb": round(rss.peak / 2**20),
        "noop_reimport_s": round(noop_s, 2),
        "noop_vs_import": round(noop_s / import_s, 3),
        "noop_changes": changed,
        "noop_events_published": again.events - 1,  # only its own directory.import.completed
        "events_published": published,
        "publish_s": round(publish_s, 2),
        "publish_per_s": round(published / publish_s),
        "publish_floor_per_s": round(publish_floor),
        "publish_ratio": round(published / publish_s / publish_floor, 3),
        # CPU seconds of this process (every thread) per 100,000 events: less noisy than rates on a shared machine.
        "publish_cpu_s_per_100k": round(publish_cpu * 100_000 / max(published, 1), 2),
        "publish_floor_cpu_s_per_100k": round(floor_cpu * 100_000 / max(len(sample), 1), 2),
        # The outbox commits with the import's one transaction, so relaying starts after it:
        # from files to every event confirmed by RabbitMQ takes both.
        "end_to_end_s": round(import_s + publish_s, 2),
        "end_to_end_ratio": round(floor_s / (import_s + publish_s), 3),
        "import_status": first.status,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
