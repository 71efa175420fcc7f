"""The directory's share of data-subject requests: what it holds about one person, and erasing it.

- `export(conn, jointure)`: the person's record with its raw AAF attributes, memberships, the
  structures they belong to, and the persons linked to them (relatives, children), for access and
  portability (GDPR articles 15 and 20);
- `erase(conn, request)`: the person's rows, their links in the records of others, their id in
  import reports; a mark (keyed hash, request id) is kept so that the next import that brings them
  back (the AAF still lists them: the academy's export is the source, Relais cannot erase there)
  says so in its report (`importing/erased_returns.py`);
- `consumer(tenant)`: the queue `relais.q.directory-subject` (relais.subject.events).
"""
from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection

from relais.runtime import Consumer
from relais.subject.events import Erased, ErasureRequest, consumer_name, erasure_handler

from .adapters import queries, subject_rows

log = logging.getLogger(__name__)

SERVICE = "directory"


def export(conn: Connection, jointure: str) -> dict[str, Any] | None:
    """Everything the directory holds about `jointure`; None when it holds nothing."""
    own = subject_rows.own_row(conn, jointure)
    if own is None:
        return None
    rows = subject_rows.memberships(conn, jointure)
    structures = sorted({r["structure"] for r in rows if r["structure"]} | {own["record"].get("structure") or ""}
                        - {""})
    return {
        "record": own["record"],
        "aaf_attributes": own.get("attributes", {}),
        "memberships": rows,
        "structures": [s for key in structures if (s := queries.structure(conn, key)) is not None],
        "linked_persons": subject_rows.display(conn, subject_rows.linked(conn, jointure)),
    }


def erase(conn: Connection, request: ErasureRequest) -> Erased:
    person = request.person
    others = subject_rows.linked(conn, person)
    counts = subject_rows.delete_person(conn, person)
    counts["linked_records_scrubbed"] = subject_rows.scrub_links(conn, person, others)
    counts["import_reports_scrubbed"] = subject_rows.scrub_reports(conn, person)
    subject_rows.mark_erased(conn, request.subject_hash, request.request_id)
    log.info("subject request %s: erased from the directory (%d linked record(s) scrubbed)",
             request.request_id, counts["linked_records_scrubbed"])
    return Erased(counts, ("the next directory import brings the person back if the AAF export still lists "
                           "them; that import's report says so (a warning naming this request)",))


def consumer(tenant: str) -> Consumer:
    return Consumer(consumer_name(SERVICE), erasure_handler(SERVICE, tenant, erase), batch_size=1)
