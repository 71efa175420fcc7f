"""Prometheus metrics: the bus counts consumers and the outbox, committed events feed the domain counters."""

from __future__ import annotations

import urllib.request
from datetime import UTC, datetime

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import Column, MetaData, String, Table, text

from relais.bus.consumer import EventConsumer
from relais.bus.envelope import Event
from relais.bus.outbox import OutboxRelay, add_events, pending_count
from relais.bus.publisher import ConfirmedPublisher, PublishError
from relais.db import writer
from relais.ops import metrics
from relais.ops.server import OpsApp, serve_ops


def value(name: str, **labels) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def ev(code: str, type_: str = "directory.mef.created", correlation: str = "corr-1") -> Event:
    return Event(type=type_, payload={"mef": {"code": code, "label": None}}, source="relais.directory",
                 tenant="t", correlation_id=correlation)


marks = MetaData()
mark = Table("test_ops_mark", marks, Column("event_id", String(36), primary_key=True))


def test_consumer_outcomes_failures_and_latency_are_counted(engine):
    marks.create_all(engine)

    def handler(event, conn):
        if event["payload"]["mef"]["code"] == "bad":
            raise ValueError("cannot")
        conn.execute(mark.insert().values(event_id=event["id"]))

    consumer = EventConsumer("ops-metrics", ["directory.#"], handler, engine, retry_delays_ms=(10,),
                             batch_handler=lambda events, conn: [handler(e, conn) for e in events])
    name = "ops-metrics"
    outcomes = ("handled", "duplicate", "retry", "dead")
    before = {o: value("relais_messages_total", consumer=name, outcome=o) for o in outcomes}
    batches_before = value("relais_handler_duration_seconds_count", consumer=name, kind="batch")
    events_before = value("relais_handler_duration_seconds_count", consumer=name, kind="event")
    failures_before = value("relais_handler_failures_total", consumer=name, error="ValueError")

    good = [ev(str(i)) for i in range(4)]
    bad = ev("bad")
    outcomes = consumer.handle_many([(e.to_json(), 0) for e in good])  # one clean batch
    assert [o.status for o in outcomes] == ["handled"] * 4
    outcomes = consumer.handle_many([(good[0].to_json(), 0), (bad.to_json(), 0), (b"not json", 0)])
    assert [o.status for o in outcomes] == ["duplicate", "retry", "dead"]
    assert consumer.handle(bad.to_json(), 1).status == "dead"  # out of retries

    after = {o: value("relais_messages_total", consumer=name, outcome=o) for o in before}
    assert {o: after[o] - before[o] for o in after} == {"handled": 4, "duplicate": 1, "retry": 1, "dead": 2}
    assert value("relais_handler_duration_seconds_count", consumer=name, kind="batch") - batches_before == 1
    # the second batch failed: the bad event on its own (the duplicate calls no handler), then again
    assert value("relais_handler_duration_seconds_count", consumer=name, kind="event") - events_before == 2
    # the failing batch, the bad event alone, and the bad event again
    assert value("relais_handler_failures_total", consumer=name, error="ValueError") - failures_before == 3


def test_events_count_when_their_transaction_commits_never_when_it_rolls_back(engine):
    before = value("relais_events_emitted_total", type="provisioning.grant.created")
    granted = value("relais_provisioning_grants_total", action="granted")
    grant = Event(type="provisioning.grant.created", payload={}, source="relais.provisioning", tenant="t",
                  correlation_id="c")
    with pytest.raises(RuntimeError):
        with writer(engine).begin() as conn:
            add_events(conn, [grant], validate=False)
            raise RuntimeError("rolled back")
    assert value("relais_events_emitted_total", type="provisioning.grant.created") == before
    with writer(engine).begin() as conn:
        add_events(conn, [Event(**{**grant.to_dict(), "id": "a" * 36})], validate=False)
        savepoint = conn.begin_nested()
        add_events(conn, [Event(**{**grant.to_dict(), "id": "b" * 36})], validate=False)
        savepoint.rollback()  # what a savepoint wrote and rolled back does not count
        with conn.begin_nested():
            add_events(conn, [Event(**{**grant.to_dict(), "id": "c" * 36})], validate=False)
        assert value("relais_events_emitted_total", type="provisioning.grant.created") == before  # not yet
    assert value("relais_events_emitted_total", type="provisioning.grant.created") - before == 2
    assert value("relais_provisioning_grants_total", action="granted") - granted == 2
    with engine.connect() as conn:
        assert pending_count(conn) == 2


