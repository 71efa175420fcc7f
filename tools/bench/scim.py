"""`make bench-scim`: SCIM list requests with a filter over 100,000 users, measured against the raw SQL floor.

In one run:
- seed provisioning's view of the directory with N persons (default 100,000; the provisioning
  benchmark's synthetic academy: pupils, relatives, staff with an email), grant them all one
  resource whose catalogue entry lets its app receive names and emails, and register that app
  (not timed), on a fresh SQLite file in the workdir or, with `--database-url`, a PostgreSQL
  database (emptied first);
- timed: GET /scim/v2/Users?filter=... through the WSGI application in-process (werkzeug's test
  client: plain WSGI calls, no HTTP server, the bearer token checked on each request), each
  filter `--requests` times; `ms` is the median per filter, `worst_ms` the slowest median (the
  target is < 200 ms). Each answer is checked against what the floor finds (same total, same ids);
- the floor, in the same run on the same data: one SQL statement per filter run directly on a
  connection (the entitled users whose attributes match, counted over the window and paged as
  the API pages: the least any server must do, without building SCIM resources or JSON);
  `floor_ms` per filter, `ratio` = worst_ms / its floor.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

RESOURCE = "ark:/49591/bench-scim"
ATTRIBUTES = ["id", "first_name", "last_name", "email", "profiles"]

# (name, SCIM filter, floor's condition on SQLite, on PostgreSQL): `d` is the person's record as text
# (SQLite) or json (PostgreSQL); the conditions say what the filter means for a directory user.
FILTERS = [
    ("familyName_sw", 'name.familyName sw "NOM4242"',
     "lower(json_extract(d, '$.last_name')) LIKE 'nom4242%'", "lower(d ->> 'last_name') LIKE 'nom4242%'"),
    ("givenName_eq_and_familyName_co", 'name.givenName eq "prof" and name.familyName co "999"',
     "lower(json_extract(d, '$.first_name')) = 'prof' AND instr(lower(json_extract(d, '$.last_name')), '999') > 0",
     "lower(d ->> 'first_name') = 'prof' AND strpos(lower(d ->> 'last_name'), '999') > 0"),
    ("emails_co_or_userName_eq", 'emails co "prof777" or userName eq "1000042"',
     "instr(lower(json_extract(d, '$.email')), 'prof777') > 0 OR jointure = '1000042'",
     "strpos(lower(d ->> 'email'), 'prof777') > 0 OR jointure = '1000042'"),
]
COUNT = 100  # the page asked for (the API's default is its maximum, 200)


def seed(engine, persons: int) -> str:
    """The academy, one grant per person, the catalogue and the app; returns the app's secret."""
    from relais.db import bulk_insert, writer
    from services.provisioning.adapters import tables as t
    from services.provisioning.adapters.queries import store_config
    from services.provisioning.api import apps
    from tools.bench.provisioning import seed as seed_persons

    rng = random.Random(0)
    now = datetime.now(UTC)
    with writer(engine).begin() as conn:
        world = seed_persons(conn, persons, rng)
        uai_of = dict(world["structures"])
        store_config(conn, "catalogue", {"resources": [
            {"id": RESOURCE, "title": "Bench SCIM", "publisher": "Bench", "licence": "unlimited",
             "attributes": ATTRIBUTES}]})
        rows = []
        for n in range(persons):
            structure = world["structures"][n % len(world["structures"])][0]
            rows.append((str(1_000_000 + n), RESOURCE, uai_of[structure], "rule:bench", now))
            if len(rows) >= 20000:
                bulk_insert(conn, t.grant.name, ("person", "resource", "structure", "cause", "granted_at"), rows)
                rows = []
        bulk_insert(conn, t.grant.name, ("person", "resource", "structure", "cause", "granted_at"), rows)
        secret = apps.add_app(conn, "bench-scim", [RESOURCE], scopes=["scim"])[1]
    with engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)" if engine.dialect.name == "sqlite" else "ANALYZE")
        conn.commit()
    return secret


def floor_sql(dialect: str, condition: str) -> str:
    doc = "CAST(p.data AS TEXT)" if dialect == "sqlite" else "convert_from(p.data, 'UTF8')::json"
    return (f"SELECT jointure, data, count(*) OVER () AS total FROM ("
            f"SELECT p.jointure, p.data, {doc} AS d FROM prov_person p WHERE EXISTS ("
            f"SELECT 1 FROM prov_grant g WHERE g.person = p.jointure AND g.resource = '{RESOURCE}')) x "
            f"WHERE {condition} ORDER BY jointure LIMIT {COUNT}")


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=10, help="timed requests per filter (the median counts)")
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/scim"))
    parser.add_argument("--database-url", default=None,
                        help="Run on this database (emptied first) instead of a fresh SQLite file in the workdir, "
                             "e.g. postgresql://postgres@127.0.0.1/relais_bench.")
    args = parser.parse_args(argv)

    from sqlalchemy import text
    from werkzeug.test import Client

    from services.provisioning.api import wsgi
    from tools.bench import fresh_engine

    engine = fresh_engine(args.database_url, args.workdir)
    where = engine.url.render_as_string(hide_password=True)
    print(f"database: {engine.dialect.name} ({where})", file=sys.stderr)
    t = time.perf_counter()
    secret = seed(engine, args.users)
    print(f"seeded {args.users} users in {time.perf_counter() - t:.0f}s", file=sys.stderr)

    client = Client(wsgi.make_app(engine))
    resp = client.post("/oauth/token", data={"grant_type": "client_credentials", "scope": "scim"},
                       auth=("bench-scim", secret))
    assert resp.status_code == 200, resp.get_data(as_text=True)
    headers = {"Authorization": f"Bearer {resp.get_json()['access_token']}"}

    result: dict[str, Any] = {"users": args.users, "database": engine.dialect.name, "requests": args.requests,
                              "in_process": True, "count": COUNT, "filters": {}}
    for name, scim_filter, on_sqlite, on_pg in FILTERS:
        sql = text(floor_sql(engine.dialect.name, on_sqlite if engine.dialect.name == "sqlite" else on_pg))
        floors, times = [], []
        expected: tuple[int, list[str]] = (0, [])
        for _ in range(args.requests):  # floor and API alternate, so machine noise falls on both
            with engine.connect() as conn:
                t = time.perf_counter()
                rows = conn.execute(sql).all()
                floors.append(time.perf_counter() - t)
            expected = (rows[0].total if rows else 0, [r.jointure for r in rows])
            t = time.perf_counter()
            resp = client.get("/scim/v2/Users", query_string={"filter": scim_filter, "count": COUNT},
                              headers=headers)
            times.append(time.perf_counter() - t)
            assert resp.status_code == 200, resp.get_data(as_text=True)
            body = resp.get_json()
            got = (body["totalResults"], [u["id"] for u in body["Resources"]])
            assert got == expected, f"{name}: the API answered {got[0]} users, the floor {expected[0]}"
        ms, floor_ms = statistics.median(times) * 1000, statistics.median(floors) * 1000
        result["filters"][name] = {"filter": scim_filter, "matches": expected[0], "ms": round(ms, 1),
                                   "floor_ms": round(floor_ms, 1)}
        print(f"{name}: {expected[0]} matches, {ms:.1f} ms per request (floor {floor_ms:.1f} ms)", file=sys.stderr)
    worst = max(result["filters"].values(), key=lambda f: f["ms"])
    result["worst_ms"] = worst["ms"]
    result["ratio"] = round(worst["ms"] / worst["floor_ms"], 2) if worst["floor_ms"] else None
    result["target_ms"] = 200
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
