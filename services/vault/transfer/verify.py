"""``relais vault verify``: what the source, the vault and the target hold, compared item by item.

Each side is read into an inventory (:mod:`.compare` does the comparing):

* the vault: every person's live items from its index, and whether each content is in the
  vault store (listed once);
* a connector (source or target): every person's items listed through its exporter and, by
  default, downloaded and hashed on ``workers`` threads (the SDK's verified fetch): the only
  way to know the bytes are there and whole. With ``trust_announced`` an item whose side
  announces its sha256 (a WebDAV server written by Relais, a ``Digest`` header) is not
  downloaded, and its metadata is not compared.
"""
from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from connectors.sdk import ConnectorError, ItemRef

from ..adapters import index
from ..adapters.blob_store import BlobStore
from ..rules.item_ids import VERTICALS
from ..rules.item_metadata import connector_metadata, item_kind
from .compare import SOURCE, TARGET, Comparison, Entry, Key, SideError, compare
from .listing import listings_ahead
from .peers import Peer

log = logging.getLogger("relais.vault.transfer")

Progress = Callable[[str, int], None]  # (side, items read so far)


@dataclass
class VerifyReport:
    tenant: str
    comparison: Comparison
    sides: dict[str, str]  # side -> what it is ("webdav", "vault of tenant x")
    downloaded: dict[str, int] = field(default_factory=dict)  # side -> items downloaded and hashed
    announced: dict[str, int] = field(default_factory=dict)  # side -> items checked by the sha256 announced
    seconds: float = 0.0

    @property
    def lost(self) -> int:
        return self.comparison.lost

    @property
    def ok(self) -> bool:
        return self.comparison.ok

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {"tenant": self.tenant, "sides": self.sides, "ok": self.ok, "lost": c.lost,
                "unverified": c.unverified, "extra": c.extra, "totals": c.totals(),
                "checksums": {"downloaded": self.downloaded, "announced": self.announced},
                "findings": [f.to_dict() for f in c.findings],
                "errors": [e.to_dict() for e in c.errors],
                "persons": [{"person": p, "vertical": v, **s.to_dict()} for (p, v), s in sorted(c.owners.items())],
                "seconds": round(self.seconds, 3)}


def vault_inventory(engine: Engine, store: BlobStore, persons: Iterable[str], verticals: Iterable[str]
                    ) -> dict[Key, Entry]:
    """The vault's live items of these persons and verticals; an item whose content is not in the
    store carries that problem."""
    stored = set(store.list_digests())
    verticals = set(verticals)
    out: dict[Key, Entry] = {}
    with engine.connect() as conn:
        for person in persons:
            for v in index.current(conn, store.tenant, person):
                if v.vertical not in verticals:
                    continue
                problem = None if v.content_sha256 in stored else (
                    f"its content {v.content_sha256} is not in the vault store of tenant {store.tenant}")
                out[(person, v.vertical, v.item_id)] = Entry(v.path or v.item_id, item_kind(v), v.content_sha256,
                                                             v.size, connector_metadata(v), problem)
    return out


@dataclass
class _SideRead:
    entries: dict[Key, Entry] = field(default_factory=dict)
    errors: list[SideError] = field(default_factory=list)
    downloaded: int = 0
    announced: int = 0


