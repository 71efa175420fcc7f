"""The bus against the real RabbitMQ and databases: outbox, confirms, retries, dead letters."""

from __future__ import annotations

import json

import amqp
import pytest
from click.testing import CliRunner
from sqlalchemy import Column, MetaData, String, Table, func, select

from relais.bus.consumer import ATTEMPTS_HEADER, ERROR_HEADER, EventConsumer
from relais.bus.envelope import Event
from relais.bus.outbox import OutboxRelay, add_events, pending_count
from relais.bus.publisher import ConfirmedPublisher, OutgoingMessage, PublishError
from relais.bus.tables import outbox
from relais.bus.topology import EVENTS_EXCHANGE, UNROUTED_QUEUE, consumer_queues, declare_events_exchange
from relais.config import parse_amqp_uri
from relais.db import writer

DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1/"


def channel(uri):
    conn = amqp.Connection(**parse_amqp_uri(uri).connection_kwargs())
    conn.connect()
    return conn, declare_events_exchange(conn.channel())


def drain_queue(uri, queue) -> list[amqp.Message]:
    conn, ch = channel(uri)
    out = []
    while (m := ch.basic_get(queue, no_ack=True)) is not None:
        out.append(m)
    conn.close()
    return out


def ev(i=0, type_="directory.mef.created"):
    return Event(type=type_, payload={"mef": {"code": str(i), "label": None}}, source="relais.directory",
                 tenant="t", correlation_id="c")


def test_publisher_confirms_persistent_messages_and_keeps_unroutable_ones(amqp_uri):
    conn, ch = channel(amqp_uri)
    ch.queue_declare("probe", durable=True, auto_delete=False)
    ch.queue_bind("probe", EVENTS_EXCHANGE, "directory.person.#")
    conn.close()
    with ConfirmedPublisher(amqp_uri, window=100) as pub:
        sent = pub.publish(OutgoingMessage("directory.person.created", b"{}", f"id-{i}", "directory.person.created")
                           for i in range(3000))
        pub.publish([OutgoingMessage("nobody.listens", b"{}", "lost?", "nobody.listens")])
    assert sent == 3000
    got = drain_queue(amqp_uri, "probe")
    assert len(got) == 3000 and got[0].properties["delivery_mode"] == 2 and got[0].properties["message_id"] == "id-0"
    assert [m.properties["message_id"] for m in drain_queue(amqp_uri, UNROUTED_QUEUE)] == ["lost?"]


def test_publisher_names_an_unreachable_broker():
    with pytest.raises(PublishError, match="127.0.0.1:1"):
        ConfirmedPublisher(DEAD_BROKER, connect_timeout=2).connect()


def test_outbox_rollback_broker_down_then_back_loses_nothing(engine, amqp_uri):
    with pytest.raises(RuntimeError):
        with writer(engine).begin() as conn:
            add_events(conn, [ev(-1)])
            raise RuntimeError("the state change failed")
    events = [ev(i) for i in range(2500)]
    with writer(engine).begin() as conn:
        add_events(conn, events)
    down = OutboxRelay(engine, lambda: ConfirmedPublisher(DEAD_BROKER, connect_timeout=2), batch_size=1000)
    with pytest.raises(PublishError):
        down.drain()
    with engine.connect() as conn:
        assert pending_count(conn) == 2500
    relay = OutboxRelay(engine, lambda: ConfirmedPublisher(amqp_uri), batch_size=1000)
    assert relay.drain() == 2500
    relay.close()
    with engine.connect() as conn:
        assert pending_count(conn) == 0
    # Nobody consumed yet: the publisher declared the subscribers' queues from the contracts,
    # so the events wait in provisioning's queue, not in relais.unrouted.
    got = [m.properties["message_id"] for m in drain_queue(amqp_uri, consumer_queues("provisioning").main)]
    assert got == [e.id for e in events]  # all, once, in order; the rolled-back one never
    assert drain_queue(amqp_uri, UNROUTED_QUEUE) == []


