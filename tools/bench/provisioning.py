"""`make bench-provisioning`: rules over a synthetic academy, measured against raw floors.

In one run, on a fresh SQLite database:
- seed provisioning's view of the directory with N persons (default 1,000,000:
  55 % pupils, 38 % relatives, 7 % staff, ~800 persons a structure) and load a
  catalogue of 10 resources and 50 rules (not timed);
- the full evaluation: every grant computed and stored, with its history row
  and its event in the outbox (`full_eval_s`; `full_eval_cpu_s`, the CPU time
  of this process and its workers, the database server's apart);
- 100,000 directory change events (pupils changing class) published to
  RabbitMQ, then consumed by the provisioning consumer while a relay publishes
  the grant events it writes; `events_per_s` counts from the first event
  consumed to the last grant event confirmed. The floor: bare py-amqp
  consuming and acking the same number of messages. The consumer checks each
  event against its contract before applying it; that check alone, over the
  same events, is `validation_us_per_event` (and `validation_share`, its part
  of the stream's time);
- the complete GAR export (`gar_export_s`), then its XSD validation apart
  (`gar_validate_s`, when the XSD is found); the floor: bare lxml writing as
  many elements;
- with `--first-degree-share 0.5`, half the structures are écoles, their
  pupils with a level and their classes labelled as a first-degree export's
  are: the écoles' GAR feed is then written too (`gar_1d_export_s`) and
  validated against GAR-ENT-1D.xsd (`gar_1d_validate_s`, `gar_1d_valid`);
- the peak memory of the process tree.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from tools import SHARED

# The imports of Relais and of the phases are inside the functions: the full evaluation's worker processes
# (multiprocessing's spawn) import this module again as their main, and the peak memory measured would count
# them once in each worker, which `relais provisioning load` does not.

SUBJECTS = [f"{n:06d}" for n in range(30100, 30110)]
LEVELS = {"1001": "6", "1011": "5", "1021": "4", "1031": "3"}
# First degree: level code, label, as tools/synthetic_academy.py writes them.
LEVELS_1D = [("0011", "CP"), ("0012", "CE1"), ("0013", "CE2"), ("0021", "CM1"), ("0022", "CM2")]


def seed(conn, persons: int, rng: random.Random, first_degree_share: float = 0.0) -> dict[str, list]:
    """Write `persons` directory records into provisioning's view; returns what rules can name.

    The first `first_degree_share` of the structures are écoles: their pupils have a first-degree level,
    their classes labels, their teachers classes (no teaching of subjects)."""
    from relais.db import bulk_insert
    from services.provisioning.adapters import tables as t

    n_structures = max(1, persons // 800)
    structures = [(f"S{i}", f"{i:07d}X") for i in range(n_structures)]
    n_ecoles = round(n_structures * first_degree_share)
    ecole = {"district": "0000001C", "town": "COMMUNE", "sector": "PU", "rpi": None}
    bulk_insert(conn, t.structure.name, ("jointure", "uai", "data"),
                [(j, u, orjson.dumps({"jointure": j, "uai": u, "name": f"ECOLE {i}", "first_degree": ecole}
                                     if i < n_ecoles else {"jointure": j, "uai": u, "name": f"COLLEGE {i}"}))
                 for i, (j, u) in enumerate(structures)])
    bulk_insert(conn, t.reference.name, ("kind", "code", "label"),
                [("subject", s, f"MATIERE {s}") for s in SUBJECTS]
                + [("mef", f"{p}0001110", f"{lvl}EME") for p, lvl in LEVELS.items()])
    rows, pupils = [], []
    for n in range(persons):
        j = str(1_000_000 + n)
        s, _uai = structures[n % n_structures]
        kind = rng.random()
        rec: dict[str, Any]
        if n % n_structures < n_ecoles:
            rec = _first_degree_person(j, n, s, kind, rng)
        elif kind < 0.55:
            prefix = rng.choice(list(LEVELS))
            klass = f"{LEVELS[prefix]}{'ABCDEFG'[rng.randrange(7)]}"
            rec = {"jointure": j, "category": "Eleve", "profiles": ["National_ELV"], "mef": f"{prefix}0001110",
                   "last_name": f"NOM{n}", "first_name": "Eleve", "birth_date": "2013-01-01", "structure": s,
                   "memberships": [{"kind": "structure", "structure": s},
                                   {"kind": "class", "structure": s, "code": klass}]}
            pupils.append((j, s, klass))
        elif kind < 0.93:
            rec = {"jointure": j, "category": "PersRelEleve", "profiles": ["National_TUT"], "mef": None,
                   "last_name": f"NOM{n}", "first_name": "Parent", "structure": None, "memberships": []}
        else:
            klass = f"{rng.choice('6543')}{'ABCDEFG'[rng.randrange(7)]}"
            ms: list[dict[str, Any]] = [
                {"kind": "structure", "structure": s},
                {"kind": "teaching", "structure": s, "scope": "class", "code": klass, "subject": rng.choice(SUBJECTS)}]
            if rng.random() < 0.02:
                ms.append({"kind": "function", "structure": s, "code": "DIR", "label": "DIRECTION", "discipline": None})
            rec = {"jointure": j, "category": "PersEducNat", "profiles": ["National_ENS"], "mef": None,
                   "last_name": f"NOM{n}", "first_name": "Prof", "email": f"prof{n}@ac-bench.fr", "structure": s,
                   "memberships": ms}
        rows.append((j, rec["category"], orjson.dumps(rec)))
        if len(rows) >= 20000:
            bulk_insert(conn, t.person.name, ("jointure", "category", "data"), rows)
            rows = []
    bulk_insert(conn, t.person.name, ("jointure", "category", "data"), rows)
    return {"structures": structures, "pupils": pupils}


def _first_degree_person(j: str, n: int, s: str, kind: float, rng: random.Random) -> dict[str, Any]:
    """A pupil (50 %), a parent (46 %) or a teacher of an école, as a first-degree export's records are."""
    c = rng.randrange(len(LEVELS_1D))
    klass = {"kind": "class", "structure": s, "code": f"C{c}", "label": f"{LEVELS_1D[c][1]} A"}
    if kind < 0.5:
        code, label = LEVELS_1D[c]
        return {"jointure": j, "category": "Eleve", "profiles": ["National_ELV"], "mef": None,
                "last_name": f"NOM{n}", "first_name": "Eleve", "birth_date": "2018-01-01", "structure": s,
                "first_degree": {"level": {"code": code, "label": label}, "cycle": None, "class_type": "SIMPLE",
                                 "entry_date": None, "exit_date": None, "services": ["canteen"]},
                "memberships": [{"kind": "structure", "structure": s}, klass]}
    if kind < 0.96:
        return {"jointure": j, "category": "PersRelEleve", "profiles": ["National_TUT"], "mef": None,
                "last_name": f"NOM{n}", "first_name": "Parent", "structure": None, "memberships": []}
    ms: list[dict[str, Any]] = [{"kind": "structure", "structure": s}, klass]
    if rng.random() < 0.1:
        ms.append({"kind": "function", "structure": s, "code": "DIR", "label": "DIRECTION", "discipline": None})
    return {"jointure": j, "category": "PersEducNat", "profiles": ["National_ENS"], "mef": None,
            "last_name": f"NOM{n}", "first_name": "Prof", "email": f"prof{n}@ac-bench.fr", "structure": s,
            "memberships": ms}


