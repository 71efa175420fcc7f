"""Provisioning's share of data-subject requests: the grants one person holds and why, and erasing them.

- `export(conn, jointure)`: the directory view provisioning keeps of the person, their grants with
  causes, refusals and history (`handlers.explain`);
- `erase(conn, request)`: those rows, the person's id in other records (a pupil's relatives) and in
  causes (`manual:<jointure>`, who granted a manual grant). Seats the person held are free at once;
  accounts a quota refused there get them at the next evaluation (an import, a rule load, a full
  evaluation), and the usage statistics' licence counts follow at the next grant event of that pool;
- `consumer(tenant)`: the queue `relais.q.provisioning-subject` (relais.subject.events).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection

from relais.runtime import Consumer
from relais.subject.events import Erased, ErasureRequest, consumer_name, erasure_handler

from .adapters import subject_rows
from .handlers.explain import explain

SERVICE = "provisioning"


def export(conn: Connection, jointure: str) -> dict[str, Any] | None:
    view = subject_rows.record(conn, jointure)
    why = explain(conn, jointure)
    if view is None and not (why["grants"] or why["refusals"] or why["history"]):
        return None
    return {"directory_view": view, **why}


def erase(conn: Connection, request: ErasureRequest) -> Erased:
    counts = subject_rows.delete_person(conn, request.person)
    counts["records_scrubbed"] = subject_rows.scrub_records(
        conn, request.person, subject_rows.records_naming(conn, request.person))
    counts["causes_scrubbed"] = subject_rows.scrub_causes(conn, request.person)
    return Erased(counts, ("seats the person held are offered to refused accounts at the next evaluation",))


def consumer(tenant: str) -> Consumer:
    return Consumer(consumer_name(SERVICE), erasure_handler(SERVICE, tenant, erase), batch_size=1)
