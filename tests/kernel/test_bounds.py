"""Queue bounds on the real broker: what nobody consumes stays within them, and nothing a consumer needs is lost.

Each test sets the bounds on its throw-away vhost as an operator would (`relais queues bound`: RabbitMQ
policies through the management API), with bounds small enough to be passed many times over.
"""

from __future__ import annotations

import json

import amqp
import pytest
from click.testing import CliRunner

from app.cli import main
from relais.bus.bounds import Bounds, BoundsError, apply
from relais.bus.consumer import EventConsumer, QueueFull
from relais.bus.envelope import Event
from relais.bus.outbox import OutboxRelay, add_events, pending_count
from relais.bus.publisher import ConfirmedPublisher, PublishError
from relais.bus.topology import UNROUTED_QUEUE, consumer_queues, declare_events_exchange, declare_subscribers
from relais.config import parse_amqp_uri
from tests.conftest import RABBIT_API

PROVISIONING = consumer_queues("provisioning")


def vhost(uri: str) -> str:
    return parse_amqp_uri(uri).virtual_host


def bound(uri: str, **env: str) -> None:
    """`relais queues bound` with these RELAIS_* bounds, on the test's vhost."""
    result = CliRunner().invoke(main, ["queues", "bound", "--rabbitmq-api", RABBIT_API, "--json"],
                                env={"RELAIS_AMQP_URI": uri, **env})
    assert result.exit_code == 0, result.output
    assert set(json.loads(result.stdout)["policies"]) == {"relais-unrouted", "relais-consumers", "relais-retries"}


def depth(uri: str, queue: str) -> int:
    conn = amqp.Connection(**parse_amqp_uri(uri).connection_kwargs())
    conn.connect()
    try:
        return conn.channel().queue_declare(queue, passive=True)[1]
    finally:
        conn.close()


def take_all(uri: str, queue: str) -> list[amqp.Message]:
    conn = amqp.Connection(**parse_amqp_uri(uri).connection_kwargs())
    conn.connect()
    ch = conn.channel()
    out = []
    while (m := ch.basic_get(queue, no_ack=True)) is not None:
        out.append(m)
    conn.close()
    return out


def unrouted(i: int) -> Event:
    """An event only a planned consumer (the audit archive) receives: no queue is bound for it."""
    return Event(type="directory.import.completed", source="relais.directory", tenant="t", correlation_id="c",
                 payload={"import_id": f"i{i}", "files": [], "totals": {}, "rejected": 0, "warnings": 0, "events": 0})


def mef(i: int) -> Event:
    """An event provisioning consumes (queue relais.q.provisioning)."""
    return Event(type="directory.mef.created", source="relais.directory", tenant="t", correlation_id="c",
                 payload={"mef": {"code": str(i), "label": None}})


def relay_all(engine, uri: str, events: list[Event]) -> OutboxRelay:
    with engine.begin() as conn:
        add_events(conn, events)
    return OutboxRelay(engine, lambda: ConfirmedPublisher(uri), max_backoff_s=0)


def test_unrouted_events_stay_within_the_bound_the_oldest_dropped(amqp_uri, sqlite_engine):
    # A deployment from before the bounds: relais.unrouted exists, unbounded, and holds 300 events.
    relay = relay_all(sqlite_engine, amqp_uri, [unrouted(i) for i in range(300)])
    assert relay.drain() == 300 and depth(amqp_uri, UNROUTED_QUEUE) == 300

    # Bounded as a policy: it applies to the queue as it is (nothing re-declared), at once.
    bound(amqp_uri, RELAIS_UNROUTED_MAX_LENGTH="100")
    assert depth(amqp_uri, UNROUTED_QUEUE) == 100

    # 20 times the bound more, nobody consuming: the queue stays at its bound and keeps the newest.
    events = [unrouted(i) for i in range(300, 2300)]
    relay = relay_all(sqlite_engine, amqp_uri, events)
    assert relay.drain() == 2000
    assert depth(amqp_uri, UNROUTED_QUEUE) == 100
    kept = take_all(amqp_uri, UNROUTED_QUEUE)
    assert [m.properties["message_id"] for m in kept] == [e.id for e in events[-100:]]

    # A bound in bytes too: the bodies kept never add up to more.
    bound(amqp_uri, RELAIS_UNROUTED_MAX_LENGTH="100000", RELAIS_UNROUTED_MAX_BYTES="20000")
    relay = relay_all(sqlite_engine, amqp_uri, [unrouted(i) for i in range(2000)])
    assert relay.drain() == 2000
    kept = take_all(amqp_uri, UNROUTED_QUEUE)
    assert 0 < sum(len(m.body) for m in kept) <= 20000 < 2000 * len(kept[0].body)

    # The publishers' declarations still pass on the bounded queue (no PRECONDITION_FAILED to handle).
    conn = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs())
    conn.connect()
    declare_subscribers(declare_events_exchange(conn.channel()), ("provisioning", "vault"))
    conn.close()