def configuration(structures: list[tuple[str, str]], rng: random.Random) -> tuple[dict, dict]:
    """10 resources and 50 rules of the usual kinds."""
    resources = [
        {"id": f"ark:/49591/manuel-{lvl}", "title": f"Manuel {lvl}e", "publisher": "Bench", "licence": "per-user",
         "quota": 400, "profiles": ["National_ELV"], "levels": [p], "attributes": ["id", "classes"]}
        for p, lvl in LEVELS.items()
    ] + [
        {"id": "ark:/49591/dico", "title": "Dictionnaire", "publisher": "Bench", "licence": "unlimited"},
        {"id": "ark:/49591/atlas", "title": "Atlas", "publisher": "Bench", "licence": "unlimited"},
        {"id": "ark:/49591/presse", "title": "Presse", "publisher": "Bench", "licence": "unlimited"},
        {"id": "ark:/49591/labo", "title": "Labo", "publisher": "Bench", "licence": "per-structure",
         "quota": len(structures)},
        {"id": "ark:/49591/langues", "title": "Langues", "publisher": "Bench", "licence": "per-structure",
         "quota": len(structures) // 2 + 1},
        {"id": "ark:/49591/prof", "title": "Ressources enseignants", "publisher": "Bench", "licence": "unlimited",
         "profiles": ["National_ENS"]},
    ]
    rules = []
    for p, lvl in LEVELS.items():  # 4 level rules
        rules.append({"id": f"manuel-{lvl}", "resource": f"ark:/49591/manuel-{lvl}", "mefs": [p]})
    rules += [{"id": "dico", "resource": "ark:/49591/dico", "profiles": ["National_ELV", "National_ENS"]},
              {"id": "atlas", "resource": "ark:/49591/atlas", "mefs": ["1001", "1011"]},
              {"id": "presse", "resource": "ark:/49591/presse", "profiles": ["National_ENS"]},
              {"id": "prof", "resource": "ark:/49591/prof", "profiles": ["National_ENS"]}]
    for subject in SUBJECTS:  # 10 subject rules
        rules.append({"id": f"labo-{subject}", "resource": "ark:/49591/labo", "subjects": [subject]})
    while len(rules) < 50:  # class rules in chosen structures
        k = len(rules)
        chosen = rng.sample(structures, min(20, len(structures)))
        rules.append({"id": f"langues-{k}", "resource": "ark:/49591/langues", "structures": [u for _j, u in chosen],
                      "classes": [f"{rng.choice('6543')}{'ABCDEFG'[rng.randrange(7)]}"]})
    return {"resources": resources}, {"rules": rules, "grace_days": 30}


def floor_xml(path: Path, elements: int) -> float:
    """Bare lxml xmlfile writing `elements` small records; seconds."""
    from lxml import etree

    ns = "http://data.education.fr/ns/gar"
    t = time.perf_counter()
    with etree.xmlfile(str(path), encoding="UTF-8") as xf, xf.element(f"{{{ns}}}GAR-ENT-Eleve", nsmap={"men": ns}):
        for i in range(elements):
            e = etree.Element(f"{{{ns}}}GAREleve")
            etree.SubElement(e, f"{{{ns}}}GARPersonIdentifiant").text = str(i)
            etree.SubElement(e, f"{{{ns}}}GARPersonNom").text = f"NOM{i}"
            etree.SubElement(e, f"{{{ns}}}GARPersonEtab").text = "0000001X"
            xf.write(e)
    return time.perf_counter() - t


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/provisioning"))
    parser.add_argument("--database-url", default=None,
                        help="Run on this database (emptied first) instead of a fresh SQLite file in the workdir, "
                             "e.g. postgresql://postgres@127.0.0.1/relais_bench.")
    parser.add_argument("--first-degree-share", type=float, default=0.0,
                        help="share of the structures that are écoles (their GAR feed written and validated too)")
    parser.add_argument("--skip", action="append", default=[], choices=["stream", "gar"],
                        help="Leave a phase out (to measure the others; the JSON line then lacks its keys).")
    args = parser.parse_args(argv)

    from sqlalchemy import func, select

    from relais.bus.outbox import pending_count
    from relais.db import writer
    from services.provisioning.adapters import tables
    from services.provisioning.adapters.queries import store_config
    from services.provisioning.handlers.configuration import load_rules
    from services.provisioning.handlers.work import Context
    from tools.bench import fresh_engine
    from tools.bench.directory import PeakRss

    rng = random.Random(0)
    engine = fresh_engine(args.database_url, args.workdir)
    result: dict = {"persons": args.persons, "database": engine.dialect.name,
                    "first_degree_share": args.first_degree_share}
    with PeakRss() as rss:
        t = time.perf_counter()
        with writer(engine).begin() as conn:
            world = seed(conn, args.persons, rng, args.first_degree_share)
            catalogue_doc, rules_doc = configuration(world["structures"], rng)
            store_config(conn, "catalogue", catalogue_doc)
        with engine.connect() as conn:  # start the timed part with the write-ahead log folded in
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)" if engine.dialect.name == "sqlite" else "ANALYZE")
            conn.commit()
        print(f"seeded {args.persons} persons in {time.perf_counter() - t:.0f}s", file=sys.stderr)
        result["rules"] = len(rules_doc["rules"])

        # The full evaluation, as `relais provisioning load` runs it.
        t, cpu = time.perf_counter(), _cpu_s()
        work = Context("bench")
        with writer(engine).begin() as conn:
            load_rules(conn, rules_doc, work)
        result["full_eval_s"] = round(time.perf_counter() - t, 2)
        # CPU seconds of this process and its worker processes (not the database server's): on a shared
        # machine, steadier than the time it took.
        result["full_eval_cpu_s"] = round(_cpu_s() - cpu, 1)
        with engine.connect() as conn:
            result["grants"] = conn.execute(select(func.count()).select_from(tables.grant)).scalar_one()
            outbox_rows = pending_count(conn)
        result["refused"] = work.counts["refused"]
        print(f"full evaluation: {result['grants']} grants in {result['full_eval_s']}s "
              f"({outbox_rows} events in the outbox)", file=sys.stderr)
        with writer(engine).begin() as conn:  # the evaluation's events are not part of the stream below
            conn.exec_driver_sql("DELETE FROM relais_outbox")

        # The stream of directory changes through RabbitMQ.
        if "stream" not in args.skip:
            stream(args, engine, world, rng, result)
        if "gar" not in args.skip:
            gar(args, engine, result)
    result["peak_rss_mb"] = round(rss.peak / 2**20)
    print(json.dumps(result))
    return 0


