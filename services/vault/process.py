"""What `relais serve vault` runs: continuous mode, RPC, the outbox relay and the purge.

- the consumer of `relais.q.vault` (`ent.item.changed`, `ent.item.deleted`; retries,
  dead letters, idempotent on event id): `continuous.handler.ItemEvents` in the consumer's
  transaction; one at a time on SQLite (one writer), eight at once on PostgreSQL;
- RPC (`rpc-vault`), for the operator (`relais rpc`): `status()`, `versions(person, vertical, item,
  actor=None)`, `restore(person, vertical, item, actor=None, version=None)`; the access log records
  the caller the broker vouched for, which `actor` may only narrow (`operator:jdupont`:
  `rules.access_log.rpc_actor`), never change;
- the relay publishes the `vault.person.erased` audit events;
- every RELAIS_VAULT_PURGE_INTERVAL seconds, tombstones past retention are purged;
- every RELAIS_VAULT_SYNC_INTERVAL seconds (default one hour), a sync pass from each connector of
  RELAIS_VAULT_SYNC (`sync/run.py`: only what changed is read, within the connector's rate limit, and
  every person's completeness checked); a connector that cannot be configured refuses the start.
"""
from __future__ import annotations

import logging
from typing import Any

from connectors.sdk import ConfigError, ConnectorError
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
from .sync.run import sync
from .transfer.peers import Peer, open_peer

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

    peers = _sync_peers(settings, ctx)

    def sync_all() -> None:
        for peer in peers:
            try:
                report = sync(ctx.engine, store, peer, retention=retention)
            except (StoreError, ConnectorError) as exc:
                log.warning("sync from %s: %s; will try again in %.0f s", peer.name, exc, settings.sync_interval_s)
                continue
            log.info("sync from %s: %s in %.1f s, %d changed, %d new versions, %d deleted, %d person(s) incomplete",
                     peer.name, "complete" if report.complete else "INCOMPLETE", report.seconds,
                     report.total("changed"), report.total("new_versions"), report.total("deleted"),
                     sum(1 for p in report.persons if not p.complete))

    # SQLite has one writer: handlers taking turns beat handlers waiting on its lock (busy timeout).
    parallel = 1 if is_sqlite(ctx.engine) else 8
    timers = [Timer("purge", settings.purge_interval_s, purge)]
    if peers:
        timers.append(Timer("sync", settings.sync_interval_s, sync_all))
    return Parts(
        consumers=[Consumer(CONSUMER, ItemEvents(store, default_retention=retention), parallel=parallel),
                   subject.consumer(ctx.settings.tenant, store)],
        timers=timers,
        rpc={"status": status, "versions": versions, "restore": restore},
        checks={"object_store": object_store_check(settings.store_target)},
    )


def _sync_peers(settings: VaultSettings, ctx: Context[None]) -> list[Peer]:
    try:
        return [open_peer(name, data_dir=ctx.settings.data_dir) for name in settings.sync_connectors]
    except ConfigError as exc:
        raise StartError(f"RELAIS_VAULT_SYNC: {exc}") from None


PROCESS: Process[None] = Process(service="vault", start=start, readiness=("broker", "database"), rpc=RPC)