def test_packed_outbox_rows_are_relayed_one_message_per_event_in_order(engine, amqp_uri):
    """Rows of many events (the full evaluation's) between single ones: every event once, in order."""
    from relais.bus.envelope import dumps
    from relais.bus.outbox import PACK, add_serialized, read_events

    first = [ev(i) for i in range(3)]
    bulk = [ev(1000 + i, "directory.mef.created" if i % 3 else "directory.subject.created")
            for i in range(2 * PACK + 500)]
    same = [ev(9000 + i) for i in range(PACK + 1)]  # one type for a whole row
    last = [ev(99)]
    with writer(engine).begin() as conn:
        add_events(conn, first)
        add_serialized(conn, [(e.id, e.type, dumps(e.to_dict())) for e in bulk], packed=True)
        add_serialized(conn, [(e.id, e.type, dumps(e.to_dict())) for e in same], packed=True)
        add_events(conn, last)
    everything = first + bulk + same + last
    with engine.connect() as conn:
        assert pending_count(conn) == len(everything)
        assert conn.execute(select(func.count()).select_from(outbox)).scalar_one() == 3 + 3 + 2 + 1
        assert [e["id"] for e in read_events(conn)] == [e.id for e in everything]
        assert [e["id"] for e in read_events(conn, "directory.subject.created")] == [
            e.id for e in bulk if e.type == "directory.subject.created"]
    relay = OutboxRelay(engine, lambda: ConfirmedPublisher(amqp_uri), batch_size=700)  # batches end mid-row
    assert relay.drain() == len(everything)
    relay.close()
    got = drain_queue(amqp_uri, consumer_queues("provisioning").main)
    assert [(m.properties["message_id"], m.properties["type"]) for m in got] == [(e.id, e.type) for e in everything]
    assert [json.loads(m.body)["id"] for m in got] == [e.id for e in everything]
    with engine.connect() as conn:
        assert pending_count(conn) == 0