def _cpu_s() -> float:
    """CPU seconds of this process (every thread) and of its children ended so far."""
    import resource

    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def stream(args, engine, world, rng, result) -> None:
    """Pupils changing class, through RabbitMQ, into the consumer, out through the relay."""
    from relais.bus.envelope import Event
    from relais.bus.outbox import OutboxRelay, pending_count
    from relais.bus.publisher import ConfirmedPublisher, OutgoingMessage
    from relais.runtime.runner import event_consumer
    from services.provisioning.process import CONSUMER, consumer
    from tools.bench import consumer_vhost, floor_consume

    with consumer_vhost(CONSUMER) as uri:
        moves = rng.sample(world["pupils"], min(args.events, len(world["pupils"])))
        bodies = []
        for j, s, klass in moves:
            new = f"{klass[0]}{'ABCDEFG'[('ABCDEFG'.index(klass[1]) + 1) % 7]}"
            bodies.append(Event(type="directory.membership.changed", source="relais.directory", tenant="bench",
                                correlation_id="bench", payload={
                                    "jointure": j, "category": "Eleve",
                                    "added": [{"kind": "class", "structure": s, "code": new}],
                                    "removed": [{"kind": "class", "structure": s, "code": klass}]}).to_json())
        with ConfirmedPublisher(uri) as pub:
            pub.publish(OutgoingMessage("directory.membership.changed", b, f"e{i}", "directory.membership.changed")
                        for i, b in enumerate(bodies))
        with ConfirmedPublisher(uri, exchange="") as pub:
            pub.publish(OutgoingMessage("bench.floor", b, f"f{i}", "x") for i, b in enumerate(bodies))
        result["events"] = len(bodies)
        floor_rate = len(bodies) / floor_consume(uri, "bench.floor", len(bodies))

        stop = threading.Event()
        relayed = [0]

        def relay() -> None:
            r = OutboxRelay(engine, lambda: ConfirmedPublisher(uri))
            while not stop.is_set():
                relayed[0] += r.drain() or 0
                stop.wait(0.2)
            relayed[0] += r.drain()
            r.close()

        relayer = threading.Thread(target=relay, daemon=True)
        t = time.perf_counter()
        relayer.start()
        # The consumer as `relais serve provisioning` runs it (relais.runtime.runner: its batches), bounded here.
        service = consumer("bench")
        consumed = event_consumer(service, engine).run(uri, max_messages=len(bodies), idle_timeout=30,
                                                       batch_size=service.batch_size, prefetch=2 * service.batch_size)
        stop.set()
        relayer.join()
        stream_s = time.perf_counter() - t
    with engine.connect() as conn:
        left = pending_count(conn)
    validation_s = contract_check(bodies)
    result.update(validation_us_per_event=round(validation_s / len(bodies) * 1e6, 1),
                  validation_share=round(validation_s / stream_s, 4))
    result.update(events_consumed=consumed, grant_events_published=relayed[0], events_left_in_outbox=left,
                  events_s=round(stream_s, 2), events_per_s=round(consumed / stream_s),
                  floor_consume_per_s=round(floor_rate), events_ratio=round(consumed / stream_s / floor_rate, 3))
    print(f"stream: {consumed} events in {stream_s:.1f}s, {relayed[0]} grant events published", file=sys.stderr)