def test_an_sso_login_counts_once_committed(sqlite_engine):
    from services.sso.sessions import open_session

    before = value("relais_sso_logins_total", result="succeeded")
    with writer(sqlite_engine).begin() as conn:
        open_session(conn, person_jointure="2605692", auth_source="educonnect", national_id=None, attributes={},
                     now=datetime.now(UTC), tenant="t")
    assert value("relais_sso_logins_total", result="succeeded") - before == 1


def test_the_relay_counts_what_the_broker_confirmed_and_its_failures(sqlite_engine, amqp_uri):
    with writer(sqlite_engine).begin() as conn:
        add_events(conn, [ev(str(i)) for i in range(50)])
    published, failures = value("relais_outbox_published_total"), value("relais_outbox_publish_failures_total")
    down = OutboxRelay(sqlite_engine, lambda: ConfirmedPublisher("amqp://guest:guest@127.0.0.1:1/", connect_timeout=2))
    with pytest.raises(PublishError):
        down.drain()
    assert value("relais_outbox_publish_failures_total") - failures == 1
    relay = OutboxRelay(sqlite_engine, lambda: ConfirmedPublisher(amqp_uri))
    assert relay.drain() == 50
    relay.close()
    assert value("relais_outbox_published_total") - published == 50


def test_metrics_endpoint_serves_the_backlog_read_at_scrape_time(sqlite_engine):
    def backlog() -> int:
        with sqlite_engine.connect() as conn:
            return pending_count(conn)

    collector = metrics.watch_outbox(backlog)
    server = serve_ops(OpsApp("ops-test", {}), host="127.0.0.1", port=0)
    try:
        def scrape() -> dict[str, float]:
            body = urllib.request.urlopen(f"http://127.0.0.1:{server.port}/metrics", timeout=5).read().decode()
            return {s.name: s.value for f in text_string_to_metric_families(body) for s in f.samples
                    if not s.labels}

        assert scrape()["relais_outbox_backlog"] == 0
        with writer(sqlite_engine).begin() as conn:
            add_events(conn, [ev(str(i)) for i in range(7)])
        assert scrape()["relais_outbox_backlog"] == 7
        with writer(sqlite_engine).begin() as conn:
            conn.execute(text("DROP TABLE relais_outbox"))
        assert "relais_outbox_backlog" not in scrape()  # left out, the scrape itself still answers
    finally:
        server.stop()
        REGISTRY.unregister(collector)


def test_a_consumer_exports_every_outcome_at_zero_before_its_first_message(sqlite_engine):
    """An alert on increase(relais_messages_total{outcome="dead"}[10m]) sees the first dead letter only if
    the series existed before it (at 0): Prometheus takes a series that appears at 1 for no increase."""
    EventConsumer("metrics-zero-probe", [], lambda event, conn: None, sqlite_engine)
    exposition = {s.labels.get("outcome"): s.value
                  for family in text_string_to_metric_families(generate_latest(REGISTRY).decode())
                  for s in family.samples
                  if s.name == "relais_messages_total" and s.labels.get("consumer") == "metrics-zero-probe"}
    assert exposition == {"handled": 0.0, "duplicate": 0.0, "retry": 0.0, "dead": 0.0}
    assert REGISTRY.get_sample_value("relais_messages_redelivered_total", {"consumer": "metrics-zero-probe"}) == 0.0
