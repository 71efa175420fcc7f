"""What `relais serve usage` runs: the consumer of the SSO's and provisioning's events, and the closing of periods.

- the consumer of `relais.q.usage` (its bindings: the contracts' receive operations for `usage`;
  retries, dead letters, idempotent on event id) turns each batch into pseudonymous activity and
  counters (`handlers/ingest.py`), in the consumer's transaction;
- every hour, the periods that have ended (and whose grace has passed) are closed: aggregates kept,
  pseudonyms and key destroyed (`handlers/close.py`);
- the consumer of erasure requests (`relais.q.usage-subject`, `subject.py`); its relay publishes
  only their confirmations.
"""

from __future__ import annotations

from datetime import UTC, datetime

from relais.runtime import Consumer, Context, Parts, Process, StartError, Timer
from relais.subject.events import CONFIRMED

from . import subject
from .handlers.close import close_due
from .handlers.ingest import UsageEvents
from .settings import UsageConfigError, UsageSettings

CONSUMER = "usage"  # queue relais.q.usage
BATCH = 1000  # events per transaction: small rows, one commit for many (bench-usage)


def consumer(tenant: str, settings: UsageSettings) -> Consumer:
    handler = UsageEvents(tenant, settings.zone, settings.services)
    return Consumer(CONSUMER, handler, batch_handler=handler.many, batch_size=BATCH)


def start(ctx: Context[None]) -> Parts:
    try:
        settings = UsageSettings.from_env()
    except UsageConfigError as exc:
        raise StartError(str(exc)) from None
    tenant = ctx.settings.tenant

    def close() -> None:
        close_due(ctx.engine, tenant, datetime.now(UTC), settings.zone, settings.grace)

    return Parts(consumers=[consumer(tenant, settings), subject.consumer(tenant)],
                 timers=[Timer("close-periods", settings.close_every_s, close)])


PROCESS: Process[None] = Process(service="usage", start=start, readiness=("broker", "database"),
                                 sends=(CONFIRMED,))  # its broker user may publish nothing else