def contract_check(bodies: list[bytes]) -> float:
    """Seconds the consumer's contract check takes over these events, as it runs it (decoded, then checked
    against the schema of their type, compiled once: the first call compiles it, outside the timing)."""
    from relais.bus import contracts
    from relais.bus.envelope import loads

    events = [loads(b) for b in bodies]
    assert contracts.refusal(events[0]) is None
    t = time.perf_counter()
    refused = sum(contracts.refusal(e) is not None for e in events)
    elapsed = time.perf_counter() - t
    assert refused == 0, f"{refused} of the bench's events break their contract"
    return elapsed


def gar(args, engine, result) -> None:
    """The complete GAR feed of the academy, against bare lxml writing as many elements."""
    from services.provisioning.feeds.gar import export, validate

    out = args.workdir / "gar"
    t = time.perf_counter()
    with engine.connect() as conn:
        report = export(conn, out, "BENCH", datetime.now(UTC))
    result["gar_export_s"] = round(time.perf_counter() - t, 2)
    elements = sum(report.elements.values())
    result["gar_records"] = sum(report.records.values())  # pupils, staff, structures, groups, managers
    result["gar_elements"] = elements
    result["gar_floor_s"] = round(floor_xml(args.workdir / "floor.xml", elements), 2)
    xsd = Path(os.environ.get("RELAIS_GAR_XSD", SHARED / "schemas" / "gar" / "GAR-ENT.xsd"))
    if xsd.is_file():
        t = time.perf_counter()
        problems = validate(report.files, xsd)
        result["gar_validate_s"] = round(time.perf_counter() - t, 2)
        result["gar_valid"] = not problems
    if args.first_degree_share:
        gar_1d(args, engine, result)


def gar_1d(args, engine, result) -> None:
    """The écoles' GAR feed, written and validated against GAR-ENT-1D.xsd (target: both in < 60 s at 1M mixed)."""
    from services.provisioning.feeds.gar import validate
    from services.provisioning.feeds.gar_1d import export_1d

    out = args.workdir / "gar"
    t = time.perf_counter()
    with engine.connect() as conn:
        report = export_1d(conn, out, "BENCH", datetime.now(UTC))
    result["gar_1d_export_s"] = round(time.perf_counter() - t, 2)
    result["gar_1d_records"] = sum(report.records.values())
    result["gar_1d_elements"] = sum(report.elements.values())
    result["gar_1d_pupils"] = report.records.get("Eleve", 0)
    xsd = Path(os.environ.get("RELAIS_GAR_XSD_1D", SHARED / "schemas" / "gar" / "GAR-ENT-1D.xsd"))
    if xsd.is_file():
        t = time.perf_counter()
        problems = validate(report.files, xsd)
        result["gar_1d_validate_s"] = round(time.perf_counter() - t, 2)
        result["gar_1d_valid"] = not problems
        result["gar_1d_total_s"] = round(result["gar_1d_export_s"] + result["gar_1d_validate_s"], 2)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
