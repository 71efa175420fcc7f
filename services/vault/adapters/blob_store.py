"""Vault blob storage: the tenant-scoped, content-addressed interface every store adapter implements.

Key layout (shared by every adapter; see contracts/vault/SPEC.md):
  ``blobs/sha256/<hh>/<full hex digest>`` — immutable content, stored once per tenant.
The local adapter (`local_store.py`) keeps each tenant under ``<root>/<tenant>/`` and writes to
a temp file then ``os.replace`` so a crash mid-write never leaves a visible partial blob.
The S3 adapter (`s3_store.py`) keeps one bucket per tenant.
"""
from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import BinaryIO, Protocol

_TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class StoreError(Exception):
    """Storage failure or forbidden access (e.g. a digest not owned by this tenant)."""


class StoreUnavailable(StoreError):
    """The object store cannot be reached (restarting, network cut): says nothing about any blob."""


def check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise StoreError(f"invalid tenant id {tenant!r}: expected 3-63 chars of [a-z0-9-]")
    return tenant


def is_digest(name: str) -> bool:
    """Whether ``name`` is a sha256 hex digest, as blobs are named."""
    return bool(_DIGEST.match(name))


def blob_key(digest: str) -> str:
    if not _DIGEST.match(digest):
        raise StoreError(f"invalid sha256 digest {digest!r}")
    return f"blobs/sha256/{digest[:2]}/{digest}"


class BlobStore(Protocol):
    """One tenant's blob storage. A handle never reaches another tenant's data."""

    tenant: str

    def put(self, data: bytes) -> str:
        """Store ``data`` (once, by content) and return its sha256 hex digest."""

    def get(self, digest: str) -> bytes: ...

    def read_chunks(self, digest: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """The blob's bytes in chunks of at most ``chunk_size``, never whole in memory (bags of multi-GB
        files). Not checked against the digest: the caller hashes what it reads (it must anyway) and keeps
        nothing unless the bytes hash to it. StoreError when the blob is not there."""

    def exists(self, digest: str) -> bool: ...

    def size(self, digest: str) -> int | None:
        """The stored blob's size in bytes, or None when this tenant does not hold it."""

    def delete(self, digest: str) -> bool:
        """Remove the blob for good (every stored version of it); False when it was not there."""

    def upload(self, digest: str, size: int, open_: Callable[[], BinaryIO]) -> None:
        """Store content the caller hashed as it read it (``open_()`` gives a fresh stream of its
        ``size`` bytes), streaming, without asking first whether it is there: for bulk writers
        that listed the store (the contract-end export)."""

    def list_digests(self) -> list[str]:
        """Every blob this tenant holds."""
