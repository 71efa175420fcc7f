"""Contract-end import: the vault's current items into a target ENT, through its connector.

For each vertical the target's connector handles and each person the vault has items of (or
those given), every live item (its latest version) goes to the connector's importer, which is
idempotent: an item the target holds already, with the same bytes and metadata, is left as it
is (``unchanged``), so running an import again creates no duplicate, and an import into a
partly filled target only adds or updates what is missing or different. Folders go first;
files wait for the folders above them and go on ``workers`` threads. Content is read from the
vault only when the importer asks for it (an unchanged item at a target that announces its
checksum is not read), and each read is in the vault's access log under the job's actor.

What was done is checkpointed like an export, so a killed import resumes where it stopped.
"""
from __future__ import annotations

import io
import logging
import threading
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from typing import BinaryIO

from sqlalchemy import Engine

from connectors.sdk import BytesContent, ConnectorError, Content, Importer, Item

from ..adapters import index
from ..adapters.blob_store import BlobStore, StoreError, StoreUnavailable
from ..item_version import ItemVersion
from ..items import Vault
from ..rules.item_metadata import connector_metadata, item_kind
from .checkpoint import Checkpoint, Scope, open_job
from .peers import Peer
from .pipeline import ItemResult, JobRun, Progress, run_job
from .report import TransferReport

log = logging.getLogger("relais.vault.transfer")


class VaultContent(Content):
    """A version's content, read from the vault (and logged in its access log) on first use."""

    def __init__(self, vault: Vault, version: ItemVersion) -> None:
        self._vault, self._version = vault, version
        self._data: bytes | None = None
        self._lock = threading.Lock()
        self.sha256 = version.content_sha256 or ""
        self.size = version.size if version.size is not None else len(self._load())  # rows older than 0011
        self.verified = True  # the store checks the sha256 of what it reads

    def _load(self) -> bytes:
        data = self._vault.read(self._version)
        self._data = data
        return data

    def open(self) -> BinaryIO:
        with self._lock:
            data = self._data if self._data is not None else self._load()
        return io.BytesIO(data)

    def release(self) -> None:
        self._data = None


def vault_item(vault: Vault, v: ItemVersion) -> Item:
    """The vault's version as a connector item: its kind and metadata as the export kept them."""
    kind = item_kind(v)
    metadata = connector_metadata(v)
    content = BytesContent(b"") if kind == "folder" else VaultContent(vault, v)
    return Item(owner=v.person, vertical=v.vertical, id=v.item_id, path=v.path or v.item_id, content=content,
                kind=kind, metadata=metadata)


def _ancestors(item_id: str) -> list[str]:
    parts = item_id.split("/")
    return ["/".join(parts[:n]) for n in range(1, len(parts))]


class _ImportRun(JobRun):
    def __init__(self, engine: Engine, vault: Vault, target: Peer, cp: Checkpoint, **kw) -> None:
        super().__init__(engine, cp, **kw)
        self.vault, self.target, self.tenant = vault, target, vault.tenant

    def run(self) -> None:
        done_owners = self.cp.owners_done()
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vault-import")
        try:
            for vertical in self.cp.scope.verticals:
                if self.fatal:
                    break
                importer = self.target.importer(vertical)
                try:
                    persons: Sequence[str]
                    if self.cp.scope.persons is not None:
                        persons = self.cp.scope.persons
                    else:
                        with self.engine.connect() as conn:
                            persons = index.persons(conn, self.tenant, vertical)
                    for person in persons:
                        if self.fatal:
                            break
                        if (person, vertical) in done_owners:
                            self.stats.skipped_resumed += done_owners[(person, vertical)]
                            self.tick()
                            continue
                        self._owner(pool, importer, person, vertical)
                    self.drain()
                finally:
                    importer.close()
        except BaseException:
            self.abort(pool)
            raise
        pool.shutdown(wait=True)
        self.commit()

    def _owner(self, pool: ThreadPoolExecutor, importer: Importer, person: str, vertical: str) -> None:
        owner = self.begin_owner(person, vertical)
        done = self.cp.done_items(person, vertical)
        with self.engine.connect() as conn:
            live = [v for v in index.current(conn, self.tenant, person) if v.vertical == vertical]
        folders: dict[str, Future] = {}
        # folders first, shallow before deep; a file waits for the folders above it
        for v in sorted(live, key=lambda v: (item_kind(v) != "folder", v.item_id.count("/"), v.item_id)):
            owner.items += 1
            if v.item_id in done:
                self.stats.skipped_resumed += 1
                continue
            above = [folders[a] for a in _ancestors(v.item_id) if a in folders]
            fut = self.submit(pool, person, vertical, self._one, importer, v, above)
            if item_kind(v) == "folder":
                folders[v.item_id] = fut
        self.end_listing(person, vertical)

    def _one(self, importer: Importer, v: ItemVersion, above: list[Future]) -> ItemResult:
        def result(**kw) -> ItemResult:
            return ItemResult(v.person, v.vertical, v.item_id, v.path, sha256=v.content_sha256, size=v.size, **kw)

        wait(above)
        label = f"{v.person}:{v.vertical}/{v.item_id}"
        item = None
        try:
            item = vault_item(self.vault, v)
            outcome = importer.put(item)
        except StoreUnavailable as exc:
            return result(fatal=exc)
        except StoreError as exc:
            return result(error=f"the vault cannot give the content of item {label!r}: {exc}")
        except ConnectorError as exc:
            return result(error=str(exc))
        except Exception as exc:  # noqa: BLE001 - a connector's bug on one item must not stop the others
            return result(error=f"{self.target.name}: {type(exc).__name__}: {exc} (item {label!r})")
        finally:
            if item is not None:
                item.content.release()
        return result(outcome=outcome.value)


def import_(engine: Engine, store: BlobStore, target: Peer, *, persons: Iterable[str] | None = None,
            workers: int = 8, restart: bool = False, progress: Progress | None = None, actor: str = "vault-import",
            batch_items: int = 500, batch_seconds: float = 2.0) -> TransferReport:
    """Import the vault's live items of ``persons`` (default: every person the vault has) into
    ``target``, resuming the unfinished import job of this tenant and connector if there is one.
    Reads are recorded in the access log as ``actor``."""
    scope = Scope(tuple(dict.fromkeys(persons)) if persons is not None else None, tuple(target.verticals))
    cp = open_job(engine, tenant=store.tenant, kind="import", connector=target.name, scope=scope, restart=restart)
    vault = Vault(engine, store, actor=f"{actor} (job {cp.job_id})")
    return run_job(_ImportRun(engine, vault, target, cp, workers=workers, progress=progress,
                              batch_items=batch_items, batch_seconds=batch_seconds))