def connector_inventory(peer: Peer, side: str, vertical: str, persons: Iterable[str] | None, *, workers: int = 8,
                        trust_announced: bool = False, spool_dir: Path | None = None,
                        progress: Progress | None = None) -> _SideRead:
    """Every item ``peer`` holds for these persons (default: every person it has) in ``vertical``."""
    read = _SideRead()
    exporter = peer.exporter(vertical)
    try:
        owners: Iterable[str]
        if persons is None:
            try:
                owners = list(exporter.iter_owners())
            except Exception as exc:  # noqa: BLE001 - ConnectorError or garbage: said, not raised
                read.errors.append(SideError(side, None, vertical, _reason(peer, exc)))
                return read
        else:
            owners = persons

        def refs() -> Iterator[ItemRef]:
            for person, listing in listings_ahead(exporter, owners):
                listed, error = listing.result()
                if error is not None:
                    read.errors.append(SideError(side, person, vertical, error))
                    continue  # what it listed is not compared: the person is unverified at this side
                for ref in listed:
                    if trust_announced and (ref.sha256 is not None or ref.kind == "folder"):
                        read.announced += ref.kind == "file"
                        read.entries[(ref.owner, ref.vertical, ref.id)] = Entry(
                            ref.path, ref.kind, ref.sha256 or None, ref.size if ref.kind == "file" else 0)
                        _tick(progress, side, read)
                    else:
                        yield ref

        for got in exporter.fetch_many(refs(), workers=workers, spool_dir=spool_dir):
            ref = got.ref
            key = (ref.owner, ref.vertical, ref.id)
            if got.item is None:
                read.entries[key] = Entry(ref.path, ref.kind, None, ref.size, None, str(got.error))
            else:
                item = got.item
                read.downloaded += item.kind == "file"
                read.entries[key] = Entry(item.path, item.kind, item.sha256, item.size, dict(item.metadata))
                item.content.release()
            _tick(progress, side, read)
    finally:
        exporter.close()
    return read


def _tick(progress: Progress | None, side: str, read: _SideRead) -> None:
    if progress is not None:
        progress(side, len(read.entries))


def _reason(peer: Peer, exc: BaseException) -> str:
    return str(exc) if isinstance(exc, ConnectorError) else f"{peer.name}: {type(exc).__name__}: {exc}"


def verify(engine: Engine, store: BlobStore, *, source: Peer | None = None, target: Peer | None = None,
           persons: Iterable[str] | None = None, workers: int = 8, trust_announced: bool = False,
           spool_dir: Path | None = None, progress: Progress | None = None) -> VerifyReport:
    """Compare ``source`` (optional), the vault and ``target`` (optional) for the tenant of ``store``.

    Verticals: those the source and target connectors handle (every vertical with neither).
    Persons: those given, else every person any side has."""
    t0 = time.monotonic()
    tenant = store.tenant
    given = list(dict.fromkeys(persons)) if persons is not None else None
    peers = [(s, p) for s, p in ((SOURCE, source), (TARGET, target)) if p is not None]
    verticals = sorted({v for _, p in peers for v in p.verticals}, key=VERTICALS.index) if peers else list(VERTICALS)
    reads: dict[str, _SideRead] = {}
    for side, peer in peers:
        read = reads[side] = _SideRead()
        for vertical in peer.verticals:
            got = connector_inventory(peer, side, vertical, given, workers=workers, trust_announced=trust_announced,
                                      spool_dir=spool_dir, progress=progress)
            read.entries.update(got.entries)
            read.errors += got.errors
            read.downloaded += got.downloaded
            read.announced += got.announced
    if given is not None:
        vault_people: Iterable[str] = given
    else:
        with engine.connect() as conn:
            vault_people = sorted({p for v in verticals for p in index.persons(conn, tenant, v)})
    vault = vault_inventory(engine, store, vault_people, verticals)
    if progress is not None:
        progress("vault", len(vault))
    cmp = compare(vault=vault, source=reads[SOURCE].entries if source else None,
                  target=reads[TARGET].entries if target else None,
                  errors=[e for r in reads.values() for e in r.errors],
                  source_verticals=source.verticals if source else (),
                  target_verticals=target.verticals if target else ())
    sides = {"vault": f"tenant {tenant}"}
    if source:
        sides[SOURCE] = source.name
    if target:
        sides[TARGET] = target.name
    return VerifyReport(tenant, cmp, sides, downloaded={s: r.downloaded for s, r in reads.items()},
                        announced={s: r.announced for s, r in reads.items()}, seconds=time.monotonic() - t0)
