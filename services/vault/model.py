"""Item versions and tombstones: the rules (plain Python) and `Vault`, one tenant's facade.

An item is one thing of a person in one vertical (a document, a calendar, a contact book...),
named by the ENT's stable id for it. Each change the vault keeps is a new version; a deletion
is a version with no content, a *tombstone*, kept until `purge_after` and restorable until then.
Content lives in the tenant's blob store, by sha256; the database only indexes it.

The rules (`plan_change`):
- same content, metadata and path as the latest version: nothing is added (`unchanged`);
- a change the ENT says happened before the latest version's (`changed_at`) is not applied
  (`stale`): it would bring back older content over newer, as when a retried event overtakes
  a later one, or a connector sends an old change again under a new event id;
- else a new version (`new`).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine

from relais.db import writer

from .bagit import safe_path
from .store import BlobStore

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
    path: str | None = None
    size: int | None = None
    changed_at: datetime | None = None
    created_at: datetime | None = None

    @property
    def deleted(self) -> bool:
        return self.content_sha256 is None

    def to_dict(self) -> dict:
        """JSON-ready, for `--json` output and RPC answers."""
        return {"person": self.person, "vertical": self.vertical, "item": self.item_id, "version": self.version,
                "deleted": self.deleted, "sha256": self.content_sha256, "size": self.size, "path": self.path,
                "metadata": self.metadata, "changed_at": _iso(self.changed_at), "created_at": _iso(self.created_at),
                "purge_after": _iso(self.purge_after)}


NEW, UNCHANGED, STALE = "new", "unchanged", "stale"


@dataclass(frozen=True)
class Applied:
    """What a change did: `new` (a version was added), `unchanged` or `stale` (nothing was)."""

    outcome: str
    version: ItemVersion | None  # the version added, else the latest one (None: a stale change of nothing)


def check_item(vertical: str, item_id: str) -> str:
    """The item id in its stored form (NFC, safe path); ValueError naming what is wrong."""
    if vertical not in VERTICALS:
        raise ValueError(f"unknown vertical {vertical!r}; expected one of {', '.join(VERTICALS)}")
    return safe_path(item_id)


def plan_change(latest: ItemVersion | None, digest: str | None, metadata: dict, path: str | None,
                changed_at: datetime | None) -> str:
    """`new`, `unchanged` or `stale`: what storing this state of an item over `latest` means."""
    if latest is None:
        return NEW
    if changed_at is not None and latest.changed_at is not None and changed_at < latest.changed_at:
        return STALE
    if latest.content_sha256 == digest and (digest is None or (latest.metadata == metadata and latest.path == path)):
        return UNCHANGED  # a tombstone over a tombstone is unchanged whatever it says
    return NEW


class Vault:
    """One tenant's vault: a blob store plus the database index. The tenant comes from the store handle.

    `actor` names who reads through this handle: every content read and version listing is
    recorded in the access log under that name (`relais vault access-log`).
    """

    def __init__(self, engine: Engine, store: BlobStore, *, actor: str = "system",
                 retention: timedelta | None = None) -> None:
        """`retention`: how long tombstones stay when the tenant has no policy of its own
        (`relais vault retention`); default RELAIS_VAULT_RETENTION_DAYS' default, 90 days."""
        self.engine, self.store, self.tenant, self.actor = engine, store, store.tenant, actor
        self.default_retention = retention if retention is not None else timedelta(days=90)

    def put(self, person: str, vertical: str, item_id: str, data: bytes, metadata: dict | None = None, *,
            path: str | None = None, changed_at: datetime | None = None) -> ItemVersion:
        """Store `data` as the item's new version (none if unchanged); returns the item's latest version.

        `changed_at`: when the ENT made the change; given, a change older than the latest version is
        not applied (`plan_change`); not given, the change applies and is dated now."""
        from . import index

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
        return applied.version  # type: ignore[return-value]

    def delete(self, person: str, vertical: str, item_id: str, retention: timedelta | None = None, *,
               changed_at: datetime | None = None) -> ItemVersion:
        """Tombstone: a new version with no content; earlier versions stay restorable until purge_after
        (now + `retention`, by default the tenant's policy)."""
        from . import index

        item_id = check_item(vertical, item_id)
        with writer(self.engine).begin() as conn:
            if retention is None:
                retention = index.retention(conn, self.tenant, self.default_retention)
            now = _now()
            applied = index.append(conn, self.tenant, person, vertical, item_id, digest=None, metadata={},
                                   path=None, size=None, changed_at=changed_at or now, purge_after=now + retention,
                                   check_order=changed_at is not None)
        return applied.version  # type: ignore[return-value]

    def versions(self, person: str, vertical: str, item_id: str) -> list[ItemVersion]:
        """Every version of an item, oldest first (recorded in the access log as `versions`)."""
        from . import index

        item_id = check_item(vertical, item_id)
        with writer(self.engine).begin() as conn:
            found = index.versions(conn, self.tenant, person, vertical, item_id)
            index.log_access(conn, self.tenant, self.actor, "versions", person, vertical, item_id,
                             found[-1].version if found else None)
        return found

    def restore(self, person: str, vertical: str, item_id: str, version: int | None = None) -> ItemVersion:
        """Bring an item back: its last live version (or `version`) becomes its newest version.

        An item that is live already, at that content, is left as it is. LookupError when
        there is nothing to restore (never stored, or purged)."""
        from . import index

        item_id = check_item(vertical, item_id)
        with writer(self.engine).begin() as conn:
            history = index.versions(conn, self.tenant, person, vertical, item_id)
            if version is None:
                live = [v for v in history if not v.deleted]
                if not live:
                    raise LookupError(f"nothing to restore for {vertical} item of person {person}: "
                                      + ("every version is a tombstone" if history else "no version stored (or purged)"))
                source = live[-1]
            else:
                source = next((v for v in history if v.version == version), None)
                if source is None:
                    raise LookupError(f"{vertical} item of person {person} has no version {version} "
                                      f"(versions: {', '.join(str(v.version) for v in history) or 'none'})")
                if source.deleted:
                    raise LookupError(f"version {version} of that {vertical} item is a tombstone: "
                                      "give a version with content")
            applied = index.append(conn, self.tenant, person, vertical, item_id, digest=source.content_sha256,
                                   metadata=source.metadata, path=source.path, size=source.size,
                                   # as of the state it replaces: later changes from the ENT still apply
                                   changed_at=history[-1].changed_at)
            index.log_access(conn, self.tenant, self.actor, "restore", person, vertical, item_id,
                             applied.version.version)  # type: ignore[union-attr]
        return applied.version  # type: ignore[return-value]

    def version(self, person: str, vertical: str, item_id: str, version: int | None = None) -> ItemVersion | None:
        """One version of an item (default: its latest live one), None if there is none; for `read`."""
        from . import index

        item_id = check_item(vertical, item_id)
        with self.engine.connect() as conn:
            history = index.versions(conn, self.tenant, person, vertical, item_id)
        if version is None:
            return history[-1] if history and not history[-1].deleted else None
        return next((v for v in history if v.version == version), None)

    def current(self, person: str) -> list[ItemVersion]:
        """Latest live version of each of a person's items (metadata only: not an access to content)."""
        from . import index

        with self.engine.connect() as conn:
            return index.current(conn, self.tenant, person)

    def status(self) -> dict:
        """Counts per vertical (items, tombstones, versions, bytes), blobs, persons, retention."""
        from . import index

        with self.engine.connect() as conn:
            report = index.status(conn, self.tenant, _now())
            days = index.retention_days(conn, self.tenant)
        return {"tenant": self.tenant, **report,
                "retention": {"days": self.default_retention.days if days is None else days,
                              "policy": "default" if days is None else "tenant"}}

    def read(self, v: ItemVersion) -> bytes:
        """The content of a version; the read is in the access log before the content is returned."""
        from . import index

        if v.tenant != self.tenant:
            raise PermissionError(f"version of tenant {v.tenant!r} read through a vault of tenant {self.tenant!r}")
        if v.deleted:
            raise LookupError(f"version {v.version} of that {v.vertical} item is a tombstone: it has no content")
        data = self.store.get(v.content_sha256)  # type: ignore[arg-type]
        with writer(self.engine).begin() as conn:
            index.log_access(conn, self.tenant, self.actor, "read", v.person, v.vertical, v.item_id, v.version)
        return data


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value else None
