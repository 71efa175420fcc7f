"""The usage statistics' share of data-subject requests.

Usage never stores a person's id. While a month is open, its activity rows name people by a keyed
pseudonym (`rules/pseudonyms.py`) whose key is destroyed when the month closes; after that no one can
tell which rows were whose, and the aggregates count people without naming any.

- `export(conn, tenant, jointure)`: the open months' rows under the person's pseudonym (recomputed with
  the month's key while it exists), and what cannot be given: closed months hold nothing linkable;
- `erase(conn, request)`: those open months' rows; nothing else can be, or needs to be;
- `consumer(tenant)`: the queue `relais.q.usage-subject` (relais.subject.events).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, delete, select

from relais.runtime import Consumer
from relais.subject.events import Erased, ErasureRequest, consumer_name, erasure_handler

from .adapters.tables import usage_activity as a
from .adapters.tables import usage_period as p
from .rules.pseudonyms import pseudonym

SERVICE = "usage"
UNLINKABLE = ("closed months: their pseudonym keys are destroyed, so no row can be linked to anyone, and "
              "the statistics count people without naming them; nothing about the person can be given or erased")


def _open_pseudonyms(conn: Connection, tenant: str, jointure: str) -> dict[str, str]:
    """Open period -> the person's pseudonym in it."""
    return {r.period: pseudonym(r.pseudonym_key, tenant, jointure) for r in conn.execute(
        select(p.c.period, p.c.pseudonym_key).where(p.c.tenant == tenant, p.c.pseudonym_key.is_not(None)))}


def export(conn: Connection, tenant: str, jointure: str) -> dict[str, Any]:
    rows = []
    for period, name in sorted(_open_pseudonyms(conn, tenant, jointure).items()):
        rows += [{"period": period, "day": r.day.isoformat(), "kind": r.kind, "structure": r.structure,
                  "profile": r.profile, "level": r.level, "resource": r.resource, "count": r.count}
                 for r in conn.execute(select(a).where(a.c.tenant == tenant, a.c.period == period,
                                                       a.c.pseudonym == name).order_by(a.c.day))]
    return {"open_months_activity": rows,
            "note": "open months: activity under a pseudonym whose key is destroyed when the month closes; "
                    + UNLINKABLE}


def erase(conn: Connection, request: ErasureRequest) -> Erased:
    n = 0
    for period, name in _open_pseudonyms(conn, request.tenant, request.person).items():
        n += conn.execute(delete(a).where(a.c.tenant == request.tenant, a.c.period == period,
                                          a.c.pseudonym == name)).rowcount
    return Erased({"open_months_activity": n}, (UNLINKABLE,))


def consumer(tenant: str) -> Consumer:
    return Consumer(consumer_name(SERVICE), erasure_handler(SERVICE, tenant, erase), batch_size=1)
