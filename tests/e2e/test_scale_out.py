"""Scale-out, shown: two `relais serve provisioning` processes on one broker vhost and one PostgreSQL database.

The directory runs apart (its own SQLite database, as a directory service on
another host would) and publishes thousands of events. Both instances take a
share; every event's effect (the processed-event mark, the grant, its history
line) exists exactly once; nothing is lost, including when one instance is
killed with SIGKILL while it holds unacknowledged messages, which RabbitMQ
then redelivers to the other.
"""

from __future__ import annotations

import time
from collections import Counter

import pytest
from sqlalchemy import func, select

from relais.bus.contracts import subscriptions
from relais.bus.outbox import OutboxRelay, read_events
from relais.bus.publisher import ConfirmedPublisher
from relais.bus.tables import processed_events
from relais.db import make_engine, upgrade, writer
from relais.runtime.status import queues_from_amqp
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from services.provisioning.adapters import tables as pt
from services.provisioning.handlers.configuration import load_catalogue, load_rules
from services.provisioning.handlers.work import Context as Work
from tests import aaf_builder as aaf
from tests.ops_helpers import Service

UAI = "0750001A"
RESOURCE = "ark:/49591/dico"
FIRST, SECOND = 1500, 1500  # pupils per wave; one event each, plus the structure's
QUEUE = "relais.q.provisioning"


class Directory:
    """The directory apart: imports into its own database, then publishes what it wrote."""

    def __init__(self, tmp_path, amqp_uri):
        self.tmp, self.amqp_uri, self.n = tmp_path, amqp_uri, 0
        self.engine = make_engine(f"sqlite:///{tmp_path / 'directory.db'}")
        upgrade(self.engine)

    def publish(self, *records, family="Eleve", kind="Delta") -> int:
        """Import, publish with confirms; returns how many events provisioning will receive."""
        self.n += 1
        path = aaf.write(self.tmp, f"P_{kind}_202609{self.n:02d}_{family}_0000.xml", *records)
        report = DirectoryImporter(self.engine, "test", ImportOptions()).run([path])
        assert report.ok, report.to_dict()
        with self.engine.connect() as conn:
            types = Counter(e["type"] for e in read_events(conn))  # rows hold up to a thousand events
        relay = OutboxRelay(self.engine, lambda: ConfirmedPublisher(self.amqp_uri))
        try:
            assert relay.drain() == sum(types.values())
        finally:
            relay.close()
        received = subscriptions()["provisioning"]  # the event types provisioning's queue receives
        return sum(n for t, n in types.items() if t in received)


def processed(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(processed_events)
                            .where(processed_events.c.consumer == "provisioning")).scalar_one()


def wait_processed(engine, expected: int, timeout: float = 60.0) -> int:
    deadline = time.monotonic() + timeout
    while (n := processed(engine)) < expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return n


def handled(svc: Service, outcome: str = "handled") -> float:
    return svc.metric("relais_messages_total", consumer="provisioning", outcome=outcome)


def pupils(start: int, count: int) -> list[str]:
    return [aaf.pupil(f"P{i:05d}", structure="S1", klass="6A") for i in range(start, start + count)]


@pytest.mark.slow
def test_two_instances_share_the_work_and_a_killed_one_loses_nothing(pg_engine, amqp_uri, tmp_path):
    env = {"RELAIS_DATABASE_URL": pg_engine.url.render_as_string(hide_password=False), "RELAIS_AMQP_URI": amqp_uri,
           "RELAIS_TENANT": "test", "RELAIS_DATA_DIR": str(tmp_path / "var")}
    a = Service("provisioning", env, tmp_path / "a.log")
    b = Service("provisioning", env, tmp_path / "b.log")
    try:
        for svc in (a, b):
            svc.wait_alive().wait_ready()
        for _ in range(200):  # both consumers attached to the queue
            if (queues_from_amqp(amqp_uri, [QUEUE])[QUEUE].consumers or 0) == 2:
                break
            time.sleep(0.1)
        else:
            pytest.fail(f"two consumers never attached:\n{a.logs()}\n{b.logs()}")

        # 1. The work is shared, each event handled once.
        directory = Directory(tmp_path, amqp_uri)
        expected = directory.publish(aaf.school("S1", UAI), family="EtabEducNat", kind="Complet")
        assert wait_processed(pg_engine, expected) == expected
        with writer(pg_engine).begin() as conn:  # rules name structures provisioning knows: now it does
            work = Work("test")
            load_catalogue(conn, {"resources": [{"id": RESOURCE, "title": "Dictionnaire", "publisher": "C",
                                                 "licence": "unlimited"}]}, work)
            load_rules(conn, {"rules": [{"id": "pupils", "resource": RESOURCE, "structures": [UAI],
                                         "profiles": ["National_ELV"]}]}, work)
        expected += directory.publish(*pupils(0, FIRST))
        assert expected >= FIRST
        assert wait_processed(pg_engine, expected) == expected
        by_a, by_b = handled(a), handled(b)
        assert by_a > 0 and by_b > 0, (by_a, by_b)  # both took a share
        assert by_a + by_b == expected  # and no event was handled twice
        assert handled(a, "duplicate") + handled(b, "duplicate") == 0

        # 2. One instance dies mid-way (SIGKILL): what it held goes to the other, nothing twice, nothing lost.
        before = processed(pg_engine)
        expected += directory.publish(*pupils(FIRST, SECOND))
        while processed(pg_engine) < before + SECOND // 6:
            time.sleep(0.02)
        a.kill()
        at_kill = processed(pg_engine)
        assert at_kill < expected, "the second wave was over before the kill: nothing shown"
        assert wait_processed(pg_engine, expected) == expected, b.logs()[-3000:]
        assert handled(b) > by_b  # the survivor went on
        assert b.metric("relais_messages_redelivered_total", consumer="provisioning") > 0  # A's unacked ones
        assert processed(pg_engine) == expected  # nothing handled twice (duplicates were recognised, not redone)

        with pg_engine.connect() as conn:
            grants = Counter(p for (p,) in conn.execute(
                select(pt.grant.c.person).where(pt.grant.c.resource == RESOURCE)))
            history = Counter(p for (p,) in conn.execute(
                select(pt.history.c.person).where(pt.history.c.resource == RESOURCE, pt.history.c.action == "granted")))
        everyone = {f"P{i:05d}" for i in range(FIRST + SECOND)}
        assert set(grants) == everyone and set(grants.values()) == {1}  # nothing lost, nothing twice
        assert set(history) == everyone and set(history.values()) == {1}
    finally:
        for svc in (a, b):
            if svc.proc.poll() is None:
                svc.stop()
