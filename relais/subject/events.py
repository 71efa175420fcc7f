"""The erasure request every service receives, and the confirmation each sends back.

`subject.erasure.requested` carries the jointure (each service must find the person) and the
keyed hash; it lives in the consumers' queues only until each has handled it (acknowledged after
its transaction commits), so no copy stays on the bus once every service confirmed.
`subject.erasure.confirmed` names the request, the service and what it erased (counts), never
the person: the audit trail keeps it (`audit`).

A service erases by running `erasure_handler(service, tenant, erase)` as the consumer `<service>-subject`: the queue
`relais.q.<service>-subject`, idempotent on the event id, dead-lettering what breaks the contract
(`relais.bus.consumer`). `erase(conn, request)` is the service's own use case, in the consumer's
transaction, with the confirmation written to the outbox in the same transaction: a service has
confirmed exactly when its erasure committed.
"""
from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection

from relais.bus.envelope import Event
from relais.bus.outbox import add_events

REQUESTED = "subject.erasure.requested"
CONFIRMED = "subject.erasure.confirmed"
SOURCE = "relais.subject"
SUFFIX = "-subject"  # a service's erasure consumer: `<service>-subject`, queue relais.q.<service>-subject


class ErasureRequestError(ValueError):
    """An erasure request this service cannot act on (another tenant's); names the event, not the person."""


@dataclass(frozen=True)
class ErasureRequest:
    request_id: str
    person: str  # the AAF jointure
    subject_hash: str  # relais.subject.keys.subject_hash of the person
    tenant: str
    event_id: str = ""


@dataclass(frozen=True)
class Erased:
    """What a service erased: counts by kind of record (`{"sessions": 3}`), and notes for the audit trail."""

    counts: Mapping[str, int] = field(default_factory=dict)
    notes: tuple[str, ...] = ()


EraseFn = Callable[[Connection, ErasureRequest], Erased]


def new_request(person: str, subject_hash: str, tenant: str) -> ErasureRequest:
    return ErasureRequest(str(uuid.uuid4()), person, subject_hash, tenant)


def request_event(request: ErasureRequest) -> Event:
    return Event(type=REQUESTED, source=SOURCE, tenant=request.tenant, correlation_id=request.request_id,
                 payload={"request_id": request.request_id, "person": request.person,
                          "subject_hash": request.subject_hash})


def parse_request(event: Mapping[str, Any]) -> ErasureRequest:
    """The request an event (already checked against its contract) carries."""
    p = event["payload"]
    return ErasureRequest(p["request_id"], p["person"], p["subject_hash"], event["tenant"], event["id"])


def confirmation_event(service: str, request: ErasureRequest, erased: Erased) -> Event:
    return Event(type=CONFIRMED, source=f"relais.{service}", tenant=request.tenant,
                 correlation_id=request.request_id, causation_id=request.event_id or None,
                 payload={"request_id": request.request_id, "service": service,
                          "subject_hash": request.subject_hash, "erased": dict(erased.counts),
                          "notes": list(erased.notes)})


def consumer_name(service: str) -> str:
    return service + SUFFIX


def erasure_handler(service: str, tenant: str, erase: EraseFn) -> Callable[[dict[str, Any], Connection], None]:
    """The handler of `service`'s erasure consumer (`consumer_name(service)`): each request erases its data and
    is confirmed, in the consumer's transaction."""

    def handle(event: dict[str, Any], conn: Connection) -> None:
        if event.get("tenant") != tenant:
            raise ErasureRequestError(f"{event.get('type')} {event.get('id')} is for tenant {event.get('tenant')!r}; "
                                      f"this {service} serves {tenant!r}")
        request = parse_request(event)
        add_events(conn, [confirmation_event(service, request, erase(conn, request))])

    return handle
