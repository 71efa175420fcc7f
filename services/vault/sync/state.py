"""The sync state of each connector, person and vertical (table `vault_sync_state`, migration 0024_vault_sync).

What the connector gave back at the last sync (`connectors.sdk.sync.Changes.state`: sync tokens,
each item's ETag), kept as JSON, so the next sync asks only what changed since.
"""
from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Connection, DateTime, MetaData, String, Table, Text, delete, insert, select, update

metadata = MetaData()

vault_sync_state = Table(
    "vault_sync_state", metadata,
    Column("tenant", String(63), primary_key=True),
    Column("connector", String(64), primary_key=True),
    Column("vertical", String(32), primary_key=True),
    Column("person", String(64), primary_key=True),
    Column("state", Text, nullable=False),
    Column("synced_at", DateTime(timezone=True), nullable=False),
)
t = vault_sync_state


def _key(tenant: str, connector: str, vertical: str, person: str):
    return (t.c.tenant == tenant, t.c.connector == connector, t.c.vertical == vertical, t.c.person == person)


def load(conn: Connection, tenant: str, connector: str, vertical: str, person: str) -> dict[str, Any] | None:
    raw = conn.execute(select(t.c.state).where(*_key(tenant, connector, vertical, person))).scalar_one_or_none()
    if raw is None:
        return None
    value = json.loads(raw)
    return value if isinstance(value, dict) else None


def save(conn: Connection, tenant: str, connector: str, vertical: str, person: str, state: dict[str, Any],
         at: datetime) -> None:
    raw = json.dumps(state, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    done = conn.execute(update(t).where(*_key(tenant, connector, vertical, person)).values(state=raw, synced_at=at))
    if not done.rowcount:
        conn.execute(insert(t).values(tenant=tenant, connector=connector, vertical=vertical, person=person,
                                      state=raw, synced_at=at))


def forget_person(conn: Connection, tenant: str, person: str) -> int:
    """An erased person's sync states (their ETags name their items)."""
    return conn.execute(delete(t).where(t.c.tenant == tenant, t.c.person == person)).rowcount
