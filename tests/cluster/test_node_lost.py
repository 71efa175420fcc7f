"""A RabbitMQ cluster loses a node mid-import: every event arrives once in effect, publishing resumes on its own.

Three nodes (`rabbit_cluster`), quorum queues (RELAIS_QUEUE_TYPE=quorum), and RELAIS_AMQP_URI listing
the three nodes with node 1 first, so every client connects to it. The directory imports waves of
pupils (its own SQLite database) and its outbox relay publishes them with confirms (the kernel's
`OutboxRelay` and `ConfirmedPublisher`, driven as the runner drives them: a drain again and again, a
failure said and retried); `relais serve provisioning` (the real runner, on PostgreSQL) consumes them,
grants a resource to each pupil and relays its own grant events to the usage queue. In the middle
of a wave, while provisioning holds a batch of it unacknowledged (its transaction waits on a lock the test
holds), node 1 is killed (SIGKILL of its Erlang VM: a crash, not a polite stop); the lock is released,
the batch commits, its acknowledgement cannot reach the lost node, and the quorum queue, on the surviving
nodes, delivers those events again. Then:

- provisioning's consumer, connected to node 1, reconnects to another node by itself, and every
  directory event provisioning receives is handled, each exactly once (its processed-event mark,
  one grant and one history line per pupil: nothing lost, nothing twice);
- the directory's publisher, connected to node 1, fails its next batch, and the same relay, in the
  same process, publishes it through a surviving node (nothing restarted);
- provisioning's own relay (the runner's) publishes every grant event through a surviving node too:
  its outbox ends empty and the usage queue holds a grant event for every pupil.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter

import amqp
import pytest
from sqlalchemy import func, select, text

from relais.bus.contracts import subscriptions
from relais.bus.outbox import OutboxRelay, pending_count, read_events
from relais.bus.publisher import ConfirmedPublisher, PublishError
from relais.bus.tables import processed_events
from relais.config import parse_amqp_uri
from relais.db import make_engine, upgrade, writer
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from services.provisioning.adapters import tables as pt
from services.provisioning.handlers.configuration import load_catalogue, load_rules
from services.provisioning.handlers.work import Context as Work
from tests import aaf_builder as aaf
from tests.ops_helpers import Service

UAI = "0750001A"
RESOURCE = "ark:/49591/dico"
WAVE = 1500  # pupils per wave: one event each for provisioning
QUEUE = "relais.q.provisioning"
USAGE_QUEUE = "relais.q.usage"
WAIT_S = 180.0  # an upper bound for slow machines, not a measure: the asserts are on what arrived


class DirectoryRelay:
    """The directory's side: imports into its own database; a thread relays its outbox as the runner does."""

    def __init__(self, tmp_path, amqp_uri: str):
        self.tmp, self.n = tmp_path, 0
        self.engine = make_engine(f"sqlite:///{tmp_path / 'directory.db'}")
        upgrade(self.engine)
        self.relay = OutboxRelay(self.engine, lambda: ConfirmedPublisher(amqp_uri))
        self.failures: list[str] = []
        self.published_ids: set[str] = set()  # the ids of the events provisioning receives
        self.stop = threading.Event()
        self.importing = threading.Lock()  # the relay waits while an import runs and its events are read
        self.thread = threading.Thread(target=self._loop, name="directory-relay", daemon=True)
        self.thread.start()

    def _loop(self) -> None:
        """The runner's outbox-relay timer (`_Running._relay_once`), every 0.2 s instead of 1 s."""
        while not self.stop.wait(0.2):
            try:
                with self.importing:
                    self.relay.drain(stop=self.stop)
            except PublishError as exc:
                self.failures.append(str(exc))

    def import_(self, *records, family="Eleve", kind="Delta") -> int:
        """Import: the events wait in the outbox for the relay; returns how many provisioning will receive."""
        self.n += 1
        path = aaf.write(self.tmp, f"P_{kind}_202609{self.n:02d}_{family}_0000.xml", *records)
        with self.importing:  # what the import adds to the outbox, before the relay takes it
            with self.engine.connect() as conn:
                before = {e["id"] for e in read_events(conn)}
            report = DirectoryImporter(self.engine, "test", ImportOptions()).run([path])
            assert report.ok, report.to_dict()
            received = subscriptions()["provisioning"]
            with self.engine.connect() as conn:
                new = {e["id"] for e in read_events(conn) if e["type"] in received and e["id"] not in before}
        self.published_ids |= new
        return len(new)

    def pending(self) -> int:
        with self.engine.connect() as conn:
            return pending_count(conn)

    def close(self) -> None:
        self.stop.set()
        self.thread.join(30)
        self.relay.close()


