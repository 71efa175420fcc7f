"""The erasure audit trail: a request recorded with the event that carries it, confirmations as they come.

`record_request` writes the request's row and its `subject.erasure.requested` event in one
transaction (the event reaches the bus by the outbox). `record_confirmation` handles the consumer of
`subject.erasure.confirmed` (queue `relais.q.subject`), which `relais subject erase` and
`relais subject status` run while they wait: each confirmation is recorded once (idempotent on the
event id and on (request, service)), and the request is complete when every expected service has
confirmed.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, insert, select, update

from relais.bus.outbox import add_events

from .events import ErasureRequest, request_event
from .tables import subject_confirmation as conf_t
from .tables import subject_request as req_t

CONSUMER = "subject"  # queue relais.q.subject: the confirmations


class UnknownRequest(LookupError):
    pass


def record_request(conn: Connection, request: ErasureRequest, *, actor: str, services: Sequence[str]) -> None:
    conn.execute(insert(req_t).values(
        request_id=request.request_id, kind="erase", tenant=request.tenant, subject_hash=request.subject_hash,
        actor=actor, services=json.dumps(sorted(services)), requested_at=datetime.now(UTC)))
    add_events(conn, [request_event(request)])


def record_confirmation(event: dict[str, Any], conn: Connection) -> None:
    """The handler of `subject.erasure.confirmed`: one row per (request, service), the first one kept."""
    p = event["payload"]
    request = conn.execute(select(req_t.c.services, req_t.c.completed_at)
                           .where(req_t.c.request_id == p["request_id"])).first()
    if request is None:
        raise UnknownRequest(f"confirmation {event['id']} from {p['service']} names request {p['request_id']}, "
                             "which this database did not record (another deployment's?)")
    done = conn.execute(select(conf_t.c.service).where(conf_t.c.request_id == p["request_id"])).scalars().all()
    now = datetime.now(UTC)
    if p["service"] not in done:
        conn.execute(insert(conf_t).values(request_id=p["request_id"], service=p["service"], confirmed_at=now,
                                           erased=json.dumps(p["erased"], sort_keys=True),
                                           notes=json.dumps(p["notes"], ensure_ascii=False)))
        done = [*done, p["service"]]
    if request.completed_at is None and set(json.loads(request.services)) <= set(done):
        conn.execute(update(req_t).where(req_t.c.request_id == p["request_id"]).values(completed_at=now))


def status(conn: Connection, request_id: str) -> dict[str, Any]:
    """The request as the audit trail has it: who asked, when, who confirmed what, who has not yet."""
    row = conn.execute(select(req_t).where(req_t.c.request_id == request_id)).first()
    if row is None:
        raise UnknownRequest(f"no subject request {request_id} in this database")
    confirmed = {r.service: {"confirmed_at": _iso(r.confirmed_at), "erased": json.loads(r.erased),
                             "notes": json.loads(r.notes)}
                 for r in conn.execute(select(conf_t).where(conf_t.c.request_id == request_id))}
    expected = json.loads(row.services)
    return {"request_id": row.request_id, "kind": row.kind, "tenant": row.tenant, "subject_hash": row.subject_hash,
            "actor": row.actor, "requested_at": _iso(row.requested_at), "completed_at": _iso(row.completed_at),
            "services": expected, "confirmed": confirmed,
            "waiting_for": [s for s in expected if s not in confirmed]}


def requests_for(conn: Connection, subject_hash: str) -> list[str]:
    """The ids of the requests recorded for a person, oldest first."""
    return list(conn.execute(select(req_t.c.request_id).where(req_t.c.subject_hash == subject_hash)
                             .order_by(req_t.c.requested_at)).scalars())


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    return (value if value.tzinfo else value.replace(tzinfo=UTC)).isoformat()
