"""Two provisioning transactions at once on PostgreSQL (`adapters/write_locks.py`), made to overlap on purpose.

The first transaction writes and stays open; the second starts in another thread; the first
commits only once the second has finished or is waiting for a lock. Without the locks, the
second decides on what it reads before the first commits: it gives the seats the first gave
(a quota exceeded, issue 17), or a grant from a rule the first just removed.
"""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import select, text

from relais.db import writer
from services.provisioning.adapters import tables as pt
from services.provisioning.adapters.queries import store_config
from services.provisioning.handlers.configuration import load_rules
from services.provisioning.handlers.reconcile import reconcile
from services.provisioning.handlers.work import Context
from tests import aaf_builder as aaf
from tests.provisioning.test_grants import World

SCHOOLS = {"S1": "0750001A", "S2": "0750002B"}
LIMITED = "ark:/49591/limited"
WAIT_S = 30  # the longest the test waits for the second transaction to block or finish (a bound, not a measure)


@pytest.fixture
def world(pg_engine, tmp_path):
    """Two schools, three pupils in each, known to provisioning; no rule yet, so no grant."""
    w = World(pg_engine, tmp_path)
    w.directory(*(aaf.school(s, uai) for s, uai in SCHOOLS.items()), kind="Complet", family="EtabEducNat")
    w.directory(*(aaf.pupil(f"{s}-{i}", structure=s, klass="6A") for s in SCHOOLS for i in range(3)),
                kind="Complet")
    return w


def overlapping(engine, first, second) -> None:
    """Run `first(conn)` and leave its transaction open while `second(conn)` runs in another; then commit both."""
    failures: list[BaseException] = []
    pids: list[int] = []

    def run_second() -> None:
        try:
            with writer(engine).begin() as conn:
                pids.append(conn.execute(text("SELECT pg_backend_pid()")).scalar_one())
                second(conn)
        except BaseException as exc:  # noqa: BLE001 - raised in the test's thread
            failures.append(exc)

    with writer(engine).begin() as conn:
        first(conn)
        thread = threading.Thread(target=run_second)
        thread.start()
        deadline = time.monotonic() + WAIT_S
        while thread.is_alive() and not waiting_for_a_lock(engine, pids) and time.monotonic() < deadline:
            time.sleep(0.02)
    thread.join(WAIT_S)
    assert not thread.is_alive() and not failures, failures


def waiting_for_a_lock(engine, pids: list[int]) -> bool:
    """Whether the second transaction's connection waits for a lock (another test's may, on this server)."""
    if not pids:
        return False
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_locks WHERE NOT granted AND pid = :pid"),
                                 {"pid": pids[0]}).scalar())


def held(engine, resource: str) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return sorted(conn.execute(select(pt.grant.c.person, pt.grant.c.structure)
                                   .where(pt.grant.c.resource == resource)).all())


def configure(world, licence: dict, rules: list[dict]) -> None:
    """Store the catalogue and the rules as they are, without evaluating anyone: the test's reconciles will."""
    resource = {"id": LIMITED, "title": "Limited", "publisher": "A", **licence}
    with writer(world.engine).begin() as conn:
        store_config(conn, "catalogue", {"resources": [resource]})
        store_config(conn, "rules", {"rules": rules})


def pupils(school: str) -> list[str]:
    return [f"{school}-{i}" for i in range(3)]


@pytest.mark.parametrize("licence, second_school", [
    ({"licence": "per-user", "quota": 2}, "S1"),  # 2 seats in S1: both transactions give seats there
    ({"licence": "per-structure", "quota": 1}, "S2"),  # 1 school: each transaction gives it to its own
])
def test_two_transactions_never_give_the_same_seats(world, licence, second_school):
    configure(world, licence, [{"id": "pupils", "resource": LIMITED, "profiles": ["National_ELV"]}])
    first = pupils("S1")[:2]
    second = pupils(second_school)[2:] if second_school == "S1" else pupils(second_school)
    overlapping(world.engine, lambda conn: reconcile(conn, first, Context("test")),
                lambda conn: reconcile(conn, second, Context("test")))
    assert held(world.engine, LIMITED) == [(p, SCHOOLS["S1"]) for p in first]  # the second found them taken
    with world.engine.connect() as conn:
        refused = {p for (p,) in conn.execute(select(pt.refusal.c.person))}
    assert refused == set(second)


def test_a_rule_removed_while_a_reconcile_runs_leaves_no_grant_of_it(world):
    rule = {"id": "pupils", "resource": LIMITED, "profiles": ["National_ELV"]}
    configure(world, {"licence": "unlimited"}, [rule])
    everyone = pupils("S1") + pupils("S2")
    overlapping(world.engine, lambda conn: reconcile(conn, everyone, Context("test")),
                lambda conn: load_rules(conn, {"rules": []}, Context("test")))
    assert held(world.engine, LIMITED) == []  # the load waited, then took back what the reconcile gave
