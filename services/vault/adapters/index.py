"""The vault's index, in SQL: item versions, tenant policy, blob-deletion guard, access log.

Every function takes a connection in the caller's transaction, so a use case composes them
atomically (the bus consumer's transaction, `Vault`'s, an erasure's).

**Blobs and the rows that reference them.** A blob may be deleted only when no row references
it (erasure, purge). A writer stores the blob *before* writing its row, so both sides
coordinate through `guard_blobs`: deleters hold it exclusively from reading the references to
committing, writers hold it shared from checking the blob is there to committing (PostgreSQL:
an advisory lock per tenant; SQLite: the write lock every writer transaction takes first). A
writer that uploaded before taking the guard compares `blob_epoch`, which every deleting
transaction increments, and checks its blob again only when it changed.
"""
from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from datetime import UTC, datetime

from sqlalchemy import Connection, and_, case, func, select, text, update

from relais.db import insert_or_update

from ..item_version import ItemVersion
from ..rules.access_log import FORGOTTEN_ON_ERASURE, entry
from ..rules.changes import NEW, Applied, plan_change
from ..rules.retention import in_force, purge_after
from .tables import vault_access_log as log_t
from .tables import vault_item_version as t
from .tables import vault_tenant

LOCK_CLASS = 0x5641554C  # "VAUL": the first key of the vault's advisory locks (PostgreSQL)


def _utc(value: datetime | None) -> datetime | None:
    """Aware UTC datetimes on both databases (SQLite gives back naive ones)."""
    return None if value is None else _aware(value)


