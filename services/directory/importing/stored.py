"""What is stored, as the import's steps read and write it.

The hashes of records (to skip the unchanged), records whole (to diff and to
name in `.deleted` events), their deletion with their memberships, the keys a
Complet run has seen (to find who is absent), and the run's own row. Keys go
to the database a thousand at a time.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import orjson
from sqlalchemy import Connection, delete, insert, select

from relais.db import bulk_insert, key_in

from ..adapters import tables
from .kinds import KINDS, Kind
from .report import ImportReport

CHUNK = 1000  # keys per statement

StoredHashes = Callable[[str, list[str]], dict[str, tuple[str | None, str]]]
"""(family, keys) -> {key: (raw_hash, record_hash)} of the records stored."""


def stored_hashes(conn: Connection) -> StoredHashes:
    def lookup(family: str, keys: list[str]) -> dict[str, tuple[str | None, str]]:
        kind = KINDS[family]
        t = kind.table
        out: dict[str, tuple[str | None, str]] = {}
        for i in range(0, len(keys), CHUNK):
            for k, raw, rec in conn.execute(
                select(kind.key, t.c.raw_hash, t.c.record_hash).where(key_in(conn, kind.key, keys[i:i + CHUNK]))
            ):
                out[k] = (raw, rec)
        return out

    return lookup


def load_records(conn: Connection, kind: Kind, keys: list[str]) -> dict[str, dict]:
    """{key: {"record": ..., "attributes": ...}} of the stored records among `keys`."""
    out: dict[str, dict] = {}
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        for k, data in conn.execute(select(kind.key, kind.table.c.data).where(key_in(conn, kind.key, chunk))):
            out[k] = orjson.loads(data)
    return out


def delete_records(conn: Connection, kind: Kind, keys: list[str]) -> None:
    """Delete these records, and a person's memberships with them."""
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        conn.execute(delete(kind.table).where(key_in(conn, kind.key, chunk)))
        if kind.name == "person":
            conn.execute(delete(tables.membership).where(key_in(conn, tables.membership.c.person, chunk)))


def families_with_records(conn: Connection) -> dict[str, bool]:
    """Which families have records (before a run: only those can have absentees)."""
    had: dict[str, bool] = {}
    for family, kind in KINDS.items():
        q = select(kind.key).limit(1)
        if kind.name == "person":
            q = q.where(kind.table.c.category == family)
        had[family] = conn.execute(q).first() is not None
    return had


def mark_seen(conn: Connection, import_id: str, family: str, keys: list[str]) -> None:
    """Note keys a Complet file of this run lists."""
    if conn.dialect.name == "postgresql":  # the keys as one array parameter: one short statement per batch
        conn.exec_driver_sql(f"INSERT INTO {tables.seen.name} (import_id, family, key) "
                             "SELECT %s, %s, unnest(%s::text[]) ON CONFLICT DO NOTHING", (import_id, family, keys))
        return
    bulk_insert(conn, tables.seen.name, ("import_id", "family", "key"),
                [(import_id, family, k) for k in keys], ignore_conflicts=True)


def forget_seen(conn: Connection, import_id: str) -> None:
    conn.execute(delete(tables.seen).where(tables.seen.c.import_id == import_id))


def save_run(conn: Connection, report: ImportReport) -> None:
    """The run's row in `dir_import`, with its report."""
    conn.execute(insert(tables.import_run).values(
        id=report.import_id,
        started_at=datetime.fromisoformat(report.started_at),
        finished_at=datetime.fromisoformat(report.finished_at) if report.finished_at else None,
        status=report.status,
        report=orjson.dumps(report.to_dict()).decode(),
    ))
