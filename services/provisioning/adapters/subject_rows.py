"""The rows that hold one person, for a subject request: their directory view, grants, refusals and
history, the records of others that name them (a pupil's relatives), and causes naming them (a manual
grant's `manual:<jointure>`, who granted it)."""
from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import Connection, LargeBinary, delete, func, literal, select, update

from . import tables as t


def record(conn: Connection, jointure: str) -> dict[str, Any] | None:
    row = conn.execute(select(t.person.c.data).where(t.person.c.jointure == jointure)).first()
    return orjson.loads(row.data) if row else None


def delete_person(conn: Connection, jointure: str) -> dict[str, int]:
    return {
        "person": conn.execute(delete(t.person).where(t.person.c.jointure == jointure)).rowcount,
        "grants": conn.execute(delete(t.grant).where(t.grant.c.person == jointure)).rowcount,
        "refusals": conn.execute(delete(t.refusal).where(t.refusal.c.person == jointure)).rowcount,
        "history": conn.execute(delete(t.history).where(t.history.c.person == jointure)).rowcount,
    }


def records_naming(conn: Connection, jointure: str) -> list[str]:
    """The persons whose record holds `jointure` (as bytes: a scan, for a rare request)."""
    needle = jointure.encode()
    if conn.dialect.name == "postgresql":  # bytea
        where = func.position(literal(needle, LargeBinary).op("IN")(t.person.c.data)) > 0
    else:
        where = func.instr(t.person.c.data, needle) > 0
    return list(conn.execute(select(t.person.c.jointure).where(where)).scalars())


def scrub_records(conn: Connection, jointure: str, others: list[str]) -> int:
    for other in others:
        data = orjson.loads(conn.execute(select(t.person.c.data).where(t.person.c.jointure == other)).scalar_one())
        data["memberships"] = [m for m in data.get("memberships", [])
                               if not (m.get("kind") == "relative" and m.get("person") == jointure)]
        conn.execute(update(t.person).where(t.person.c.jointure == other).values(data=orjson.dumps(data)))
    return len(others)


def scrub_causes(conn: Connection, jointure: str) -> int:
    """Causes naming `jointure` (who granted a manual grant) keep their kind, without the id."""
    n = 0
    for table in (t.grant, t.history):
        n += conn.execute(update(table).where(table.c.cause.contains(jointure))
                          .values(cause=func.replace(table.c.cause, jointure, "(erased)"))).rowcount
    return n
