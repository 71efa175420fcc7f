"""`relais outbox relay` stopped by a signal mid-way reports what RabbitMQ really received, and loses nothing.

SIGINT or SIGTERM stops it once the batch in flight is confirmed and removed from the outbox: the
count it prints is then exactly what the broker holds, and the next run sends the rest, each event once.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.parse

import amqp
import pika
import pytest

from relais.bus.contracts import subscriptions
from relais.bus.envelope import Event, dumps
from relais.bus.outbox import add_serialized, pending_count
from relais.bus.topology import EVENTS_EXCHANGE, consumer_queues, declare_consumer
from relais.config import parse_amqp_uri
from relais.db import writer
from tests.ops_helpers import RELAIS, rabbit_api

BATCH = 20_000  # events the relay publishes and confirms at a time
EVENTS = 45_000  # three batches
QUEUE = consumer_queues("provisioning").main  # where directory.mef.created waits (the contracts' subscriber)


def connect(uri: str) -> amqp.Connection:
    conn = amqp.Connection(**parse_amqp_uri(uri).connection_kwargs())
    conn.connect()
    return conn


def depth(uri: str) -> int:
    """Messages in the queue now (a passive declare: exact, where the management API lags by seconds)."""
    conn = connect(uri)
    try:
        return conn.channel().queue_declare(QUEUE, passive=True).message_count
    except amqp.exceptions.NotFound:
        return 0
    finally:
        conn.close()


def message_ids(uri: str, expected: int, timeout: float = 60) -> list[str]:
    """Every message of the queue's, consumed, in order (pika: several times py-amqp's pace)."""
    p = parse_amqp_uri(uri)
    conn = pika.BlockingConnection(pika.ConnectionParameters(
        p.host, p.port, p.virtual_host, pika.PlainCredentials(p.userid, p.password)))
    got: list[str] = []
    try:
        ch = conn.channel()
        ch.basic_qos(prefetch_count=5000)
        for _method, properties, _body in ch.consume(QUEUE, auto_ack=True, inactivity_timeout=5):
            if properties is None:  # nothing for inactivity_timeout seconds
                break
            got.append(properties.message_id)
            if len(got) == expected:
                break
    finally:
        conn.close()
    return got


def filled_outbox(engine, amqp_uri: str, tmp_path) -> tuple[list[Event], dict[str, str]]:
    """EVENTS events written to the outbox (packed, as the bulk writers do); the relay's environment."""
    events = [Event(type="directory.mef.created", payload={"mef": {"code": str(i), "label": None}},
                    source="relais.directory", tenant="t", correlation_id="c") for i in range(EVENTS)]
    with writer(engine).begin() as conn:
        add_serialized(conn, [(e.id, e.type, dumps(e.to_dict())) for e in events], packed=True)
    return events, {"RELAIS_DATA_DIR": str(tmp_path), "RELAIS_AMQP_URI": amqp_uri, "RELAIS_LOG_FORMAT": "json",
                    "RELAIS_DATABASE_URL": engine.url.render_as_string(hide_password=False)}


def relay(env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([RELAIS, "outbox", "relay", "--json"], env={**os.environ, **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


@pytest.mark.parametrize(("engine_fixture", "sig"), [("sqlite_engine", signal.SIGTERM), ("pg_engine", signal.SIGINT)],
                         ids=["sqlite-SIGTERM", "postgresql-SIGINT"])
def test_an_interrupted_relay_reports_what_the_broker_received_and_the_next_run_sends_the_rest(
        request, engine_fixture, amqp_uri, tmp_path, sig):
    """SQLite's relay reads, publishes and deletes in a pipeline; PostgreSQL's a batch a transaction."""
    engine = request.getfixturevalue(engine_fixture)
    events, env = filled_outbox(engine, amqp_uri, tmp_path)

    first = relay(env)
    while depth(amqp_uri) == 0:  # the broker holds some: the relay is mid-way
        if first.poll() is not None:
            pytest.fail(f"the relay ended before it could be interrupted: {first.communicate()}")
        time.sleep(0.02)
    first.send_signal(sig)
    out, err = first.communicate(timeout=60)
    report = json.loads(out)
    assert first.returncode == 1, err
    assert 0 < report["published"] < EVENTS, report
    assert report["published"] == depth(amqp_uri)  # what it says it sent is what RabbitMQ has
    assert report["pending"] == EVENTS - report["published"]
    assert f"interrupted by {sig.name}" in report["error"]
    with engine.connect() as conn:
        assert pending_count(conn) == report["pending"]

    second = relay(env)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert json.loads(out) == {"published": EVENTS - report["published"], "pending": 0, "error": None}
    assert message_ids(amqp_uri, EVENTS) == [e.id for e in events]  # every event once, in order
    assert depth(amqp_uri) == 0


def test_a_relay_the_broker_cuts_off_mid_way_reports_what_it_confirmed(sqlite_engine, amqp_uri, tmp_path):
    """RabbitMQ closes the relay's channel mid-batch (its events exchange deleted, as definitions reset
    would do): the count printed is what was confirmed before (it said 0); the rest goes next run."""
    events, env = filled_outbox(sqlite_engine, amqp_uri, tmp_path)
    first = relay(env)
    while depth(amqp_uri) <= BATCH:  # the first batch confirmed, the second on its way
        if first.poll() is not None:
            pytest.fail(f"the relay ended before it could be cut off: {first.communicate()}")
        time.sleep(0.02)
    vhost = urllib.parse.quote(parse_amqp_uri(amqp_uri).virtual_host, safe="")
    rabbit_api("DELETE", f"/api/exchanges/{vhost}/{EVENTS_EXCHANGE}")
    out, err = first.communicate(timeout=60)
    report = json.loads(out)
    assert first.returncode == 1 and "closed" in report["error"], (out, err)
    assert BATCH <= report["published"] < EVENTS, report  # the first batch and what else was confirmed
    assert report["pending"] == EVENTS - report["published"]
    received = depth(amqp_uri)
    assert report["published"] <= received  # and perhaps some of the cut batch, unconfirmed

    conn = connect(amqp_uri)  # provisioning binds its queue again when it starts, as here
    declare_consumer(conn.channel(), "provisioning", list(subscriptions()["provisioning"]))
    conn.close()
    second = relay(env)
    out, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert json.loads(out) == {"published": EVENTS - report["published"], "pending": 0, "error": None}
    got = message_ids(amqp_uri, EVENTS + received - report["published"])
    ids = [e.id for e in events]
    again = received - report["published"]  # sent twice: consumers skip them by id
    assert got == ids[:report["published"] + again] + ids[report["published"]:]
