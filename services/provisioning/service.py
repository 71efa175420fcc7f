"""The provisioning service process: consume directory events, keep grants right, relay.

`python -m services.provisioning.service` (or `relais serve provisioning`)
runs until SIGTERM: the consumer (queue `relais.q.provisioning`, retries,
dead letters, idempotent on event id) applies each directory event to the
projection and reconciles the accounts it touches in the same transaction;
a background thread relays the outbox every second and revokes grants whose
departure grace period is over once an hour.

This is a plain-Python runtime: nameko's event handlers bind to their own
exchanges and queues, not to the `relais.events` topology with its retry and
dead-letter queues, so the consumer drives py-amqp itself.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from typing import Any

import amqp
from sqlalchemy import Connection, Engine

from relais.bus.consumer import EventConsumer
from relais.bus.contracts import subscriptions
from relais.bus.outbox import OutboxRelay
from relais.bus.publisher import ConfirmedPublisher, PublishError
from relais.config import Settings
from relais.db import make_engine, upgrade, writer

from .handlers import Context, apply_directory_events, reconcile, sweep_departures

log = logging.getLogger(__name__)

CONSUMER = "provisioning"
BINDINGS = list(subscriptions()[CONSUMER])  # the contracts' receive operations say what it takes


class DirectoryEvents:
    """The consumer's handler: the view of the directory, then the grants, in the consumer's transaction."""

    def __init__(self, tenant: str):
        self.tenant = tenant

    def __call__(self, event: dict[str, Any], conn: Connection) -> None:
        self.many([event], conn)

    def many(self, events: list[dict[str, Any]], conn: Connection) -> None:
        """Apply every event to the view, then reconcile each account touched once, citing its last event."""
        mine = []
        for event in events:
            if event.get("tenant") == self.tenant:
                mine.append(event)
            else:
                log.warning("event %s of tenant %r ignored (this service serves %r)",
                            event["id"], event.get("tenant"), self.tenant)
        affected = apply_directory_events(conn, mine)
        if affected:
            # One reconcile for the batch; each grant event cites the directory event behind it.
            ctx = Context(self.tenant, causes={j: (e["correlation_id"], e["id"]) for j, e in affected.items()})
            reconcile(conn, list(affected), ctx)


def consumer(engine: Engine, tenant: str) -> EventConsumer:
    handler = DirectoryEvents(tenant)
    return EventConsumer(CONSUMER, BINDINGS, handler, engine, batch_handler=handler.many)


def relay_loop(engine: Engine, amqp_uri: str, stop: threading.Event, tenant: str, interval: float = 1.0) -> None:
    relay = OutboxRelay(engine, lambda: ConfirmedPublisher(amqp_uri))
    ticks = 0
    try:
        while not stop.wait(interval):
            ticks += 1
            try:
                relay.drain()
            except PublishError as exc:
                log.warning("outbox relay: %s (the events wait in the outbox)", exc)
            if ticks % 3600 == 0:
                with writer(engine).begin() as conn:
                    sweep_departures(conn, Context(tenant))
    finally:
        relay.close()


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    relayer = threading.Thread(target=relay_loop, args=(engine, settings.amqp_uri, stop, settings.tenant),
                               name="outbox-relay", daemon=True)
    relayer.start()
    log.info("provisioning: consuming directory events for tenant %s", settings.tenant)
    while not stop.is_set():
        try:
            consumer(engine, settings.tenant).run(settings.amqp_uri, stop=stop)
        except (OSError, amqp.exceptions.AMQPError) as exc:  # the broker went away: wait, then reconnect
            log.warning("provisioning: broker connection lost (%s); reconnecting in 5 s", exc)
            stop.wait(5)
    relayer.join(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
