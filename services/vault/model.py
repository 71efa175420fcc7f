"""Item versions and tombstones, indexed in the database, content in a tenant's BlobStore."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from sqlalchemy import and_, func, select
from sqlalchemy.engine import Engine

from .bagit import safe_path
from .store import BlobStore
from .tables import vault_item_version as t

VERTICALS = ("documents", "calendars", "contacts", "messages", "blogs", "homework")


@dataclass(frozen=True)
class ItemVersion:
    tenant: str
    person: str
    vertical: str
    item_id: str
    version: int
    content_sha256: str | None  # None = tombstone
    metadata: dict = field(default_factory=dict)
    purge_after: datetime | None = None

    @property
    def deleted(self) -> bool:
        return self.content_sha256 is None


class Vault:
    """One tenant's vault: a blob store plus the DB index. Tenant comes from the store handle."""

    def __init__(self, engine: Engine, store: BlobStore) -> None:
        self.engine, self.store, self.tenant = engine, store, store.tenant

    def _latest(self, conn, person: str, vertical: str, item_id: str):
        return conn.execute(select(t).where(and_(
            t.c.tenant == self.tenant, t.c.person == person, t.c.vertical == vertical,
            t.c.item_id == item_id)).order_by(t.c.version.desc()).limit(1)).first()

    def _append(self, person, vertical, item_id, digest, metadata, purge_after=None) -> ItemVersion:
        if vertical not in VERTICALS:
            raise ValueError(f"unknown vertical {vertical!r}; expected one of {VERTICALS}")
        item_id = safe_path(item_id)
        with self.engine.begin() as conn:
            last = self._latest(conn, person, vertical, item_id)
            if last is not None and last.content_sha256 == digest and json.loads(last.metadata) == metadata:
                return _row(last)  # unchanged: no new version
            version = (last.version + 1) if last else 1
            conn.execute(t.insert().values(
                tenant=self.tenant, person=person, vertical=vertical, item_id=item_id, version=version,
                content_sha256=digest, metadata=json.dumps(metadata, ensure_ascii=False),
                created_at=datetime.now(timezone.utc), purge_after=purge_after))
        return ItemVersion(self.tenant, person, vertical, item_id, version, digest, metadata, purge_after)

    def put(self, person: str, vertical: str, item_id: str, data: bytes, metadata: dict | None = None) -> ItemVersion:
        return self._append(person, vertical, item_id, self.store.put(data), metadata or {})

    def delete(self, person: str, vertical: str, item_id: str, retention: timedelta = timedelta(days=90)) -> ItemVersion:
        """Tombstone: a new version with no content; earlier versions stay restorable until purge_after."""
        return self._append(person, vertical, item_id, None, {},
                            purge_after=datetime.now(timezone.utc) + retention)

    def versions(self, person: str, vertical: str, item_id: str) -> list[ItemVersion]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(t).where(and_(
                t.c.tenant == self.tenant, t.c.person == person, t.c.vertical == vertical,
                t.c.item_id == safe_path(item_id))).order_by(t.c.version)).all()
        return [_row(r) for r in rows]

    def restore(self, person: str, vertical: str, item_id: str) -> ItemVersion:
        """Undo a tombstone by re-publishing the last live version as a new version."""
        live = [v for v in self.versions(person, vertical, item_id) if not v.deleted]
        if not live:
            raise LookupError(f"nothing to restore for {vertical}/{item_id} of {person}")
        return self._append(person, vertical, item_id, live[-1].content_sha256, live[-1].metadata)

    def current(self, person: str) -> list[ItemVersion]:
        """Latest live version of each of a person's items."""
        with self.engine.connect() as conn:
            sub = select(t.c.vertical, t.c.item_id, func.max(t.c.version).label("v")).where(and_(
                t.c.tenant == self.tenant, t.c.person == person)).group_by(t.c.vertical, t.c.item_id).subquery()
            rows = conn.execute(select(t).join(sub, and_(
                t.c.vertical == sub.c.vertical, t.c.item_id == sub.c.item_id, t.c.version == sub.c.v)).where(
                t.c.tenant == self.tenant, t.c.person == person)).all()
        return sorted((_row(r) for r in rows if r.content_sha256 is not None),
                      key=lambda v: (v.vertical, v.item_id))

    def read(self, v: ItemVersion) -> bytes:
        return self.store.get(v.content_sha256)


def _row(r) -> ItemVersion:
    return ItemVersion(r.tenant, r.person, r.vertical, r.item_id, r.version, r.content_sha256,
                       json.loads(r.metadata), r.purge_after)
