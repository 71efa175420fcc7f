"""RELAIS_AMQP_URI listing a cluster's nodes: parsed, redacted, and failed over by the publisher, the consumers
and the readiness check, against the real RabbitMQ (a "lost node" is a port nothing listens on).

The three-node cluster losing a node mid-import is tests/cluster/ (`make test-cluster`).
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Column, MetaData, String, Table, select

from relais.bus import nodes
from relais.bus.consumer import EventConsumer
from relais.bus.envelope import Event
from relais.bus.publisher import ConfirmedPublisher, OutgoingMessage, PublishError
from relais.config import amqp_nodes, kombu_amqp_uri, parse_amqp_uri, redact_url
from relais.ops.health import CheckFailed, broker_check


def lost_node(amqp_uri: str) -> str:
    """The same user and vhost as `amqp_uri`, on a port of this machine nothing listens on: a node that is gone."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    parts = urlsplit(amqp_uri)
    return parts._replace(netloc=f"{parts.username}:{parts.password}@127.0.0.1:{port}").geturl()


def test_a_list_of_nodes_shares_one_user_and_vhost():
    uri = "amqp://relais-sso:s3cret@rabbit-1:5672/relais, amqp://relais-sso:s3cret@rabbit-2/relais,"
    assert [n.hostport for n in amqp_nodes(uri)] == ["rabbit-1:5672", "rabbit-2:5672"]
    assert parse_amqp_uri(uri) == amqp_nodes(uri)[0]  # user and vhost: every node's
    assert redact_url(uri) == "amqp://relais-sso:***@rabbit-1:5672/relais,amqp://relais-sso:***@rabbit-2/relais,"
    assert kombu_amqp_uri(uri) == "amqp://relais-sso:s3cret@rabbit-1:5672/relais;amqp://relais-sso:s3cret@rabbit-2/relais"
    with pytest.raises(ValueError, match="different users, passwords or vhosts.*rabbit-1:5672 and rabbit-2:5672"):
        amqp_nodes("amqp://a:p@rabbit-1/relais,amqp://a:p@rabbit-2/other")
    with pytest.raises(ValueError, match="RELAIS_AMQP_URI is empty"):
        amqp_nodes(" , ")


def _probe(amqp_uri: str, queue: str) -> None:
    conn, node = nodes.connect(amqp_uri)
    try:
        channel = conn.channel()
        channel.queue_declare(queue, durable=True, auto_delete=False)
        channel.queue_bind(queue, "relais.events", "directory.#")
    finally:
        conn.close()


def test_the_publisher_fails_over_to_a_node_that_answers_and_starts_there_next_time(amqp_uri):
    uri = f"{lost_node(amqp_uri)},{amqp_uri}"
    with ConfirmedPublisher(uri, connect_timeout=2) as pub:
        assert pub.publish(OutgoingMessage("directory.mef.created", b"{}", f"m{i}", "directory.mef.created")
                           for i in range(50)) == 50
    assert nodes.in_turn(uri)[0] == parse_amqp_uri(amqp_uri)  # the node that answered, first from now on
    _probe(uri, "probe")
    with ConfirmedPublisher(uri, connect_timeout=2) as pub:
        pub.publish([OutgoingMessage("directory.mef.created", b"{}", "again", "directory.mef.created")])
    conn, node = nodes.connect(amqp_uri)
    try:
        assert conn.channel().queue_declare("probe", passive=True)[1] == 1
    finally:
        conn.close()


def test_the_publisher_names_every_node_when_none_answers(amqp_uri):
    first, second = lost_node(amqp_uri), lost_node(amqp_uri)
    with pytest.raises(PublishError, match="no node of the RabbitMQ cluster answers") as failure:
        ConfirmedPublisher(f"{first},{second}", connect_timeout=2).connect()
    for node in (first, second):
        assert parse_amqp_uri(node).hostport in str(failure.value)
    assert "guest:guest" not in str(failure.value)


effects = MetaData()
effect = Table("test_node_effect", effects, Column("event_id", String(36), primary_key=True))


def test_a_consumer_fails_over_to_a_node_that_answers(sqlite_engine, amqp_uri):
    effects.create_all(sqlite_engine)
    consumer = EventConsumer("t-nodes", ["directory.#"], lambda e, c: c.execute(effect.insert().values(
        event_id=e["id"])), sqlite_engine)
    uri = f"{lost_node(amqp_uri)},{amqp_uri}"
    assert consumer.run(uri, max_messages=1, idle_timeout=0.5) == 0  # declares its queues through the live node
    events = [Event(type="directory.mef.created", payload={"mef": {"code": str(i), "label": None}},
                    source="relais.directory", tenant="t", correlation_id="c") for i in range(20)]
    with ConfirmedPublisher(amqp_uri) as pub:
        pub.publish(OutgoingMessage(e.type, e.to_json(), e.id, e.type) for e in events)
    assert consumer.run(uri, max_messages=20, idle_timeout=10) == 20
    with sqlite_engine.connect() as conn:
        assert set(conn.execute(select(effect.c.event_id)).scalars()) == {e.id for e in events}


def test_a_consumer_with_no_node_answering_raises_what_the_runner_reconnects_on(sqlite_engine, amqp_uri):
    consumer = EventConsumer("t-none", ["directory.#"], lambda e, c: None, sqlite_engine)
    with pytest.raises(OSError, match="no node of the RabbitMQ cluster answers"):
        consumer.run(f"{lost_node(amqp_uri)},{lost_node(amqp_uri)}", max_messages=1)


def test_readiness_holds_while_one_node_answers(amqp_uri):
    lost = lost_node(amqp_uri)
    assert parse_amqp_uri(amqp_uri).hostport in broker_check(f"{lost},{amqp_uri}", timeout=2)()
    with pytest.raises(CheckFailed, match=parse_amqp_uri(lost).hostport):
        broker_check(f"{lost},{lost_node(amqp_uri)}", timeout=2)()
