"""How an operator configures the vault: where blobs go, encryption, retention. From the environment.

- `RELAIS_VAULT_S3_ENDPOINT` (unset: the local store `$RELAIS_DATA_DIR/vault`): S3/MinIO URL,
  `https://minio.example:9000` (`http://` for no TLS);
- `RELAIS_VAULT_S3_ACCESS_KEY`: this tenant's access key (required with an endpoint);
- `RELAIS_VAULT_S3_SECRET_KEY`: its secret key (required with an endpoint; never printed nor logged);
- `RELAIS_VAULT_S3_SSE` (`off`): `on` for server-side encryption SSE-S3 (AES256, keys kept by the
  store; MinIO needs a KMS);
- `RELAIS_VAULT_S3_BUCKET_PREFIX` (`relais-vault-`): the tenant's bucket is `<prefix><tenant>`;
- `RELAIS_VAULT_RETENTION_DAYS` (`90`, `rules.retention.DEFAULT_DAYS`): how long tombstones stay
  restorable, for tenants without a policy of their own;
- `RELAIS_VAULT_PURGE_INTERVAL` (`3600`): seconds between the service's purges of expired tombstones;
- `RELAIS_VAULT_SYNC` (unset: none): connectors the service syncs from, comma-separated, each configured in
  `$RELAIS_DATA_DIR/connectors/<name>.yaml` (`sync/run.py`);
- `RELAIS_VAULT_SYNC_INTERVAL` (`3600`): seconds between the service's sync passes.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from relais.config import Settings

from .adapters.blob_store import BlobStore, StoreError, check_tenant
from .adapters.local_store import LocalStore
from .rules.retention import DEFAULT_DAYS

_ON = ("on", "true", "1", "yes")
_OFF = ("off", "false", "0", "no", "")


class VaultConfigError(ValueError):
    """A vault setting we cannot use; the message names the variable and what it expects."""


@dataclass(frozen=True)
class S3Config:
    url: str  # as given: scheme, host and port
    access_key: str
    secret_key: str = field(repr=False)
    sse: bool = False
    bucket_prefix: str = "relais-vault-"

    @property
    def endpoint(self) -> str:
        """`host:port`, as the minio client wants it."""
        return urlsplit(self.url).netloc

    @property
    def secure(self) -> bool:
        return urlsplit(self.url).scheme == "https"


@dataclass(frozen=True)
class VaultSettings:
    local_root: Path
    s3: S3Config | None
    retention_days: int = DEFAULT_DAYS
    purge_interval_s: float = 3600.0
    sync_connectors: tuple[str, ...] = ()
    sync_interval_s: float = 3600.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, settings: Settings | None = None) -> VaultSettings:
        env = os.environ if env is None else env
        settings = settings or Settings.from_env(env)
        return cls(
            local_root=settings.data_dir / "vault",
            s3=_s3(env),
            retention_days=_int(env, "RELAIS_VAULT_RETENTION_DAYS", DEFAULT_DAYS, minimum=0),
            purge_interval_s=float(_int(env, "RELAIS_VAULT_PURGE_INTERVAL", 3600, minimum=1)),
            sync_connectors=tuple(dict.fromkeys(n.strip() for n in (env.get("RELAIS_VAULT_SYNC") or "").split(",")
                                                if n.strip())),
            sync_interval_s=float(_int(env, "RELAIS_VAULT_SYNC_INTERVAL", 3600, minimum=1)),
        )

    @property
    def default_retention(self) -> timedelta:
        """How long tombstones stay for tenants without a policy of their own (`rules/retention.py`)."""
        return timedelta(days=self.retention_days)

    @property
    def store_target(self) -> str:
        """Where blobs go: the S3 URL or the local folder (readiness checks it)."""
        return self.s3.url if self.s3 else str(self.local_root)

    def open_store(self, tenant: str) -> BlobStore:
        """This tenant's store handle; StoreError naming the store when it cannot be opened."""
        if self.s3 is None:
            return LocalStore(self.local_root, tenant)
        # Only a tenant on S3 imports the minio client: about 0.2 s every other `relais` command saves.
        from minio.sse import SseS3

        from .adapters.s3_store import S3Store

        try:
            return S3Store(self.s3.endpoint, self.s3.access_key, self.s3.secret_key, tenant,
                           secure=self.s3.secure, bucket_prefix=self.s3.bucket_prefix,
                           sse=SseS3() if self.s3.sse else None)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - minio's S3Error: credentials, KMS missing for SSE...
            raise StoreError(f"object store {self.s3.url}: cannot open the bucket of tenant {tenant}: "
                             f"{getattr(exc, 'code', None) or type(exc).__name__}: "
                             f"{getattr(exc, 'message', None) or exc}") from None

    def store_on_first_use(self, tenant: str) -> StoreOnFirstUse:
        """The tenant's store, opened when first used (`open()` to open it now)."""
        return StoreOnFirstUse(self, tenant)

    def describe(self) -> dict:
        """What `relais config` and `relais vault status` show: no secret."""
        store = ({"kind": "s3", "endpoint": self.s3.url, "access_key": self.s3.access_key,
                  "sse": "on" if self.s3.sse else "off", "bucket_prefix": self.s3.bucket_prefix}
                 if self.s3 else {"kind": "local", "root": str(self.local_root)})
        return {"store": store, "retention_days_default": self.retention_days,
                "purge_interval_s": self.purge_interval_s, "sync_connectors": list(self.sync_connectors),
                "sync_interval_s": self.sync_interval_s}


