"""What provisioning's two processes run.

`relais serve provisioning`: the directory-event consumer, the outbox relay, the departures sweep.
- the consumer (queue `relais.q.provisioning`; retries, dead letters, idempotent on
  event id) applies each batch of directory events to provisioning's view of the
  directory and reconciles the accounts they touch, in the same transaction;
- the relay publishes the grant events that writes;
- once an hour, grants whose departure grace period is over are revoked.

`relais serve provisioning-api`: the HTTP APIs apps call (the OAuth token endpoint, OneRoster,
SCIM: `api/wsgi.py`), with the probes /healthz and /readyz, on RELAIS_HTTP_HOST:RELAIS_HTTP_PORT
(default 127.0.0.1:8420), behind a TLS-terminating proxy; served like every Relais HTTP service
(relais/ops/server.py: threads, limits and access logs as RELAIS_HTTP_* say). It reads the
database and writes only API tokens: no consumer, no relay, no broker. Scale it apart from the
consumer, as many instances as the APIs' load needs.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import Connection

from relais.db import writer
from relais.ops.server import HttpConfigError, http_address
from relais.runtime import Consumer, Context, Http, Parts, Process, StartError, Timer

from . import subject
from .api.wsgi import make_app
from .handlers.departures import sweep_departures
from .handlers.directory_view import apply_directory_events
from .handlers.reconcile import reconcile
from .handlers.work import Context as Work

log = logging.getLogger(__name__)

CONSUMER = "provisioning"  # queue relais.q.provisioning; its bindings are the contracts' receive operations
SWEEP_EVERY_S = 3600.0
API_HOST, API_PORT = "127.0.0.1", 8420


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
            work = Work(self.tenant, causes={j: (e["correlation_id"], e["id"]) for j, e in affected.items()})
            reconcile(conn, list(affected), work)


def consumer(tenant: str) -> Consumer:
    handler = DirectoryEvents(tenant)
    return Consumer(CONSUMER, handler, batch_handler=handler.many)


def start(ctx: Context[None]) -> Parts:
    tenant = ctx.settings.tenant

    def sweep() -> None:
        with writer(ctx.engine).begin() as conn:
            sweep_departures(conn, Work(tenant))

    return Parts(consumers=[consumer(tenant), subject.consumer(tenant)],  # the second: erasure requests
                 timers=[Timer("departures-sweep", SWEEP_EVERY_S, sweep)])


def start_api(ctx: Context[None]) -> Parts:
    try:
        host, port = http_address(API_HOST, API_PORT)
    except HttpConfigError as exc:
        raise StartError(str(exc)) from None
    return Parts(http=Http(make_app(ctx.engine), host, port,
                           describe=f"provisioning API on http://{host}:{port}/ (/oauth/token, OneRoster, SCIM)"))


PROCESS: Process[None] = Process(service="provisioning", start=start, readiness=("broker", "database"))
API_PROCESS: Process[None] = Process(service="provisioning-api", start=start_api, readiness=("database",), relay=False)
