"""The rows that hold one person, for a subject request (access, portability, erasure).

A person is in their own `dir_person` row and `dir_membership` rows, and in the records of the
persons linked to them (a pupil's record names their relatives: `memberships` and the raw
`ENTElevePersRelEleve` values), in the current import's seen keys, and possibly in an import
report (a rejected or warned record's id).
"""
from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, update

from . import tables

p, m = tables.person, tables.membership


def own_row(conn: Connection, jointure: str) -> dict[str, Any] | None:
    row = conn.execute(select(p.c.data).where(p.c.jointure == jointure)).first()
    return orjson.loads(row.data) if row else None


def memberships(conn: Connection, jointure: str) -> list[dict[str, Any]]:
    rows = conn.execute(select(m.c.kind, m.c.structure, m.c.code, m.c.subject, m.c.other, m.c.legal_guardian)
                        .where(m.c.person == jointure).order_by(m.c.id))
    return [dict(r._mapping) for r in rows]


def linked(conn: Connection, jointure: str) -> list[str]:
    """The persons whose records name `jointure` (as a relative, either way)."""
    return sorted(set(conn.execute(select(m.c.person).where(m.c.other == jointure)).scalars())
                  | set(conn.execute(select(m.c.other).where(m.c.person == jointure, m.c.other.is_not(None)))
                        .scalars()))


def display(conn: Connection, jointures: list[str]) -> list[dict[str, Any]]:
    """Who they are, as the person asking may see them: jointure, category, names."""
    out = []
    for r in conn.execute(select(p.c.jointure, p.c.data).where(p.c.jointure.in_(jointures)).order_by(p.c.jointure)):
        rec = orjson.loads(r.data)["record"]
        out.append({"jointure": r.jointure, "category": rec.get("category"), "last_name": rec.get("last_name"),
                    "first_name": rec.get("first_name")})
    return out


def delete_person(conn: Connection, jointure: str) -> dict[str, int]:
    return {
        "person": conn.execute(delete(p).where(p.c.jointure == jointure)).rowcount,
        "memberships": conn.execute(delete(m).where(m.c.person == jointure)).rowcount,
        "seen_keys": conn.execute(delete(tables.seen).where(tables.seen.c.key == jointure)).rowcount,
    }


def scrub_links(conn: Connection, jointure: str, others: list[str]) -> int:
    """Remove `jointure` from the records of `others` and their membership rows. The rows are marked
    for a full re-read (hashes emptied): if the AAF still links them, the next import restores the link."""
    scrubbed = 0
    for r in conn.execute(select(p.c.jointure, p.c.data).where(p.c.jointure.in_(others))).all():
        data = orjson.loads(r.data)
        rec = data["record"]
        rec["memberships"] = [x for x in rec.get("memberships", [])
                              if not (x.get("kind") == "relative" and x.get("person") == jointure)]
        data["attributes"] = {k: [v for v in vs if v != jointure and v.split("$", 1)[0] != jointure]
                              for k, vs in data.get("attributes", {}).items()}
        conn.execute(update(p).where(p.c.jointure == r.jointure)
                     .values(data=orjson.dumps(data), raw_hash=None, record_hash=""))
        scrubbed += 1
    conn.execute(delete(m).where(m.c.other == jointure))
    return scrubbed


def scrub_reports(conn: Connection, jointure: str) -> int:
    """Import reports naming `jointure` (a rejected or warned record) keep the line, without the id."""
    t = tables.import_run
    n = 0
    for r in conn.execute(select(t.c.id, t.c.report).where(t.c.report.contains(jointure))).all():
        report = _without(orjson.loads(r.report), re.compile(rf"(?<![0-9A-Za-z]){re.escape(jointure)}(?![0-9A-Za-z])"))
        conn.execute(update(t).where(t.c.id == r.id).values(report=orjson.dumps(report).decode()))
        n += 1
    return n


def _without(value: Any, jointure: re.Pattern[str]) -> Any:
    """`value` with the jointure, as a word of its own (not inside a longer number or date), replaced."""
    if isinstance(value, dict):
        return {k: _without(v, jointure) for k, v in value.items()}
    if isinstance(value, list):
        return [_without(v, jointure) for v in value]
    if isinstance(value, str):
        return jointure.sub("(erased)", value)
    return value


def mark_erased(conn: Connection, subject_hash: str, request_id: str) -> None:
    e = tables.erased
    conn.execute(delete(e).where(e.c.subject_hash == subject_hash))
    conn.execute(insert(e).values(subject_hash=subject_hash, request_id=request_id, erased_at=datetime.now(UTC)))


def pending_marks(conn: Connection) -> dict[str, str]:
    """subject hash -> request id, for the erased persons no import has brought back yet."""
    e = tables.erased
    return {r.subject_hash: r.request_id for r in conn.execute(
        select(e.c.subject_hash, e.c.request_id).where(e.c.returned_at.is_(None)))}


def all_jointures(conn: Connection) -> list[str]:
    return list(conn.execute(select(p.c.jointure)).scalars())


def mark_returned(conn: Connection, subject_hash: str, import_id: str) -> None:
    e = tables.erased
    conn.execute(update(e).where(e.c.subject_hash == subject_hash)
                 .values(returned_at=datetime.now(UTC), returned_import=import_id))


def count_marks(conn: Connection) -> int:
    return int(conn.execute(select(func.count()).select_from(tables.erased)).scalar_one())


