"""The queries that load what provisioning's rules need, and store its configuration.

Reads of many accounts go through the driver (`rows_of`): a full evaluation
reads a million persons and their grants, and SQLAlchemy's row objects cost
more than the rules applied to them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import Connection, delete, func, insert, select, tuple_

from ..grants.catalogue import Resource, parse_catalogue
from ..grants.member import Key, Member
from ..grants.planning import Held
from ..grants.rules import RuleSet, parse_rules
from . import tables as t


def rows_of(conn: Connection, table: str, columns: str, keys: Sequence[str],
            span: tuple[str, str] | None = None, key: str = "person") -> Iterable[tuple]:
    """Rows of `table` whose `key` is one of `keys` (sorted), through the driver (PostgreSQL: `= ANY(array)`,
    SQLite: IN-lists of 500).

    `span` (first, last): the keys are every key of the table in that range (a
    chunk of a full evaluation), so one range scan replaces the IN-lists.
    """
    m = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    if span is not None:
        yield from conn.exec_driver_sql(f"SELECT {columns} FROM {table} WHERE {key} >= {m} AND {key} <= {m}", span)
        return
    if conn.dialect.name == "postgresql":  # the keys as one array: one statement whatever their number
        yield from conn.exec_driver_sql(f"SELECT {columns} FROM {table} WHERE {key} = ANY(%s)", (list(keys),))
        return
    for i in range(0, len(keys), 500):
        chunk = tuple(keys[i:i + 500])
        yield from conn.exec_driver_sql(
            f"SELECT {columns} FROM {table} WHERE {key} IN ({', '.join([m] * len(chunk))})", chunk)


# -- the view of the directory -------------------------------------------------------------

def person_records(conn: Connection, jointures: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Jointure -> the directory Person record, for those of `jointures` in the view."""
    return {j: orjson.loads(data) for j, data in
            rows_of(conn, t.person.name, "jointure, data", sorted(set(jointures)), key="jointure")}


def uai_map(conn: Connection) -> dict[str, str]:
    """Structure jointure -> UAI."""
    return {j: u for j, u in conn.execute(select(t.structure.c.jointure, t.structure.c.uai)) if u}


def members(conn: Connection, jointures: Sequence[str], uai_of: dict[str, str],
            span: tuple[str, str] | None = None) -> dict[str, Member]:
    return {j: Member.from_record(orjson.loads(data), uai_of) for j, data in
            rows_of(conn, t.person.name, "jointure, data", jointures, span, key="jointure")}


def staff_records(conn: Connection) -> Iterator[tuple[str, dict[str, Any]]]:
    """(jointure, Person record) of every staff account (PersEducNat): where resource managers are found."""
    for j, data in conn.execute(select(t.person.c.jointure, t.person.c.data)
                                .where(t.person.c.category == "PersEducNat")):
        yield j, orjson.loads(data)


# -- configuration -------------------------------------------------------------------------

def catalogue(conn: Connection) -> dict[str, Resource]:
    row = conn.execute(select(t.config.c.data).where(t.config.c.name == "catalogue")).first()
    if row is None:
        return {}
    return {r.id: r for r in parse_catalogue(orjson.loads(row.data))}


def ruleset(conn: Connection) -> RuleSet:
    row = conn.execute(select(t.config.c.data).where(t.config.c.name == "rules")).first()
    return parse_rules(orjson.loads(row.data)) if row else RuleSet(())


def store_config(conn: Connection, name: str, document: dict[str, Any]) -> None:
    """Store one configuration document (`catalogue`, `rules`, `apps`) in place of the previous one."""
    conn.execute(delete(t.config).where(t.config.c.name == name))
    conn.execute(insert(t.config).values(name=name, data=orjson.dumps(document)))


# -- grants and refusals -------------------------------------------------------------------

def held_counts(conn: Connection) -> list[tuple[str, str, int]]:
    """(resource, UAI, licences held) of every licence pool holding some."""
    return [(res, uai, n) for res, uai, n in conn.execute(
        select(t.grant.c.resource, t.grant.c.structure, func.count()).group_by(t.grant.c.resource,
                                                                               t.grant.c.structure))]


def held_in(conn: Connection, key: Key) -> int:
    """Licences of one pool (resource, UAI) held."""
    res, uai = key
    return conn.execute(select(func.count()).select_from(t.grant).where(t.grant.c.resource == res,
                                                                        t.grant.c.structure == uai)).scalar_one()