def test_a_full_consumer_queue_refuses_and_the_outbox_keeps_every_refused_event(amqp_uri, engine):
    bound(amqp_uri, RELAIS_QUEUE_MAX_LENGTH="100")
    events = [mef(i) for i in range(1000)]
    relay = relay_all(engine, amqp_uri, events)

    # Provisioning does not run: its queue fills to the bound, RabbitMQ refuses the rest, the outbox keeps it.
    with pytest.raises(PublishError, match="refused .* full") as refused:
        relay.drain()
    assert refused.value.refused and refused.value.confirmed == 100
    assert depth(amqp_uri, PROVISIONING.main) == 100
    with engine.connect() as conn:
        assert pending_count(conn) == 900

    # Each time the consumer takes what waits, the relay sends the next hundred: at the end every event
    # arrived once, in order, and the broker never held more than the bound.
    received: list[str] = []
    for _round in range(20):
        taken = take_all(amqp_uri, PROVISIONING.main)
        assert len(taken) <= 100
        received += [m.properties["message_id"] for m in taken]
        try:
            relay.drain()
        except PublishError as exc:
            assert exc.refused
        with engine.connect() as conn:
            if pending_count(conn) == 0:
                break
    received += [m.properties["message_id"] for m in take_all(amqp_uri, PROVISIONING.main)]
    assert received == [e.id for e in events]
    relay.close()


def test_a_full_dead_letter_queue_sends_the_batch_back_to_the_consumers_queue(amqp_uri, sqlite_engine):
    bound(amqp_uri, RELAIS_QUEUE_MAX_LENGTH="5")
    consumer = EventConsumer("provisioning", ["directory.mef.*"], lambda event, conn: None, sqlite_engine)
    conn = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs())
    conn.connect()
    ch = conn.channel()
    declare_subscribers(declare_events_exchange(ch), ("provisioning",))
    for _ in range(5):
        ch.basic_publish(amqp.Message(b"old dead letter", delivery_mode=2), exchange="",
                         routing_key=PROVISIONING.dead_letter)
    ch.basic_publish(amqp.Message(b"not an event", delivery_mode=2), exchange="", routing_key=PROVISIONING.main)
    conn.close()

    with pytest.raises(QueueFull, match=r"relais\.q\.provisioning\.dlq, which is full"):
        consumer.run(amqp_uri, max_messages=1, idle_timeout=5)
    # Nothing was acknowledged: the poison message is back in the queue, the dead letters as they were.
    assert depth(amqp_uri, PROVISIONING.main) == 1 and depth(amqp_uri, PROVISIONING.dead_letter) == 5


def test_bad_bounds_and_an_api_that_refuses_are_named(amqp_uri):
    for name, value in (("RELAIS_QUEUE_MAX_LENGTH", "0"), ("RELAIS_QUEUE_MAX_BYTES", "1 TB"),
                        ("RELAIS_UNROUTED_MAX_AGE", "a week")):
        with pytest.raises(BoundsError, match=f"{name} must be .* not '{value}'"):
            Bounds.from_env({name: value})
    assert Bounds.from_env({"RELAIS_QUEUE_MAX_BYTES": "2GiB", "RELAIS_UNROUTED_MAX_AGE": "12h"}) == Bounds(
        queue_bytes=2 * 1024 ** 3, unrouted_age_s=12 * 3600)
    with pytest.raises(BoundsError, match=r"refused .*HTTP 401.*policymaker"):
        apply("http://guest:wrong-password@127.0.0.1:15672", vhost(amqp_uri), Bounds())
    with pytest.raises(BoundsError, match=r"management API at http://guest:\*\*\*@127.0.0.1:1 does not answer"):
        apply("http://guest:secret@127.0.0.1:1", vhost(amqp_uri), Bounds())
    result = CliRunner().invoke(main, ["queues", "bound", "--rabbitmq-api", "http://guest:secret@127.0.0.1:1"],
                                env={"RELAIS_AMQP_URI": amqp_uri})
    assert result.exit_code == 1 and "relais queues bound --print" in result.output and "secret" not in result.output


def test_after_a_refusal_the_relay_waits_before_sending_again(amqp_uri, sqlite_engine):
    bound(amqp_uri, RELAIS_QUEUE_MAX_LENGTH="10")
    with sqlite_engine.begin() as conn:
        add_events(conn, [mef(i) for i in range(50)])
    relay = OutboxRelay(sqlite_engine, lambda: ConfirmedPublisher(amqp_uri))  # the runner's: waits 1 s, 2 s, ...
    with pytest.raises(PublishError):
        relay.drain()
    # Called again at once (the runner calls it every second), it sends nothing: a full queue is not drained so soon.
    assert relay.drain() == 0
    with sqlite_engine.connect() as conn:
        assert pending_count(conn) == 40
    assert depth(amqp_uri, PROVISIONING.main) == 10
    relay.close()