def _truncated_packed_row() -> tuple[str, str, bytes, int]:
    from relais.bus.envelope import dumps
    from relais.bus.outbox import pack

    rows = [(e.id, e.type, dumps(e.to_dict())) for e in (ev(i) for i in range(500))]
    (ids, types, body, n), = pack(rows)
    assert n == 500 and types == "directory.mef.created"
    assert body[:1] != b"{" and len(body) < len(b"\n".join(r[2] for r in rows)) / 4  # compressed
    return ids, types, body[:len(body) // 2], n


@pytest.mark.parametrize("row, reason", [
    (("a\nb", "directory.mef.created", b"{}\n{}\n{}", 2), "2 ids, 2 types and 3 bodies for 2 events"),
    (_truncated_packed_row(), "its compressed events do not inflate"),
], ids=["miscounted", "truncated"])
def test_a_damaged_packed_row_is_named_and_stays(sqlite_engine, amqp_uri, row, reason):
    ids, types, body, n = row
    with writer(sqlite_engine).begin() as conn:
        conn.execute(outbox.insert().values(event_id=ids, type=types, body=body, events=n))
    relay = OutboxRelay(sqlite_engine, lambda: ConfirmedPublisher(amqp_uri))
    with pytest.raises(ValueError, match=f"outbox row 1 is damaged: {reason}"):
        relay.drain()
    relay.close()
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == n


@pytest.mark.parametrize("causation_id", [None, "cause-\"7\""])
def test_a_shared_envelope_makes_the_bytes_of_the_event(causation_id):
    """`SharedEnvelope` splices payloads serialized elsewhere: the body must equal `Event.to_json`'s, byte for byte."""
    from relais.bus.envelope import SharedEnvelope, dumps, loads

    envelope = SharedEnvelope("directory.person.created", "relais.directory", "académie-\"x\"", "corr é 1",
                              "2026-11-23T13:00:00.000001Z", causation_id=causation_id, version=2)
    for payload in ({"person": {"jointure": "1", "last_name": "Nöel", "memberships": [{"kind": "x", "a": None}]}},
                    {}, {"z": 1, "a": [1.5, True]}):
        event = Event(type="directory.person.created", payload=payload, source="relais.directory",
                      tenant="académie-\"x\"", correlation_id="corr é 1", causation_id=causation_id, version=2,
                      occurred_at="2026-11-23T13:00:00.000001Z")
        body = envelope.body(event.id, dumps(payload))
        assert body == event.to_json()
        assert Event.from_dict(loads(body)) == event


def test_publish_frames_are_the_bytes_pika_would_send():
    """`frames.PublishFrames` replaces pika's basic_publish encoding: the same bytes, headers and big bodies too."""
    import pika
    from pika import frame, spec

    from relais.bus.frames import PublishFrames

    frame_max = 4096
    for body in (b"", b"{}", b"x" * 5000, "é".encode() * 3000):
        for headers in (None, {"x-relais-attempts": 3, "x-relais-error": "pourquoi é"}):
            props = pika.BasicProperties(content_type="application/json", content_encoding="utf-8", delivery_mode=2,
                                         message_id="id-é1", type="directory.person.created", headers=headers)
            expected = (frame.Method(7, spec.Basic.Publish(exchange="relais.events",
                                                           routing_key="directory.person.created")).marshal()
                        + frame.Header(7, len(body), props).marshal()
                        + b"".join(frame.Body(7, body[i:i + frame_max - 8]).marshal()
                                   for i in range(0, len(body), frame_max - 8)))
            got = PublishFrames(7, "relais.events", frame_max).encode(
                "directory.person.created", body, "id-é1", "directory.person.created", headers)
            assert got == expected, (len(body), headers)
    with pytest.raises(ValueError, match=r"message 'x{80}': its type is 300 bytes long, AMQP allows 255"):
        PublishFrames(1, "relais.events", frame_max).encode("k", b"{}", "x" * 90, "t" * 300)


def test_a_message_that_cannot_be_sent_is_named_and_the_publisher_goes_on(amqp_uri):
    with ConfirmedPublisher(amqp_uri, window=10) as pub:
        with pytest.raises(ValueError, match=r"message 'too-long': its routing key is 256 bytes long"):
            pub.publish([OutgoingMessage("directory.mef.created", b"{}", f"ok-{i}", "directory.mef.created")
                         for i in range(25)] + [OutgoingMessage("k" * 256, b"{}", "too-long", "x")])
        assert pub.publish([OutgoingMessage("directory.mef.created", b"{}", "after", "directory.mef.created",
                                            {"x-relais-attempts": 1})]) == 1
    got = drain_queue(amqp_uri, consumer_queues("provisioning").main)
    assert got[-1].properties["message_id"] == "after"
    assert got[-1].properties["application_headers"] == {"x-relais-attempts": 1}
    assert {m.properties["message_id"] for m in got[:-1]} <= {f"ok-{i}" for i in range(25)}


class ClosedByTheBrokerMidBatch(ConfirmedPublisher):
    """A real publisher whose connection RabbitMQ closes (through its management API, as an operator
    or a broker restart would) once `after` messages of its second batch went out."""

    def __init__(self, uri: str, after: int, window: int):
        super().__init__(uri, window=window)
        self.vhost = parse_amqp_uri(uri).virtual_host
        self.after, self.batches, self.closed = after, 0, False

    def publish(self, messages):
        self.batches += 1
        return super().publish(messages)

    def _pump(self):
        super()._pump()
        if self.batches == 2 and self._sent >= self.after and not self.closed:
            from tests.ops_helpers import close_connections

            self.closed = True
            assert close_connections(self.vhost), "the management API never listed the publisher's connection"


def test_a_connection_closed_mid_batch_loses_nothing_and_duplicates_are_skipped(engine, amqp_uri):
    """The relay marks rows published only once confirmed: a batch cut short is sent again whole,
    in order, and an idempotent consumer applies each event once."""
    from relais.bus.envelope import dumps
    from relais.bus.outbox import add_serialized
    from relais.bus.topology import declare_consumer

    events = [ev(i) for i in range(6000)]
    with writer(engine).begin() as conn:
        add_serialized(conn, [(e.id, e.type, dumps(e.to_dict())) for e in events], packed=True)
    ids = [e.id for e in events]
    conn, ch = channel(amqp_uri)
    ch.queue_declare("probe", durable=True, auto_delete=False)
    ch.queue_bind("probe", EVENTS_EXCHANGE, "directory.#")
    declare_consumer(ch, "t4", ["directory.#"], (100, 200))
    conn.close()

    # Batches of 2000 events (two packed rows); the connection goes during the second,
    # when at most a window of it was sent: it cannot have been confirmed whole.
    cut = OutboxRelay(engine, lambda: ClosedByTheBrokerMidBatch(amqp_uri, after=300, window=400), batch_size=2000)
    with pytest.raises(PublishError, match="closed"):
        cut.drain()
    cut.close()
    with engine.connect() as conn:
        assert pending_count(conn) == 4000  # the first batch confirmed and marked; the rest kept
    relay = OutboxRelay(engine, lambda: ConfirmedPublisher(amqp_uri), batch_size=2000)
    assert relay.drain() == 4000
    relay.close()
    with engine.connect() as conn:
        assert pending_count(conn) == 0

    got = [m.properties["message_id"] for m in drain_queue(amqp_uri, "probe")]
    sent_twice = len(got) - len(ids)  # what reached the broker of the cut batch before the connection went
    assert 0 <= sent_twice <= 2000
    assert got == ids[:2000 + sent_twice] + ids[2000:]  # in outbox order, the cut batch again from its start
    handled = []

    def handler(event, conn):
        handled.append(event["id"])
        conn.execute(effect.insert().values(event_id=event["id"]))

    consumer = _consumer(engine, "t4", handler)
    assert consumer.run(amqp_uri, max_messages=len(got), idle_timeout=10) == len(got)
    with engine.connect() as conn:
        assert sorted(r[0] for r in conn.execute(select(effect.c.event_id))) == sorted(ids)  # each effect once
    assert sorted(handled) == sorted(ids)


effects = MetaData()
effect = Table("test_effect", effects, Column("event_id", String(36), primary_key=True))


def _consumer(engine, name, handler, delays=(100, 200)):
    effects.create_all(engine)
    return EventConsumer(name, ["directory.#"], handler, engine, retry_delays_ms=delays)


def _publish(uri, bodies):
    with ConfirmedPublisher(uri) as pub:
        pub.publish(OutgoingMessage("directory.mef.created", b, f"m{i}", "directory.mef.created")
                    for i, b in enumerate(bodies))


@pytest.mark.parametrize("queue_type", ["classic", "quorum"])
def test_consumer_is_idempotent_retries_then_dead_letters(sqlite_engine, amqp_uri, queue_type, monkeypatch):
    """Also with quorum queues (RELAIS_QUEUE_TYPE=quorum, a RabbitMQ cluster's choice): TTLs and dead letters."""
    monkeypatch.setenv("RELAIS_QUEUE_TYPE", queue_type)
    calls = {"flaky": 0}

    def handler(event, conn):
        if event["payload"]["mef"]["code"] == "always-fails":
            raise ValueError("cannot handle this one")
        if event["payload"]["mef"]["code"] == "flaky":
            calls["flaky"] += 1
            if calls["flaky"] < 3:
                raise ConnectionError("downstream busy")
        conn.execute(effect.insert().values(event_id=event["id"]))

    consumer = _consumer(sqlite_engine, "t1", handler)
    conn, ch = channel(amqp_uri)  # declare the queues before publishing
    from relais.bus.topology import declare_consumer
    declare_consumer(ch, "t1", ["directory.#"], (100, 200))
    conn.close()
    once, flaky, bad = ev(1), ev(0), ev(0)
    flaky.payload["mef"]["code"] = "flaky"
    bad.payload["mef"]["code"] = "always-fails"
    _publish(amqp_uri, [once.to_json(), once.to_json(), flaky.to_json(), bad.to_json(), b"not json", b'{"id": 1}'])
    # 6 deliveries + 2 retries of flaky + 2 retries of bad
    settled = consumer.run(amqp_uri, max_messages=10, idle_timeout=5)
    assert settled == 10
    with sqlite_engine.connect() as c:
        assert sorted(r[0] for r in c.execute(select(effect.c.event_id))) == sorted([once.id, flaky.id])
    dead = drain_queue(amqp_uri, consumer_queues("t1").dead_letter)
    reasons = sorted(str(m.properties["application_headers"][ERROR_HEADER]) for m in dead)
    assert len(dead) == 3
    assert any("gave up after 3 attempts: ValueError: cannot handle this one" in r for r in reasons)
    assert sum("not a valid event envelope" in r for r in reasons) == 2
    assert max(int(m.properties["application_headers"][ATTEMPTS_HEADER]) for m in dead) == 3
    assert drain_queue(amqp_uri, consumer_queues("t1").main) == []
    assert {q: _queue_type(amqp_uri, q) for q in (consumer_queues("t1").main, consumer_queues("t1").dead_letter,
                                                  *consumer_queues("t1", (100, 200)).retries)} == {
        q: queue_type for q in (consumer_queues("t1").main, consumer_queues("t1").dead_letter,
                                *consumer_queues("t1", (100, 200)).retries)}


def _queue_type(amqp_uri: str, queue: str) -> str:
    """The queue's type as the RabbitMQ management API reports it."""
    import base64
    import urllib.parse
    import urllib.request

    from tests.conftest import RABBIT_API

    vhost = urllib.parse.quote(parse_amqp_uri(amqp_uri).virtual_host, safe="")
    api = urllib.parse.urlsplit(RABBIT_API)
    req = urllib.request.Request(f"{api.scheme}://{api.hostname}:{api.port}/api/queues/{vhost}/"
                                 f"{urllib.parse.quote(queue, safe='')}")
    req.add_header("Authorization", "Basic " + base64.b64encode(f"{api.username}:{api.password}".encode()).decode())
    with urllib.request.urlopen(req, timeout=10) as answer:
        return json.loads(answer.read())["type"]


def test_cli_import_with_broker_down_keeps_events_then_relays(settings_env, aaf_sample, monkeypatch, tmp_path):
    from app.cli import main

    runner = CliRunner()
    monkeypatch.setenv("RELAIS_AMQP_URI", DEAD_BROKER)
    result = runner.invoke(main, ["directory", "import", str(aaf_sample), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["status"] == "completed" and report["events_published"] == 0
    assert report["events_pending"] == report["events"] == 14543
    assert any("outbox" in w["message"] for w in report["warnings"])
    monkeypatch.setenv("RELAIS_AMQP_URI", settings_env["RELAIS_AMQP_URI"])
    relayed = runner.invoke(main, ["outbox", "relay", "--json"])
    assert json.loads(relayed.stdout) == {"published": 14543, "pending": 0, "error": None}
    # Provisioning subscribes to all but directory.import.completed, which nobody receives yet.
    assert len(drain_queue(settings_env["RELAIS_AMQP_URI"], consumer_queues("provisioning").main)) == 14542
    [completed] = drain_queue(settings_env["RELAIS_AMQP_URI"], UNROUTED_QUEUE)
    assert completed.properties["type"] == "directory.import.completed"
    got = runner.invoke(main, ["directory", "get", "2605692", "--json"])
    assert json.loads(got.stdout)["legal_guardians"] == ["2867253", "2867254"]


def test_batches_share_a_transaction_and_a_failing_event_is_retried_alone(engine, amqp_uri):
    batches = []

    def one(event, conn):
        if event["payload"]["mef"]["code"] == "poison":
            raise ValueError("poison")
        conn.execute(effect.insert().values(event_id=event["id"]))

    def many(events, conn):
        batches.append(len(events))
        for event in events:
            one(event, conn)

    alone = []  # events the consumer handled one by one (a delivery batch of one takes that path)

    def single(event, conn):
        alone.append(event["id"])
        one(event, conn)

    consumer = _consumer(engine, "t3", single)
    consumer.batch_handler = many
    good = [ev(i) for i in range(5)]
    poison = ev(9)
    poison.payload["mef"]["code"] = "poison"
    # A clean batch (with a duplicate inside): one transaction, the duplicate skipped.
    outcomes = consumer.handle_many([(e.to_json(), 0) for e in good[:3]] + [(good[0].to_json(), 0)])
    assert [o.status for o in outcomes] == ["handled"] * 3 + ["duplicate"] and batches == [3]
    # A batch with a poison event: nothing of the batch kept, then each on its own.
    outcomes = consumer.handle_many([(good[3].to_json(), 0), (poison.to_json(), 0), (good[4].to_json(), 0),
                                     (good[1].to_json(), 0), (b"garbage", 0)])
    assert [o.status for o in outcomes] == ["handled", "retry", "handled", "duplicate", "dead"]
    with engine.connect() as c:
        assert sorted(r[0] for r in c.execute(select(effect.c.event_id))) == sorted(e.id for e in good)
    # Through RabbitMQ: many events, settled in batches, each effect once.
    more = [ev(100 + i) for i in range(300)]
    conn, ch = channel(amqp_uri)
    from relais.bus.topology import declare_consumer
    declare_consumer(ch, "t3", ["directory.#"], (100, 200))
    conn.close()
    _publish(amqp_uri, [e.to_json() for e in more])
    batches.clear()
    alone.clear()
    assert consumer.run(amqp_uri, max_messages=300, idle_timeout=5) == 300
    assert sum(batches) + len(alone) == 300 and max(batches) > 1
    with engine.connect() as c:
        assert c.execute(select(func.count()).select_from(effect)).scalar_one() == 305
