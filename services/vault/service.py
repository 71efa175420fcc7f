"""The vault's nameko entrypoint (`relais serve vault`): continuous mode, RPC, outbox relay, purge.

Thin on purpose: each entrypoint hands over to plain Python. Database and object-store calls
block, so they run in eventlet's thread pool and do not stall the hub (STACK_NOTES.md item 4).

- `on_item_event`: queue `relais.q.vault` (`ent.item.changed`, `ent.item.deleted`), with the
  bus's retries and dead-letter queue (`nameko_bus.BusConsumer`), handled by
  `continuous.ItemEvents` in `EventConsumer`'s transaction, idempotent on event id;
- RPC `vault.status()`, `vault.versions(person, vertical, item, actor)`,
  `vault.restore(person, vertical, item, actor, version=None)`;
- every second, the outbox relay (the `vault.person.erased` audit events);
- every RELAIS_VAULT_PURGE_INTERVAL seconds, the purge of tombstones past retention.
"""
from __future__ import annotations

import logging
import time
from datetime import timedelta

from eventlet import tpool
from eventlet.semaphore import Semaphore
from nameko.extensions import DependencyProvider
from nameko.rpc import rpc
from nameko.timer import timer
from sqlalchemy.exc import OperationalError

from relais.bus.consumer import EventConsumer, Outcome
from relais.bus.contracts import subscriptions
from relais.bus.outbox import OutboxRelay
from relais.bus.publisher import ConfirmedPublisher, PublishError
from relais.config import Settings
from relais.db import is_sqlite, make_engine, upgrade
from relais.ops.logs import describe_error
from relais.ops.metrics import MeteredBlobStore

from . import rights
from .continuous import CONSUMER, ItemEvents
from .model import Vault
from .nameko_bus import bus_consumer
from .settings import VaultSettings
from .store import StoreError

log = logging.getLogger(__name__)

BINDINGS = list(subscriptions()[CONSUMER])  # the contracts' receive operations say what it takes


class Runtime(DependencyProvider):
    """One engine, store, consumer and relay per service instance."""

    def setup(self) -> None:
        settings = Settings.from_env()
        vault_settings = VaultSettings.from_env(settings=settings)
        engine = make_engine(settings.database_url)
        tpool.execute(upgrade, engine)
        self.engine = engine
        store = vault_settings.store_on_first_use(settings.tenant)
        try:
            tpool.execute(store.open)
        except StoreError as exc:
            log.warning("vault store not available yet (%s); events wait in their queue until it is", exc)
        self.store = MeteredBlobStore(store)
        self.retention = timedelta(days=vault_settings.retention_days)
        self.consumer = EventConsumer(CONSUMER, BINDINGS, ItemEvents(self.store, default_retention=self.retention),
                                      engine)
        # SQLite has one writer: handlers taking turns beat handlers waiting on its lock (busy timeout).
        self.handling = Semaphore(1 if is_sqlite(engine) else 8)
        self.relay = OutboxRelay(engine, lambda: ConfirmedPublisher(settings.amqp_uri))
        self.purge_interval = vault_settings.purge_interval_s
        self.next_purge = time.monotonic() + self.purge_interval

    def vault(self, actor: str) -> Vault:
        return Vault(self.engine, self.store, actor=actor, retention=self.retention)

    def stop(self) -> None:
        self.relay.close()

    def get_dependency(self, worker_ctx):
        return self


class VaultService:
    name = "vault"
    runtime = Runtime()

    @bus_consumer(CONSUMER, BINDINGS)
    def on_item_event(self, body: bytes, attempts: int) -> Outcome:
        with self.runtime.handling:
            return tpool.execute(self.runtime.consumer.handle, body, attempts)

    @rpc
    def status(self) -> dict:
        return tpool.execute(self.runtime.vault("rpc").status)

    @rpc
    def versions(self, person: str, vertical: str, item: str, actor: str) -> list[dict]:
        found = tpool.execute(self.runtime.vault(f"rpc:{actor}").versions, person, vertical, item)
        return [v.to_dict() for v in found]

    @rpc
    def restore(self, person: str, vertical: str, item: str, actor: str, version: int | None = None) -> dict:
        return tpool.execute(self.runtime.vault(f"rpc:{actor}").restore, person, vertical, item, version).to_dict()

    @timer(interval=1)
    def relay_outbox(self) -> None:
        try:
            tpool.execute(self.runtime.relay.drain)
        except PublishError as exc:
            log.warning("outbox relay: %s; will retry", exc)
        except OperationalError as exc:
            log.info("outbox relay: database busy (%s); will retry", describe_error(exc))

    @timer(interval=1)
    def purge(self) -> None:
        """Purge tombstones past retention when it is time (RELAIS_VAULT_PURGE_INTERVAL)."""
        rt = self.runtime
        if time.monotonic() < rt.next_purge:
            return
        rt.next_purge = time.monotonic() + rt.purge_interval
        try:
            tpool.execute(rights.purge_expired, rt.vault("relais.vault.purge"))
        except (StoreError, OperationalError) as exc:
            log.warning("purge: %s; will try again in %.0f s", describe_error(exc), rt.purge_interval)