def processed_ids(engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(select(processed_events.c.event_id)
                                .where(processed_events.c.consumer == "provisioning")).scalars())


def processed(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(processed_events)
                            .where(processed_events.c.consumer == "provisioning")).scalar_one()


def wait_for(what, done, timeout: float = WAIT_S, logs=lambda: ""):
    deadline = time.monotonic() + timeout
    while not (value := done()) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert value, f"{what} not within {timeout:.0f} s\n{logs()[-4000:]}"
    return value


def waiting_on_lock(engine) -> bool:
    """Whether a session of the database waits on a lock (provisioning's batch, on the test's)."""
    with engine.connect() as conn:
        return bool(conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                                      "AND wait_event_type = 'Lock'")).scalar())


def consumer_nodes(cluster, asked, queue: str) -> list[str]:
    """The nodes whose channels consume `queue` (an Erlang pid names its node: <node.N.M.K>)."""
    out = cluster.ctl(asked, "list_consumers", "queue_name", "channel_pid", "--no-table-headers", "-q")
    return [line.split("<", 1)[1].split(".", 1)[0] for line in out.splitlines()
            if line.split("\t", 1)[0] == queue and "<" in line]


def queue_types(cluster, asked) -> dict[str, str]:
    out = cluster.ctl(asked, "list_queues", "name", "type", "--no-table-headers", "-q")
    return dict(line.split("\t")[:2] for line in out.splitlines() if "\t" in line)


def take_all(amqp_uri: str, queue: str) -> list[dict]:
    """Every event waiting in `queue`, taken off it (acked)."""
    params = parse_amqp_uri(amqp_uri)
    conn = amqp.Connection(**params.connection_kwargs())
    conn.connect()
    try:
        channel = conn.channel()
        _name, count, _consumers = channel.queue_declare(queue, passive=True)
        events = []
        while len(events) < count:
            message = channel.basic_get(queue, no_ack=True)
            assert message is not None, f"{queue} said {count} messages, gave {len(events)}"
            events.append(json.loads(message.body))
        return events
    finally:
        conn.close()


def pupils(start: int, count: int) -> list[str]:
    return [aaf.pupil(f"P{i:05d}", structure="S1", klass="6A") for i in range(start, start + count)]