def _aware(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _version(r) -> ItemVersion:
    return ItemVersion(r.tenant, r.person, r.vertical, r.item_id, r.version, r.content_sha256,
                       json.loads(r.metadata), _utc(r.purge_after), r.path, r.size, _utc(r.changed_at),
                       _utc(r.created_at))


def _item(tenant: str, person: str, vertical: str, item_id: str):
    return and_(t.c.tenant == tenant, t.c.person == person, t.c.vertical == vertical, t.c.item_id == item_id)


# -- item versions ---------------------------------------------------------------------------


def latest(conn: Connection, tenant: str, person: str, vertical: str, item_id: str) -> ItemVersion | None:
    row = conn.execute(select(t).where(_item(tenant, person, vertical, item_id))
                       .order_by(t.c.version.desc()).limit(1)).first()
    return _version(row) if row is not None else None


def append(conn: Connection, tenant: str, person: str, vertical: str, item_id: str, *, digest: str | None,
           metadata: dict, path: str | None, size: int | None, changed_at: datetime | None,
           purge_after: datetime | None = None, check_order: bool = True) -> Applied:
    """Add the item's next version unless `plan_change` says it is unchanged or stale.

    `check_order=False` stores `changed_at` without refusing a change older than the latest
    (a caller that did not get the time from the ENT). Two transactions adding the same version
    number collide on the primary key; the loser fails and is retried (the bus consumer does),
    and then sees the winner's version."""
    last = latest(conn, tenant, person, vertical, item_id)
    outcome = plan_change(last, digest, metadata, path, _utc(changed_at) if check_order else None)
    if outcome != NEW:
        return Applied(outcome, last)
    if digest is None and path is None and last is not None:
        path = last.path  # a tombstone says what was deleted
    now = datetime.now(UTC)
    v = ItemVersion(tenant, person, vertical, item_id, (last.version + 1) if last else 1, digest, metadata,
                    purge_after, path, size, _utc(changed_at), now)
    conn.execute(t.insert().values(
        tenant=tenant, person=person, vertical=vertical, item_id=item_id, version=v.version,
        content_sha256=digest, metadata=json.dumps(metadata, ensure_ascii=False, sort_keys=True),
        created_at=now, purge_after=purge_after, path=path, size=size, changed_at=v.changed_at))
    return Applied(NEW, v)


def append_many(conn: Connection, tenant: str,
                changes: Iterable[tuple[str, str, str, str | None, dict, str | None, int | None]],
                changed_at: datetime) -> list[Applied]:
    """`append` for many items with content at once, for bulk writers (the contract-end export):
    `changes` are (person, vertical, item_id, digest, metadata, path, size), each item at most
    once; the latest versions are read with one query per 500 items, and the new rows written
    with one executemany. Same rules as `append` (`plan_change`, without order checks)."""
    changes = list(changes)
    wanted = {(person, vertical, item_id) for person, vertical, item_id, *_ in changes}
    last: dict[tuple[str, str, str], ItemVersion] = {}
    for i in range(0, len(changes), 500):
        chunk = changes[i:i + 500]
        found = conn.execute(select(t).where(t.c.tenant == tenant, t.c.person.in_({c[0] for c in chunk}),
                                             t.c.item_id.in_({c[2] for c in chunk})))
        for r in found:
            key = (r.person, r.vertical, r.item_id)
            if key in wanted and (key not in last or r.version > last[key].version):
                last[key] = _version(r)
    now, when = datetime.now(UTC), _utc(changed_at)
    applied: list[Applied] = []
    rows: list[dict] = []
    for person, vertical, item_id, digest, metadata, path, size in changes:
        prev = last.get((person, vertical, item_id))
        outcome = plan_change(prev, digest, metadata, path, None)
        if outcome != NEW:
            applied.append(Applied(outcome, prev))
            continue
        v = ItemVersion(tenant, person, vertical, item_id, (prev.version + 1) if prev else 1, digest, metadata,
                        None, path, size, when, now)
        rows.append({"tenant": tenant, "person": person, "vertical": vertical, "item_id": item_id,
                     "version": v.version, "content_sha256": digest,
                     "metadata": json.dumps(metadata, ensure_ascii=False, sort_keys=True), "created_at": now,
                     "purge_after": None, "path": path, "size": size, "changed_at": when})
        applied.append(Applied(NEW, v))
    if rows:
        conn.execute(t.insert(), rows)
    return applied


def versions(conn: Connection, tenant: str, person: str, vertical: str, item_id: str) -> list[ItemVersion]:
    rows = conn.execute(select(t).where(_item(tenant, person, vertical, item_id)).order_by(t.c.version)).all()
    return [_version(r) for r in rows]


def _latest_versions(tenant: str, person: str | None = None):
    """(person, vertical, item_id, v): each item's newest version number."""
    where = [t.c.tenant == tenant] + ([t.c.person == person] if person is not None else [])
    return (select(t.c.person, t.c.vertical, t.c.item_id, func.max(t.c.version).label("v"))
            .where(*where).group_by(t.c.person, t.c.vertical, t.c.item_id).subquery())


def _join_latest(sub):
    return and_(t.c.person == sub.c.person, t.c.vertical == sub.c.vertical,
                t.c.item_id == sub.c.item_id, t.c.version == sub.c.v)


def current(conn: Connection, tenant: str, person: str) -> list[ItemVersion]:
    """Latest live version of each of a person's items, by vertical and item id."""
    sub = _latest_versions(tenant, person)
    rows = conn.execute(select(t).join(sub, _join_latest(sub))
                        .where(t.c.tenant == tenant, t.c.content_sha256.is_not(None))
                        .order_by(t.c.vertical, t.c.item_id)).all()
    return [_version(r) for r in rows]


def live_digests(conn: Connection, tenant: str, vertical: str,
                 persons: Iterable[str] | None = None) -> dict[str, dict[str, str]]:
    """person -> item id -> content sha256 of each live item of a vertical (one query per 500 persons;
    every person of the vertical with ``persons`` None): what a sync's completeness check compares."""
    where = [t.c.tenant == tenant, t.c.vertical == vertical]
    chunks: list[list[str] | None] = [None]
    if persons is not None:
        chosen = list(persons)
        chunks = [chosen[i:i + 500] for i in range(0, len(chosen), 500)]
    out: dict[str, dict[str, str]] = {}
    for chunk in chunks:
        cond = where + ([t.c.person.in_(chunk)] if chunk is not None else [])
        sub = (select(t.c.person, t.c.item_id, func.max(t.c.version).label("v"))
               .where(*cond).group_by(t.c.person, t.c.item_id).subquery())
        rows = conn.execute(select(t.c.person, t.c.item_id, t.c.content_sha256).join(sub, and_(
            t.c.person == sub.c.person, t.c.item_id == sub.c.item_id, t.c.version == sub.c.v))
            .where(*where, t.c.content_sha256.is_not(None)))
        for person, item_id, digest in rows:
            out.setdefault(person, {})[item_id] = digest
    return out


def persons(conn: Connection, tenant: str, vertical: str) -> list[str]:
    """Persons with at least one version (live or not) in this vertical, in order."""
    return [r[0] for r in conn.execute(select(t.c.person).distinct().where(
        t.c.tenant == tenant, t.c.vertical == vertical).order_by(t.c.person))]


def person_rows(conn: Connection, tenant: str, person: str) -> list[tuple[str | None, int | None]]:
    """(digest or None, size) of every version of a person's items."""
    return [(r.content_sha256, r.size) for r in conn.execute(
        select(t.c.content_sha256, t.c.size).where(t.c.tenant == tenant, t.c.person == person))]


def expired_items(conn: Connection, tenant: str, now: datetime) -> list[tuple[str, str, str]]:
    """(person, vertical, item_id) of items whose newest version is a tombstone past its purge_after:
    those `rules.retention.purgeable` lets go, selected in SQL."""
    sub = _latest_versions(tenant)
    rows = conn.execute(select(t.c.person, t.c.vertical, t.c.item_id).join(sub, _join_latest(sub)).where(
        t.c.tenant == tenant, t.c.content_sha256.is_(None), t.c.purge_after <= now)).all()
    return [tuple(r) for r in rows]


def item_rows(conn: Connection, tenant: str, person: str, vertical: str,
              item_id: str) -> list[tuple[str | None, int | None]]:
    """(digest or None, size) of every version of one item."""
    return [(r.content_sha256, r.size) for r in conn.execute(
        select(t.c.content_sha256, t.c.size).where(_item(tenant, person, vertical, item_id)))]


def count_items(conn: Connection, tenant: str, person: str) -> int:
    """How many distinct items a person has (any version, tombstones included)."""
    sub = _latest_versions(tenant, person)
    return int(conn.execute(select(func.count()).select_from(sub)).scalar_one())


def delete_item(conn: Connection, tenant: str, person: str, vertical: str, item_id: str) -> int:
    return conn.execute(t.delete().where(_item(tenant, person, vertical, item_id))).rowcount


def delete_person(conn: Connection, tenant: str, person: str) -> int:
    return conn.execute(t.delete().where(t.c.tenant == tenant, t.c.person == person)).rowcount


def referenced(conn: Connection, tenant: str, digests: Iterable[str]) -> set[str]:
    """Those of `digests` that some row of the tenant still references."""
    digests = sorted(set(digests))
    found: set[str] = set()
    for i in range(0, len(digests), 500):
        chunk = digests[i:i + 500]
        found.update(d for (d,) in conn.execute(select(t.c.content_sha256).distinct().where(
            t.c.tenant == tenant, t.c.content_sha256.in_(chunk))))
    return found


# -- the tenant's policy and blob guard ------------------------------------------------------


def _upsert_tenant(conn: Connection, tenant: str, values: dict) -> None:
    stmt = insert_or_update(conn, vault_tenant).values(**{"tenant": tenant, "blob_epoch": 0, **values})
    conn.execute(stmt.on_conflict_do_update(index_elements=["tenant"], set_=values))


def guard_blobs(conn: Connection, tenant: str, *, exclusive: bool = False) -> int:
    """Hold the tenant's blob guard until the transaction ends (see the module's docstring);
    returns the blob epoch. Call it first in a `writer(engine)` transaction."""
    if conn.dialect.name == "postgresql":
        fn = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        conn.execute(text(f"SELECT {fn}(:c, :k)"), {"c": LOCK_CLASS, "k": zlib.crc32(tenant.encode()) & 0x7FFFFFFF})
    return blob_epoch(conn, tenant)


def blob_epoch(conn: Connection, tenant: str) -> int:
    value = conn.execute(select(vault_tenant.c.blob_epoch).where(vault_tenant.c.tenant == tenant)).scalar()
    return int(value or 0)


def bump_blob_epoch(conn: Connection, tenant: str) -> None:
    """Say that this transaction deletes blobs (inside `guard_blobs(..., exclusive=True)`)."""
    _upsert_tenant(conn, tenant, {"blob_epoch": blob_epoch(conn, tenant) + 1})


def retention_days(conn: Connection, tenant: str) -> int | None:
    """The tenant's own retention policy in days, None when it has none (the default applies:
    `rules.retention.in_force`)."""
    return conn.execute(select(vault_tenant.c.retention_days).where(vault_tenant.c.tenant == tenant)).scalar()


def set_retention_days(conn: Connection, tenant: str, days: int, by: str) -> int:
    """Set the policy and move the purge date of every tombstone to its deletion + `days`
    (`rules.retention.purge_after`); returns how many tombstones were rescheduled."""
    period = in_force(days).period
    _upsert_tenant(conn, tenant, {"retention_days": days, "updated_at": datetime.now(UTC),
                                  "updated_by": by})
    tombstones = conn.execute(select(t.c.person, t.c.vertical, t.c.item_id, t.c.version, t.c.created_at).where(
        t.c.tenant == tenant, t.c.content_sha256.is_(None))).all()
    for r in tombstones:
        conn.execute(update(t).where(_item(tenant, r.person, r.vertical, r.item_id), t.c.version == r.version)
                     .values(purge_after=purge_after(_aware(r.created_at), period)))
    return len(tombstones)


# -- the access log --------------------------------------------------------------------------


def log_access(conn: Connection, tenant: str, actor: str, action: str, person: str, vertical: str | None,
               item_id: str | None, version: int | None) -> None:
    """Record one access (`rules.access_log.entry`) in the caller's transaction."""
    conn.execute(log_t.insert().values(tenant=tenant, **entry(
        at=datetime.now(UTC), actor=actor, action=action, person=person, vertical=vertical, item_id=item_id,
        version=version)))


def access_log(conn: Connection, tenant: str, person: str, *, since: datetime | None = None,
               limit: int | None = None) -> list[dict]:
    """Who accessed this person's data, newest first."""
    q = select(log_t).where(log_t.c.tenant == tenant, log_t.c.person == person)
    if since is not None:
        q = q.where(log_t.c.at >= since)
    q = q.order_by(log_t.c.at.desc(), log_t.c.id.desc())
    if limit:
        q = q.limit(limit)
    return [{"at": _aware(r.at).isoformat().replace("+00:00", "Z"), "actor": r.actor, "action": r.action,
             "person": r.person, "vertical": r.vertical, "item": r.item_id, "version": r.version}
            for r in conn.execute(q)]


def forget_items_in_access_log(conn: Connection, tenant: str, person: str) -> int:
    """After an erasure: keep who accessed when, drop the item ids (`rules.access_log.FORGOTTEN_ON_ERASURE`)."""
    return conn.execute(update(log_t).where(log_t.c.tenant == tenant, log_t.c.person == person)
                        .values(**FORGOTTEN_ON_ERASURE)).rowcount


# -- counts ----------------------------------------------------------------------------------


def status(conn: Connection, tenant: str, now: datetime) -> dict:
    """Per vertical: live items, tombstones (and how many are past retention), versions, live bytes;
    in all: persons, distinct blobs and their bytes."""
    sub = _latest_versions(tenant)
    is_tomb = t.c.content_sha256.is_(None)
    latest_rows = conn.execute(select(
        t.c.vertical,
        func.sum(case((is_tomb, 0), else_=1)).label("items"),
        func.sum(case((is_tomb, 1), else_=0)).label("tombstones"),
        func.sum(case((and_(is_tomb, t.c.purge_after <= now), 1), else_=0)).label("expired"),
        func.coalesce(func.sum(case((is_tomb, 0), else_=t.c.size)), 0).label("bytes"),
    ).join(sub, _join_latest(sub)).where(t.c.tenant == tenant).group_by(t.c.vertical)).all()
    version_rows: dict[str, int] = dict(conn.execute(select(t.c.vertical, func.count()).where(t.c.tenant == tenant)
                                     .group_by(t.c.vertical)).all())
    verticals = {r.vertical: {"items": int(r.items or 0), "tombstones": int(r.tombstones or 0),
                              "tombstones_expired": int(r.expired or 0), "bytes": int(r.bytes or 0),
                              "versions": int(version_rows.get(r.vertical, 0))} for r in latest_rows}
    blobs = select(t.c.content_sha256, func.max(t.c.size).label("size")).where(
        t.c.tenant == tenant, t.c.content_sha256.is_not(None)).group_by(t.c.content_sha256).subquery()
    n_blobs, blob_bytes = conn.execute(select(func.count(), func.coalesce(func.sum(blobs.c.size), 0))).one()
    persons = conn.execute(select(func.count(func.distinct(t.c.person))).where(t.c.tenant == tenant)).scalar_one()
    return {"persons": int(persons), "verticals": verticals,
            "totals": {k: sum(v[k] for v in verticals.values())
                       for k in ("items", "tombstones", "tombstones_expired", "versions", "bytes")},
            "blobs": {"count": int(n_blobs), "bytes": int(blob_bytes)}}
