"""The vault's share of data-subject requests: a person's items, their versions and the access log, and
erasing them.

- `export(vault, jointure, write)`: each live item's content streamed to `write(name, chunks)` (the
  bag's payload), and the items' metadata, every version, and the access log; the export's reads are
  themselves in the access log, under the exporting actor;
- `erase(store)(conn, request)`: every version of every item, the blobs no one else references
  (`rights.erase_in`), the transfer checkpoints naming the person; the access log keeps who read what
  and when under the keyed hash, not the jointure;
- `consumer(tenant, store)`: the queue `relais.q.vault-subject` (relais.subject.events).
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from sqlalchemy import Connection

from relais.db import writer
from relais.runtime import Consumer
from relais.subject.events import Erased, EraseFn, ErasureRequest, consumer_name, erasure_handler

from . import rights
from .adapters import index, subject_rows
from .adapters.blob_store import BlobStore
from .items import Vault
from .rules.access_log import READ
from .sync import state as sync_state
from .transfer import forget

SERVICE = "vault"

WriteFn = Callable[[str, Iterable[bytes]], str]


def export(vault: Vault, jointure: str, write: WriteFn) -> dict[str, Any]:
    items = []
    for n, v in enumerate(vault.current(jointure), 1):
        entry: dict[str, Any] = {"vertical": v.vertical, "item_id": v.item_id, "version": v.version,
                                 "path": v.path, "size": v.size, "sha256": v.content_sha256,
                                 "metadata": v.metadata,
                                 "changed_at": v.changed_at.isoformat() if v.changed_at else None,
                                 "versions": [x.to_dict() for x in vault.versions(jointure, v.vertical, v.item_id)]}
        if v.content_sha256 is not None:
            entry["file"] = f"{v.vertical}/{n:06d}"
            write(entry["file"], _read_logged(vault, jointure, v.vertical, v.item_id, v.version, v.content_sha256))
        items.append(entry)
    return {"items": items, "access_log": rights.access_log(vault, jointure)}


def _read_logged(vault: Vault, person: str, vertical: str, item_id: str, version: int,
                 digest: str) -> Iterator[bytes]:
    """The content in chunks (never whole in memory), its read in the access log first."""
    with writer(vault.engine).begin() as conn:
        index.log_access(conn, vault.tenant, vault.actor, READ, person, vertical, item_id, version)
    yield from vault.store.read_chunks(digest)


def eraser(store: BlobStore) -> EraseFn:
    def erase(conn: Connection, request: ErasureRequest) -> Erased:
        rows, items, blobs = rights.erase_in(conn, store, request.person)
        return Erased({"versions": len(rows), "items": items, "blobs_deleted": len(blobs.digests),
                       "blobs_kept": blobs.kept, "bytes_deleted": blobs.bytes,
                       "access_log_pseudonymized": subject_rows.pseudonymize_access_log(
                           conn, store.tenant, request.person, request.subject_hash),
                       "transfer_checkpoints": forget.delete_person_rows(conn, request.person),
                       "sync_states": sync_state.forget_person(conn, store.tenant, request.person)},
                      ("blobs another person also holds are kept (counted in blobs_kept)",))

    return erase


def consumer(tenant: str, store: BlobStore) -> Consumer:
    return Consumer(consumer_name(SERVICE), erasure_handler(SERVICE, tenant, eraser(store)), batch_size=1)