class StoreOnFirstUse:
    """A tenant's store opened when first needed: the object store may start after the vault
    service (events then wait in their queue, retried), and `relais vault status` or
    `access-log` need only the database."""

    def __init__(self, settings: VaultSettings, tenant: str) -> None:
        self._settings, self.tenant = settings, check_tenant(tenant)
        self._store: BlobStore | None = None

    def open(self) -> BlobStore:
        if self._store is None:
            self._store = self._settings.open_store(self.tenant)
        return self._store

    def __getattr__(self, name: str) -> Any:
        return getattr(self.open(), name)


def _s3(env: Mapping[str, str]) -> S3Config | None:
    url = (env.get("RELAIS_VAULT_S3_ENDPOINT") or "").strip()
    if not url:
        return None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
        raise VaultConfigError(f"RELAIS_VAULT_S3_ENDPOINT={url!r}: expected an http:// or https:// URL of the "
                               "server only, such as https://minio.example:9000")
    missing = [v for v in ("RELAIS_VAULT_S3_ACCESS_KEY", "RELAIS_VAULT_S3_SECRET_KEY") if not env.get(v)]
    if missing:
        raise VaultConfigError(f"RELAIS_VAULT_S3_ENDPOINT is set but {' and '.join(missing)} "
                               f"{'is' if len(missing) == 1 else 'are'} not: give this tenant's S3 credentials")
    sse = (env.get("RELAIS_VAULT_S3_SSE") or "off").strip().lower()
    if sse not in _ON + _OFF:
        raise VaultConfigError(f"RELAIS_VAULT_S3_SSE={sse!r}: expected on or off")
    return S3Config(url=url.rstrip("/"), access_key=env["RELAIS_VAULT_S3_ACCESS_KEY"],
                    secret_key=env["RELAIS_VAULT_S3_SECRET_KEY"], sse=sse in _ON,
                    bucket_prefix=env.get("RELAIS_VAULT_S3_BUCKET_PREFIX") or "relais-vault-")


def _int(env: Mapping[str, str], name: str, default: int, *, minimum: int) -> int:
    raw = (env.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise VaultConfigError(f"{name}={raw!r}: expected a whole number") from None
    if value < minimum:
        raise VaultConfigError(f"{name}={value}: expected at least {minimum}")
    return value