def held_in_pools(conn: Connection, keys: Sequence[Key]) -> dict[Key, int]:
    """Licences held in each of these pools (resource, UAI): one statement per 500 pools, not one per pool."""
    out = dict.fromkeys(keys, 0)
    pool = tuple_(t.grant.c.resource, t.grant.c.structure)
    for i in range(0, len(keys), 500):
        for res, uai, n in conn.execute(select(t.grant.c.resource, t.grant.c.structure, func.count())
                                        .where(pool.in_(keys[i:i + 500]))
                                        .group_by(t.grant.c.resource, t.grant.c.structure)):
            out[(res, uai)] = n
    return out


def structures_holding(conn: Connection, resource: str) -> set[str]:
    """UAIs where `resource` is held.

    PostgreSQL reads every grant of the resource for a DISTINCT (hundreds of thousands: 45 ms for each
    batch of a consumer); there it skips from one UAI to the next along the pool index instead.
    """
    if conn.dialect.name == "postgresql":
        g = t.grant.name
        return {u for (u,) in conn.exec_driver_sql(
            f"WITH RECURSIVE s(uai) AS ((SELECT structure FROM {g} WHERE resource = %(r)s ORDER BY structure LIMIT 1)"
            f" UNION ALL SELECT (SELECT structure FROM {g} WHERE resource = %(r)s AND structure > s.uai"
            f" ORDER BY structure LIMIT 1) FROM s WHERE s.uai IS NOT NULL) SELECT uai FROM s WHERE uai IS NOT NULL",
            {"r": resource})}
    return {u for (u,) in conn.execute(select(t.grant.c.structure).where(t.grant.c.resource == resource).distinct())}


def held_grants(conn: Connection, jointures: Sequence[str],
                span: tuple[str, str] | None = None) -> dict[str, dict[Key, Held]]:
    """Jointure -> (resource, UAI) -> the grant held (`rows_of`'s `span`: a range of accounts)."""
    out: dict[str, dict[Key, Held]] = {}
    for j, res, uai, cause, after in rows_of(conn, t.grant.name, "person, resource, structure, cause, revoke_after",
                                             jointures, span):
        if isinstance(after, str):  # SQLite through the driver: text
            after = datetime.fromisoformat(after)
        out.setdefault(j, {})[(res, uai)] = Held(cause, aware(after))
    return out


def refusals_of(conn: Connection, jointures: Sequence[str],
                span: tuple[str, str] | None = None) -> dict[str, set[Key]]:
    """Jointure -> the pools where a quota refused them a grant, on record."""
    out: dict[str, set[Key]] = {}
    for j, r, u in rows_of(conn, t.refusal.name, "person, resource, structure", jointures, span):
        out.setdefault(j, set()).add((r, u))
    return out


def refused_in(conn: Connection, keys: Sequence[Key]) -> list[tuple[str, datetime]]:
    """(jointure, time of the refusal) of the refusals on record in these pools, oldest first."""
    pool = tuple_(t.refusal.c.resource, t.refusal.c.structure)
    return sorted(((j, at) for i in range(0, len(keys), 500) for j, at in conn.execute(
        select(t.refusal.c.person, t.refusal.c.at).where(pool.in_(keys[i:i + 500])))), key=lambda r: r[1])


def due_departures(conn: Connection, now: datetime) -> list[str]:
    """Accounts holding a grant whose departure grace period is over at `now`, sorted."""
    return sorted({j for (j,) in conn.execute(select(t.grant.c.person).where(
        t.grant.c.revoke_after.is_not(None), t.grant.c.revoke_after <= now))})


def everyone(conn: Connection) -> list[str]:
    """Every account of the view and every account holding a grant, sorted."""
    return sorted({j for (j,) in conn.execute(select(t.person.c.jointure))}
                  | {j for (j,) in conn.execute(select(t.grant.c.person).distinct())})


# -- time, as the drivers take and give it -------------------------------------------------

def aware(ts: datetime | None) -> datetime | None:
    """A timestamp read back, in UTC (SQLite gives them without their zone)."""
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


def stamp(conn: Connection, now: datetime) -> datetime | str:
    """`now` as the driver takes it on the bulk paths: SQLite gets SQLAlchemy's own text form."""
    if conn.dialect.name == "sqlite":
        return now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return now


def grant_cause(conn: Connection, person: str, resource: str, uai: str) -> str | None:
    """The cause of the grant of `resource` in `uai` that `person` holds, or None."""
    row = conn.execute(select(t.grant.c.cause).where(t.grant.c.person == person, t.grant.c.resource == resource,
                                                     t.grant.c.structure == uai)).first()
    return None if row is None else row.cause


def structure_uais(conn: Connection) -> set[str]:
    """The UAIs of the structures in the view."""
    return {u for (u,) in conn.execute(select(t.structure.c.uai)) if u}
