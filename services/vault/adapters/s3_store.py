"""The S3 blob store (MinIO, or any S3 server) through the minio client: one bucket per tenant.

Imported only when a tenant's store is on S3 (`settings.VaultSettings.open_store`): the minio
client takes about 0.2 s to import, which every other `relais` command would pay.
"""
from __future__ import annotations

import hashlib
import io
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import BinaryIO

import urllib3
import urllib3.exceptions
from minio import Minio
from minio.commonconfig import ENABLED
from minio.error import S3Error
from minio.sse import Sse, SseCustomerKey, SseS3
from minio.sseconfig import Rule, SSEConfig
from minio.versioningconfig import VersioningConfig
from urllib3 import BaseHTTPResponse

from .blob_store import StoreError, StoreUnavailable, blob_key, check_tenant

_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


class S3Store:
    """S3 adapter via the minio client: one bucket per tenant (``<prefix><tenant>``), versioning on.

    Isolation is enforced here: a handle is built for one tenant with that tenant's credentials
    and only ever addresses its own bucket; digests are validated so keys cannot be forged.
    ``sse`` is an optional minio ``Sse`` (e.g. ``SseS3()`` or ``SseCustomerKey(key)``); with
    ``SseS3`` the bucket's default encryption is set too, so no object is ever stored in clear.

    Failures to reach the object store raise ``StoreError`` saying where and what was being done
    (a restarting MinIO), after a few quick retries; the caller decides whether to try again.
    """

    CONNECT_TIMEOUT = 10.0
    READ_TIMEOUT = 120.0

    def __init__(self, endpoint: str, access_key: str, secret_key: str, tenant: str, *,
                 secure: bool = True, bucket_prefix: str = "relais-vault-", sse: Sse | None = None) -> None:
        self.tenant = check_tenant(tenant)
        self.bucket = f"{bucket_prefix}{tenant}"
        if not _BUCKET.match(self.bucket):
            raise StoreError(f"bucket name {self.bucket!r} (prefix {bucket_prefix!r} + tenant) is not a valid "
                             "S3 bucket name: 3-63 characters of [a-z0-9.-], starting and ending with a letter "
                             "or digit")
        self.endpoint = endpoint
        self._sse = sse
        http = urllib3.PoolManager(
            timeout=urllib3.Timeout(connect=self.CONNECT_TIMEOUT, read=self.READ_TIMEOUT), maxsize=16,
            retries=urllib3.Retry(total=3, connect=3, read=1, backoff_factor=0.2,
                                  status_forcelist=[500, 502, 503, 504]))
        self._client = Minio(endpoint, access_key=access_key, secret_key=secret_key, secure=secure, http_client=http)
        with self._errors("opening bucket", self.bucket):
            if not self._client.bucket_exists(self.bucket):
                self._client.make_bucket(self.bucket)
            self._client.set_bucket_versioning(self.bucket, VersioningConfig(ENABLED))
            if isinstance(sse, SseS3):
                self._client.set_bucket_encryption(self.bucket, SSEConfig(Rule.new_sse_s3_rule()))

    @contextmanager
    def _errors(self, doing: str, what: str) -> Iterator[None]:
        """Network failures as StoreError naming the store, the tenant and the operation."""
        try:
            yield
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = getattr(exc, "reason", None) or exc
            raise StoreUnavailable(f"object store {self.endpoint} unreachable while {doing} {what} for tenant "
                                   f"{self.tenant}: {type(reason).__name__}: {str(reason)[:200]}") from None

    def _ssec(self) -> SseCustomerKey | None:
        return self._sse if isinstance(self._sse, SseCustomerKey) else None

    def size(self, digest: str) -> int | None:
        key = blob_key(digest)
        with self._errors("looking up blob", digest):
            try:
                return self._client.stat_object(self.bucket, key, ssec=self._ssec()).size
            except S3Error as e:
                if e.code in ("NoSuchKey", "NotFound", "ResourceNotFound"):
                    return None
                raise StoreError(f"blob {digest} of tenant {self.tenant}: {e.code}") from None

    def exists(self, digest: str) -> bool:
        return self.size(digest) is not None

    def put(self, data: bytes) -> str:
        digest = hashlib.sha256(data).hexdigest()
        if self.exists(digest):
            return digest
        with self._errors("storing blob", digest):
            self._client.put_object(self.bucket, blob_key(digest), io.BytesIO(data), len(data), sse=self._sse)
        return digest

    def upload(self, digest: str, size: int, open_: Callable[[], BinaryIO]) -> None:
        key = blob_key(digest)
        with open_() as stream, self._errors("storing blob", digest):  # opening it is no network matter
            try:
                self._client.put_object(self.bucket, key, stream, size, sse=self._sse)
            except S3Error as e:
                raise StoreError(f"object store {self.endpoint} refused blob {digest} of tenant {self.tenant}: "
                                 f"{e.code}: {e.message}") from None

    def _object(self, key: str, digest: str) -> BaseHTTPResponse:
        """The blob's object, its body to read and the response to close; StoreError when the store has none."""
        try:
            return self._client.get_object(self.bucket, key, ssec=self._ssec())
        except S3Error as e:
            raise StoreError(f"blob {digest} not found for tenant {self.tenant}: {e.code}") from None

    def get(self, digest: str) -> bytes:
        key = blob_key(digest)
        with self._errors("reading blob", digest):
            resp = self._object(key, digest)
            try:
                data = resp.read()
            finally:
                resp.close()
                resp.release_conn()
        if hashlib.sha256(data).hexdigest() != digest:
            raise StoreError(f"blob {digest} for tenant {self.tenant} is corrupt (sha256 mismatch)")
        return data

    def read_chunks(self, digest: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        key = blob_key(digest)
        with self._errors("reading blob", digest):
            resp = self._object(key, digest)
            try:
                yield from resp.stream(chunk_size)
            except BaseException:  # the reader stopped (or failed) midway: the rest of the body is unread
                resp.close()
                raise
            finally:
                resp.release_conn()  # read to the end, the connection is kept for the next request

    def delete(self, digest: str) -> bool:
        """Remove every version of the blob's key (a versioned bucket keeps old versions otherwise:
        a plain DELETE only adds a delete marker, and the content would survive an erasure)."""
        key = blob_key(digest)
        with self._errors("deleting blob", digest):
            versions = [o.version_id for o in self._client.list_objects(
                self.bucket, prefix=key, include_version=True) if o.object_name == key]
            for version_id in versions:
                self._client.remove_object(self.bucket, key, version_id=version_id)
        return bool(versions)

    def list_digests(self) -> list[str]:
        with self._errors("listing", "blobs"):
            return sorted(o.object_name.rsplit("/", 1)[1]
                          for o in self._client.list_objects(self.bucket, prefix="blobs/sha256/", recursive=True))