@pytest.mark.slow
def test_a_node_lost_mid_import_loses_nothing_and_publishing_resumes(rabbit_cluster, pg_engine, tmp_path,
                                                                      monkeypatch):
    cluster = rabbit_cluster
    lost, survivor = cluster.nodes[0], cluster.nodes[1]
    uri = cluster.amqp_uri(0, 1, 2)  # node 1 first: everyone connects to it
    survivor_uri = survivor.uri
    monkeypatch.setenv("RELAIS_QUEUE_TYPE", "quorum")  # this process's publisher declares the queues too
    env = {"RELAIS_DATABASE_URL": pg_engine.url.render_as_string(hide_password=False), "RELAIS_AMQP_URI": uri,
           "RELAIS_TENANT": "test", "RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_QUEUE_TYPE": "quorum"}
    provisioning = Service("provisioning", env, tmp_path / "provisioning.log")
    directory: DirectoryRelay | None = None
    try:
        provisioning.wait_alive().wait_ready()
        wait_for("provisioning's consumer on node 1", lambda: consumer_nodes(cluster, survivor, QUEUE) == [lost.name],
                 logs=provisioning.logs)
        directory = DirectoryRelay(tmp_path, uri)

        # The school, then the rule that grants its pupils the resource.
        expected = directory.import_(aaf.school("S1", UAI), family="EtabEducNat", kind="Complet")
        wait_for("the school's events", lambda: processed(pg_engine) == expected, logs=provisioning.logs)
        with writer(pg_engine).begin() as conn:
            work = Work("test")
            load_catalogue(conn, {"resources": [{"id": RESOURCE, "title": "Dictionnaire", "publisher": "C",
                                                 "licence": "unlimited"}]}, work)
            load_rules(conn, {"rules": [{"id": "pupils", "resource": RESOURCE, "structures": [UAI],
                                         "profiles": ["National_ELV"]}]}, work)
        types = queue_types(cluster, survivor)
        assert {types.get(q) for q in (QUEUE, USAGE_QUEUE, f"{QUEUE}.dlq")} == {"quorum"}, types

        # Wave 1; node 1 is killed while provisioning holds a batch of it, unacknowledged: a lock on its
        # processed-event table holds its transaction until the node is gone, then lets it commit.
        before = processed(pg_engine)
        locker = pg_engine.connect()
        locker.execute(text(f"LOCK TABLE {processed_events.name} IN EXCLUSIVE MODE"))  # reads pass, writes wait
        try:
            expected += directory.import_(*pupils(0, WAVE))
            wait_for("provisioning's batch waiting on the lock", lambda: waiting_on_lock(pg_engine),
                     logs=provisioning.logs)
            cluster.kill(lost)
            at_kill = processed(pg_engine)  # the lock still held: the batch not committed yet
        finally:
            locker.rollback()
            locker.close()
        assert at_kill == before  # nothing of wave 1 was handled when the node was lost

        # Wave 2, imported after: the directory's publisher was connected to node 1.
        expected += directory.import_(*pupils(WAVE, WAVE))
        wait_for("every event handled", lambda: processed(pg_engine) >= expected, logs=provisioning.logs)
        wait_for("the directory's outbox relayed", lambda: directory.pending() == 0)
        assert directory.failures, "the directory's publisher never met the lost node"
        assert any(f":{lost.port}" in f for f in directory.failures), directory.failures
        assert provisioning.proc.poll() is None, provisioning.logs()[-4000:]  # one process, never restarted
        assert "broker connection lost" in provisioning.logs()  # its consumer was cut, and reconnected
        assert provisioning.metric("relais_messages_total", consumer="provisioning", outcome="duplicate") > 0
        # Its consumer now on a surviving node (the quorum queue keeps the lost node's, suspected, till it is back).
        assert set(consumer_nodes(cluster, survivor, QUEUE)) - {lost.name}

        # Every event once in effect.
        assert processed_ids(pg_engine) == directory.published_ids
        everyone = {f"P{i:05d}" for i in range(2 * WAVE)}
        with pg_engine.connect() as conn:
            grants = Counter(p for (p,) in conn.execute(
                select(pt.grant.c.person).where(pt.grant.c.resource == RESOURCE)))
            history = Counter(p for (p,) in conn.execute(
                select(pt.history.c.person).where(pt.history.c.resource == RESOURCE, pt.history.c.action == "granted")))
        assert set(grants) == everyone and set(grants.values()) == {1}
        assert set(history) == everyone and set(history.values()) == {1}

        # Provisioning's own relay (the runner's) published every grant event through a surviving node.
        def outbox_empty() -> bool:
            with pg_engine.connect() as conn:
                return pending_count(conn) == 0

        wait_for("provisioning's outbox relayed", outbox_empty, logs=provisioning.logs)
        granted = {e["payload"]["person"] for e in take_all(survivor_uri, USAGE_QUEUE)
                   if e["type"] == "provisioning.grant.created" and e["payload"]["resource"] == RESOURCE}
        assert granted == everyone
    finally:
        if directory is not None:
            directory.close()
        provisioning.stop()
