"""The local-folder blob store: each tenant under ``<root>/<tenant>/``, written atomically.

Blobs are written to a temp file then ``os.replace``d, so a crash mid-write never leaves a
visible partial blob; sha256 is checked on every read; paths never leave ``<root>/<tenant>``.
"""
from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import BinaryIO

from .blob_store import StoreError, blob_key, check_tenant, is_digest


class LocalStore:
    """Local-directory adapter (embedded default under ``RELAIS_DATA_DIR/vault``)."""

    def __init__(self, root: Path, tenant: str) -> None:
        self.tenant = check_tenant(tenant)
        self.root = Path(root) / tenant
        self.root.mkdir(parents=True, exist_ok=True)

    def _path(self, digest: str) -> Path:
        return self.root / blob_key(digest)

    def exists(self, digest: str) -> bool:
        return self._path(digest).is_file()

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        target = self._path(digest)
        if target.is_file():
            return digest  # dedup: an unchanged file is stored once
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return digest

    def upload(self, digest: str, size: int, open_: Callable[[], BinaryIO]) -> None:
        target = self._path(digest)
        if target.is_file():
            return
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        try:
            h, n = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as f, open_() as src:
                while block := src.read(1 << 20):
                    h.update(block)
                    n += len(block)
                    f.write(block)
                f.flush()
                os.fsync(f.fileno())
            if (h.hexdigest(), n) != (digest, size):
                raise StoreError(f"blob {digest} ({size} bytes) for tenant {self.tenant}: the content given "
                                 f"hashes to {h.hexdigest()} ({n} bytes); not stored")
            os.replace(tmp, target)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def size(self, digest: str) -> int | None:
        try:
            return self._path(digest).stat().st_size
        except FileNotFoundError:
            return None

    def delete(self, digest: str) -> bool:
        try:
            self._path(digest).unlink()
            return True
        except FileNotFoundError:
            return False

    def get(self, digest: str) -> bytes:
        p = self._path(digest)
        if not p.is_file():
            raise StoreError(f"blob {digest} not found for tenant {self.tenant}")
        data = p.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"blob {digest} for tenant {self.tenant} is corrupt (sha256 mismatch)")
        return data

    def read_chunks(self, digest: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        try:
            f = self._path(digest).open("rb")
        except FileNotFoundError:
            raise StoreError(f"blob {digest} not found for tenant {self.tenant}") from None
        with f:
            while block := f.read(chunk_size):
                yield block

    def list_digests(self) -> list[str]:
        base = self.root / "blobs" / "sha256"
        return sorted(p.name for p in base.glob("*/*") if is_digest(p.name)) if base.exists() else []
