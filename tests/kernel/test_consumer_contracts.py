"""Consumers check every payload against its contract, on the real RabbitMQ: what breaks it is
dead-lettered naming the field (never the value) and applied nowhere, the rest of its batch is applied,
and an event of a type the consumer does not receive is dead-lettered, not recorded as handled."""

from __future__ import annotations

import amqp
from sqlalchemy import Column, MetaData, String, Table, select

from relais.bus.consumer import ERROR_HEADER, EventConsumer
from relais.bus.envelope import Event
from relais.bus.publisher import ConfirmedPublisher, OutgoingMessage
from relais.bus.tables import processed_events
from relais.bus.topology import consumer_queues, declare_consumer
from relais.config import parse_amqp_uri

BINDINGS = ["directory.person.*", "directory.mef.*"]
PERSON = {"jointure": "J1", "category": "Eleve", "profiles": ["National_ELV"], "last_name": "Lefebvre",
          "first_name": "Maëlys", "title": None, "birth_date": "2010-12-31", "email": None, "ine": None,
          "struct_rattach_id": None, "structure": "S1", "mef": None,
          "memberships": [{"kind": "structure", "structure": "S1"}]}

stored_rows = MetaData()
stored = Table("test_stored_person", stored_rows, Column("event_id", String(36), primary_key=True),
               Column("jointure", String(40)))


def person_created(jointure: str, **change) -> Event:
    return Event(type="directory.person.created", payload={"person": {**PERSON, "jointure": jointure, **change}},
                 source="relais.directory", tenant="t", correlation_id="c")


def faulty_events() -> dict[str, Event]:
    """The outside check's faulty events (issue 16), by the reason each must be dead-lettered with."""
    extra = person_created("J-extra-payload")
    extra.payload["is_admin"] = True
    return {
        "payload.person.profiles: must be array": person_created("J-profiles", profiles="National_ELV"),
        "payload.person.birth_date: must match pattern": person_created("J-date", birth_date="31/12/2010"),
        "payload.person: additional property is_admin not allowed": person_created("J-admin", is_admin=True),
        "payload: additional property is_admin not allowed": extra,
    }


def make_consumer(engine, name: str, batches: list[int]) -> EventConsumer:
    stored_rows.create_all(engine)

    def one(event, conn):
        conn.execute(stored.insert().values(event_id=event["id"], jointure=event["payload"]["person"]["jointure"]))

    def many(events, conn):
        batches.append(len(events))
        for event in events:
            one(event, conn)

    return EventConsumer(name, BINDINGS, one, engine, retry_delays_ms=(100,), batch_handler=many)


def stored_jointures(engine) -> set[str]:
    with engine.connect() as conn:
        return {j for (j,) in conn.execute(select(stored.c.jointure))}


def handled_ids(engine, name: str) -> set[str]:
    with engine.connect() as conn:
        return {i for (i,) in conn.execute(select(processed_events.c.event_id)
                                           .where(processed_events.c.consumer == name))}


def test_a_batch_dead_letters_only_its_faulty_events_naming_the_field(engine):
    batches: list[int] = []
    consumer = make_consumer(engine, "contracts-batch", batches)
    faulty = faulty_events()
    good = [person_created("J-good-1"), person_created("J-good-2")]
    unknown = Event(type="directory.person.promoted", payload={"jointure": "J-x"}, source="relais.directory",
                    tenant="t", correlation_id="c")  # no such type in the contracts
    not_mine = Event(type="sso.logout", source="relais.sso", tenant="t", correlation_id="c",
                     payload={"session": "s", "person": "J-y", "reason": "user", "services": 0})  # not received here
    events = [good[0], *faulty.values(), unknown, not_mine, good[1]]
    outcomes = consumer.handle_many([(e.to_json(), 0) for e in events])
    assert [o.status for o in outcomes] == ["handled"] + ["dead"] * 6 + ["handled"]
    assert batches == [2]  # the good ones in one transaction, the batch path kept
    for reason, outcome in zip(faulty, outcomes[1:5], strict=True):
        assert outcome.reason is not None and outcome.reason.startswith(
            f"breaks the contract of directory.person.created: {reason}"), outcome.reason
        assert "31/12/2010" not in outcome.reason and "National_ELV" not in outcome.reason
    assert outcomes[5].reason == ("event type directory.person.promoted is not one consumer contracts-batch "
                                  "receives (contracts/asyncapi.yaml)")
    assert outcomes[6].reason is not None and outcomes[6].reason.startswith("event type sso.logout is not one")
    assert stored_jointures(engine) == {"J-good-1", "J-good-2"}
    assert handled_ids(engine, "contracts-batch") == {good[0].id, good[1].id}  # the dead ones not recorded
    # One by one (a batch of one), the same verdicts.
    assert consumer.handle(person_created("J-alone", birth_date="31/12/2010").to_json()).reason == (
        "breaks the contract of directory.person.created: payload.person.birth_date: must match pattern "
        "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")
    assert consumer.handle(unknown.to_json()).status == "dead"
    assert stored_jointures(engine) == {"J-good-1", "J-good-2"}


def test_through_rabbitmq_faulty_events_go_to_the_dead_letter_queue_and_the_good_one_is_applied(engine, amqp_uri):
    batches: list[int] = []
    name = "contracts-broker"
    consumer = make_consumer(engine, name, batches)
    conn = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs())
    conn.connect()
    declare_consumer(conn.channel(), name, BINDINGS, (100,))
    conn.close()
    faulty = faulty_events()
    good = person_created("J-good")
    unknown = Event(type="directory.mef.renamed", payload={"code": "1"}, source="relais.directory", tenant="t",
                    correlation_id="c")
    events = [*faulty.values(), good, unknown]
    with ConfirmedPublisher(amqp_uri) as pub:
        pub.publish(OutgoingMessage(e.type, e.to_json(), e.id, e.type) for e in events)
    assert consumer.run(amqp_uri, max_messages=len(events), idle_timeout=10) == len(events)
    assert stored_jointures(engine) == {"J-good"}
    assert handled_ids(engine, name) == {good.id}
    conn = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs())
    conn.connect()
    channel = conn.channel()
    dead = {}
    while (m := channel.basic_get(consumer_queues(name).dead_letter, no_ack=True)) is not None:
        dead[m.properties["message_id"]] = str(m.properties["application_headers"][ERROR_HEADER])
    conn.close()
    assert set(dead) == {e.id for e in [*faulty.values(), unknown]}
    for reason, event in faulty.items():
        assert reason in dead[event.id], dead[event.id]
        assert not any(value in dead[event.id] for value in ("31/12/2010", "National_ELV", "Lefebvre", "Maëlys"))
    assert "event type directory.mef.renamed is not one consumer contracts-broker receives" in dead[unknown.id]
