"""Vault blob storage: a tenant-scoped, content-addressed interface and its local adapter.

Key layout (shared by every adapter; see contracts/vault/SPEC.md):
  ``blobs/sha256/<hh>/<full hex digest>`` — immutable content, stored once per tenant.
The local adapter keeps each tenant under ``<root>/<tenant>/`` and writes to a temp file
then ``os.replace`` so a crash mid-write never leaves a visible partial blob.
The S3 adapter keeps one bucket per tenant (see S3Store).
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_TENANT = re.compile(r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$")
_DIGEST = re.compile(r"^[0-9a-f]{64}$")


class StoreError(Exception):
    """Storage failure or forbidden access (e.g. a digest not owned by this tenant)."""


def check_tenant(tenant: str) -> str:
    if not _TENANT.match(tenant):
        raise StoreError(f"invalid tenant id {tenant!r}: expected 3-63 chars of [a-z0-9-]")
    return tenant


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

    def exists(self, digest: str) -> bool: ...


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

    def get(self, digest: str) -> bytes:
        p = self._path(digest)
        if not p.is_file():
            raise StoreError(f"blob {digest} not found for tenant {self.tenant}")
        data = p.read_bytes()
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"blob {digest} for tenant {self.tenant} is corrupt (sha256 mismatch)")
        return data

    def list_digests(self) -> list[str]:
        base = self.root / "blobs" / "sha256"
        return sorted(p.name for p in base.glob("*/*") if _DIGEST.match(p.name)) if base.exists() else []


class S3Store:
    """S3 adapter via the minio client: one bucket per tenant (``<prefix><tenant>``), versioning on.

    Isolation is enforced here: a handle is built for one tenant with that tenant's credentials
    and only ever addresses its own bucket; digests are validated so keys cannot be forged.
    ``sse`` is an optional minio ``Sse`` (e.g. ``SseS3()`` or ``SseCustomerKey(key)``).
    """

    def __init__(self, endpoint: str, access_key: str, secret_key: str, tenant: str, *,
                 secure: bool = True, bucket_prefix: str = "relais-vault-", sse=None) -> None:
        from minio import Minio
        from minio.commonconfig import ENABLED
        from minio.versioningconfig import VersioningConfig

        self.tenant = check_tenant(tenant)
        self.bucket = f"{bucket_prefix}{tenant}"
        self._sse = sse
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure)
        if not self._client.bucket_exists(self.bucket):
            self._client.make_bucket(self.bucket)
        self._client.set_bucket_versioning(self.bucket, VersioningConfig(ENABLED))

    def exists(self, digest: str) -> bool:
        from minio.error import S3Error

        try:
            self._client.stat_object(self.bucket, blob_key(digest), ssec=self._ssec())
            return True
        except S3Error as e:
            if e.code in ("NoSuchKey", "NotFound", "ResourceNotFound"):
                return False
            raise

    def _ssec(self):
        from minio.sse import SseCustomerKey

        return self._sse if isinstance(self._sse, SseCustomerKey) else None

    def put(self, data: bytes) -> str:
        import io

        digest = hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            return digest
        self._client.put_object(self.bucket, blob_key(digest), io.BytesIO(data), len(data), sse=self._sse)
        return digest

    def get(self, digest: str) -> bytes:
        from minio.error import S3Error

        key = blob_key(digest)
        try:
            resp = self._client.get_object(self.bucket, key, ssec=self._ssec())
        except S3Error as e:
            raise StoreError(f"blob {digest} not found for tenant {self.tenant}: {e.code}") from None
        try:
            data = resp.read()
        finally:
            resp.close()
            resp.release_conn()
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"blob {digest} for tenant {self.tenant} is corrupt (sha256 mismatch)")
        return data

    def list_digests(self) -> list[str]:
        return sorted(o.object_name.rsplit("/", 1)[1]
                      for o in self._client.list_objects(self.bucket, prefix="blobs/sha256/", recursive=True))
