"""`Vault(engine, store, actor=…)`: one tenant's items — put, delete, versions, restore, read, status.

Each method is a use case in its own transaction on the index (`adapters/index.py`), with the
content in the tenant's blob store. What a change does (`rules/changes.py`), which version a
restore brings back (`rules/restore.py`), how long a tombstone stays (`rules/retention.py`) and
what the access log records (`rules/access_log.py`) are decided by the rules.
"""
from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from relais.db import writer

from .adapters import index
from .adapters.blob_store import BlobStore
from .item_version import ItemVersion
from .rules.access_log import READ, RESTORE, VERSIONS
from .rules.item_ids import check_item
from .rules.restore import version_to_restore
from .rules.retention import DEFAULT_PERIOD, in_force, purge_after


class Vault:
    """One tenant's vault: a blob store plus the database index. The tenant comes from the store handle.

    `actor` names who reads through this handle: every content read and version listing is
    recorded in the access log under that name (`relais vault access-log`).
    """

    def __init__(self, engine: Engine, store: BlobStore, *, actor: str = "system",
                 retention: timedelta | None = None) -> None:
        """`retention`: how long tombstones stay when the tenant has no policy of its own
        (`relais vault retention`); default `rules.retention.DEFAULT_PERIOD`."""
        self.engine, self.store, self.tenant, self.actor = engine, store, store.tenant, actor
        self.default_retention = retention if retention is not None else DEFAULT_PERIOD

    def put(self, person: str, vertical: str, item_id: str, data: bytes, metadata: dict | None = None, *,
            path: str | None = None, changed_at: datetime | None = None) -> ItemVersion:
        """Store `data` as the item's new version (none if unchanged); returns the item's latest version.

        `changed_at`: when the ENT made the change; given, a change older than the latest version is
        not applied (`plan_change`); not given, the change applies and is dated now."""
        item_id = check_item(vertical, item_id)
        with self.engine.connect() as conn:
            epoch = index.blob_epoch(conn, self.tenant)
        # The upload happens outside the transaction, so puts run side by side even on SQLite.
        digest = self.store.put(data)
        with writer(self.engine).begin() as conn:
            if index.guard_blobs(conn, self.tenant) != epoch and not self.store.exists(digest):
                self.store.put(data)  # an erasure or purge removed it meanwhile: store it again
            applied = index.append(conn, self.tenant, person, vertical, item_id, digest=digest,
                                   metadata=metadata or {}, path=path, size=len(data),
                                   changed_at=changed_at or _now(), check_order=changed_at is not None)
        return _added_or_latest(applied.version)

    def delete(self, person: str, vertical: str, item_id: str, retention: timedelta | None = None, *,
               changed_at: datetime | None = None) -> ItemVersion:
        """Tombstone: a new version with no content; earlier versions stay restorable until purge_after
        (now + `retention`, by default the tenant's policy)."""
        item_id = check_item(vertical, item_id)
        with writer(self.engine).begin() as conn:
            if retention is None:
                retention = in_force(index.retention_days(conn, self.tenant), self.default_retention).period
            now = _now()
            applied = index.append(conn, self.tenant, person, vertical, item_id, digest=None, metadata={},
                                   path=None, size=None, changed_at=changed_at or now,
                                   purge_after=purge_after(now, retention), check_order=changed_at is not None)
        return _added_or_latest(applied.version)

    def versions(self, person: str, vertical: str, item_id: str) -> list[ItemVersion]:
        """Every version of an item, oldest first (recorded in the access log as `versions`)."""
        item_id = check_item(vertical, item_id)
        with writer(self.engine).begin() as conn:
            found = index.versions(conn, self.tenant, person, vertical, item_id)
            index.log_access(conn, self.tenant, self.actor, VERSIONS, person, vertical, item_id,
                             found[-1].version if found else None)
        return found

    def restore(self, person: str, vertical: str, item_id: str, version: int | None = None) -> ItemVersion:
        """Bring an item back: its last live version (or `version`) becomes its newest version.

        An item that is live already, at that content, is left as it is. LookupError when
        there is nothing to restore (never stored, or purged)."""
        item_id = check_item(vertical, item_id)
        with writer(self.engine).begin() as conn:
            history = index.versions(conn, self.tenant, person, vertical, item_id)
            source = version_to_restore(history, version, person=person, vertical=vertical)
            applied = index.append(conn, self.tenant, person, vertical, item_id, digest=source.content_sha256,
                                   metadata=source.metadata, path=source.path, size=source.size,
                                   # as of the state it replaces: later changes from the ENT still apply
                                   changed_at=history[-1].changed_at)
            restored = _added_or_latest(applied.version)
            index.log_access(conn, self.tenant, self.actor, RESTORE, person, vertical, item_id, restored.version)
        return restored

    def version(self, person: str, vertical: str, item_id: str, version: int | None = None) -> ItemVersion | None:
        """One version of an item (default: its latest live one), None if there is none; for `read`."""
        item_id = check_item(vertical, item_id)
        with self.engine.connect() as conn:
            history = index.versions(conn, self.tenant, person, vertical, item_id)
        if version is None:
            return history[-1] if history and not history[-1].deleted else None
        return next((v for v in history if v.version == version), None)

    def current(self, person: str) -> list[ItemVersion]:
        """Latest live version of each of a person's items (metadata only: not an access to content)."""
        with self.engine.connect() as conn:
            return index.current(conn, self.tenant, person)

    def status(self) -> dict:
        """Counts per vertical (items, tombstones, versions, bytes), blobs, persons, retention."""
        with self.engine.connect() as conn:
            report = index.status(conn, self.tenant, _now())
            retention = in_force(index.retention_days(conn, self.tenant), self.default_retention)
        return {"tenant": self.tenant, **report, "retention": {"days": retention.period.days,
                                                                "policy": "tenant" if retention.own else "default"}}

    def read(self, v: ItemVersion) -> bytes:
        """The content of a version; the read is in the access log before the content is returned."""
        if v.tenant != self.tenant:
            raise PermissionError(f"version of tenant {v.tenant!r} read through a vault of tenant {self.tenant!r}")
        if v.content_sha256 is None:
            raise LookupError(f"version {v.version} of that {v.vertical} item is a tombstone: it has no content")
        data = self.store.get(v.content_sha256)
        with writer(self.engine).begin() as conn:
            index.log_access(conn, self.tenant, self.actor, READ, v.person, v.vertical, v.item_id, v.version)
        return data


def _now() -> datetime:
    return datetime.now(UTC)


def _added_or_latest(version: ItemVersion | None) -> ItemVersion:
    """The version a change added, else the item's latest one: after a put, a deletion or a restore
    there is always one (a change is `stale` only over a version stored before)."""
    assert version is not None, "a change of an item with no version was not applied"
    return version
