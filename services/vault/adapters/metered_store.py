"""A blob store counting the bytes of new content it stores: `relais_vault_bytes_stored_total`.

`relais serve vault` wraps the tenant's store in it (`process.py`), so the service's metrics
(`/metrics` on its ops port) say how much content the vault took in.
"""
from __future__ import annotations

import hashlib
from typing import Any

from prometheus_client import Counter

from .blob_store import BlobStore

VAULT_BYTES = Counter("relais_vault_bytes_stored", "Bytes of new content the vault stored.")


class MeteredBlobStore:
    """A vault `BlobStore` counting the bytes of content it did not hold yet (`relais_vault_bytes_stored_total`)."""

    def __init__(self, store: BlobStore) -> None:
        self._store = store
        self.tenant = store.tenant

    def put(self, data: bytes) -> str:
        new = not self._store.exists(hashlib.sha256(data).hexdigest())
        digest = self._store.put(data)
        if new:
            VAULT_BYTES.inc(len(data))
        return digest

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)
