"""What `relais serve vault` runs: continuous mode, RPC, the outbox relay and the purge.

- the consumer of `relais.q.vault` (`ent.item.changed`, `ent.item.deleted`; retries,
  dead letters, idempotent on event id): `continuous.handler.ItemEvents` in the consumer's
  transaction; one at a time on SQLite (one writer), eight at once on PostgreSQL;
- RPC (`rpc-vault`), for the operator (`relais rpc`): `status()`, `versions(person, vertical, item,
  actor=None)`, `restore(person, vertical, item, actor=None, version=None)`; the access log records
  the caller the broker vouched for, which `actor` may only narrow (`operator:jdupont`:
  `rules.access_log.rpc_actor`), never change;
- the relay publishes the `vault.person.erased` audit events;
- every RELAIS_VAULT_PURGE_INTERVAL seconds, tombstones past retention are purged.
"""
from __future__ import annotations

import logging
from typing import Any

from relais.db import is_sqlite
from relais.ops.health import object_store_check
from relais.runtime import OPERATOR, Consumer, Context, Parts, Process, RpcMethod, StartError, Timer
from relais.runtime.callers import Caller, RpcRefused

from . import rights, subject
from .adapters.blob_store import StoreError
from .adapters.metered_store import MeteredBlobStore
from .continuous.handler import CONSUMER, ItemEvents
from .items import Vault
from .rules.access_log import ActorRefused, rpc_actor
from .settings import VaultConfigError, VaultSettings

log = logging.getLogger(__name__)

RPC: dict[str, RpcMethod] = {
    "status": RpcMethod(callers=(OPERATOR,)),
    "versions": RpcMethod(callers=(OPERATOR,), caller=True),
    "restore": RpcMethod(callers=(OPERATOR,), caller=True),
}


def acting(caller: Caller, actor: str | None) -> str:
    """Who the access log records for an RPC call: the checked caller, narrowed by `actor` at most."""
    try:
        return rpc_actor(caller.role, actor)
    except ActorRefused as exc:
        raise RpcRefused(f"vault: {exc}") from None


def start(ctx: Context[None]) -> Parts:
    try:
        settings = VaultSettings.from_env(settings=ctx.settings)
    except VaultConfigError as exc:
        raise StartError(str(exc)) from None
    raw = settings.store_on_first_use(ctx.settings.tenant)
    try:
        raw.open()
    except StoreError as exc:
        log.warning("vault store not available yet (%s); events wait in their queue until it is", exc)
    store = MeteredBlobStore(raw)
    retention = settings.default_retention

    def vault(actor: str) -> Vault:
        return Vault(ctx.engine, store, actor=actor, retention=retention)

    def status() -> dict[str, Any]:
        return vault("rpc").status()

    def versions(person: str, vertical: str, item: str, actor: str | None = None, *,
                 caller: Caller) -> list[dict[str, Any]]:
        return [v.to_dict() for v in vault(acting(caller, actor)).versions(person, vertical, item)]

    def restore(person: str, vertical: str, item: str, actor: str | None = None, version: int | None = None, *,
                caller: Caller) -> dict[str, Any]:
        return vault(acting(caller, actor)).restore(person, vertical, item, version).to_dict()

    def purge() -> None:
        try:
            rights.purge_expired(vault("relais.vault.purge"))
        except StoreError as exc:
            log.warning("purge: %s; will try again in %.0f s", exc, settings.purge_interval_s)

    # SQLite has one writer: handlers taking turns beat handlers waiting on its lock (busy timeout).
    parallel = 1 if is_sqlite(ctx.engine) else 8
    return Parts(
        consumers=[Consumer(CONSUMER, ItemEvents(store, default_retention=retention), parallel=parallel),
                   subject.consumer(ctx.settings.tenant, store)],
        timers=[Timer("purge", settings.purge_interval_s, purge)],
        rpc={"status": status, "versions": versions, "restore": restore},
        checks={"object_store": object_store_check(settings.store_target)},
    )


PROCESS: Process[None] = Process(service="vault", start=start, readiness=("broker", "database"), rpc=RPC)
