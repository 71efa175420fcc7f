"""The Prometheus metrics of a Relais process (prometheus_client's default registry: one per process).

The bus feeds most of them, so every consumer and every service that writes
events is counted without code of its own:

| metric | type | labels | fed by |
|---|---|---|---|
| `relais_service_info` | gauge (1) | `service`, `version` | `relais serve` |
| `relais_messages_total` | counter | `consumer`, `outcome` (handled, duplicate, retry, dead) | consumers |
| `relais_messages_redelivered_total` | counter | `consumer` | redeliveries (a consumer died holding them) |
| `relais_handler_failures_total` | counter | `consumer`, `error` (exception class) | a handler that raised |
| `relais_handler_duration_seconds` | histogram | `consumer`, `kind` (`event`, `batch`) | each handler call |
| `relais_outbox_published_total` | counter | | the outbox relay, once the broker confirmed |
| `relais_outbox_publish_failures_total` | counter | | the outbox relay |
| `relais_outbox_backlog` | gauge | | events waiting in the outbox, read when scraped |
| `relais_events_emitted_total` | counter | `type` | events this process committed to the outbox |
| `relais_sso_logins_total` | counter | `result` (`succeeded`, `failed`) | `sso.login.*` events committed |
| `relais_provisioning_grants_total` | counter | `action` (`granted`, `revoked`) | `provisioning.grant.*` events |
| `relais_http_requests_total` | counter | `code` (HTTP status) | a service's HTTP requests (not the ops port's) |
| `relais_http_request_duration_seconds` | histogram | | from the request's start to its response's last byte |
| `relais_http_requests_in_flight` | gauge | | requests being answered now |
| `relais_http_request_timeouts_total` | counter | | requests cut at RELAIS_HTTP_REQUEST_TIMEOUT_S |

Events are counted when the transaction that wrote them commits (a rolled
back transaction or savepoint counts nothing), so the domain counters are
exactly the events the rest of Relais will see. Metrics stay out of the
domain model: it writes events, the bus counts them.
"""

from __future__ import annotations

import logging
import threading
import weakref
from collections import Counter as _Tally
from collections.abc import Callable, Iterable, Mapping
from importlib.metadata import PackageNotFoundError, version

from prometheus_client import Counter, Gauge, Histogram, disable_created_metrics
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import REGISTRY, Collector
from sqlalchemy import Connection, Engine, event

from .logs import describe_error

log = logging.getLogger(__name__)

disable_created_metrics()  # no `*_created` series: Prometheus does not need them, and they double the output

SERVICE_INFO = Gauge("relais_service_info", "The Relais service this process runs (always 1).",
                     ["service", "version"])
MESSAGES = Counter("relais_messages", "Messages settled by a consumer, by outcome.", ["consumer", "outcome"])
REDELIVERED = Counter("relais_messages_redelivered", "Deliveries RabbitMQ flagged as redelivered.", ["consumer"])
HANDLER_FAILURES = Counter("relais_handler_failures", "Handler calls that raised, by exception class.",
                           ["consumer", "error"])
HANDLER_SECONDS = Histogram("relais_handler_duration_seconds",
                            "Time in a handler call (one event, or one batch), its transaction included.",
                            ["consumer", "kind"],
                            buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
OUTBOX_PUBLISHED = Counter("relais_outbox_published", "Outbox events the broker confirmed.")
OUTBOX_FAILURES = Counter("relais_outbox_publish_failures", "Outbox relay runs that failed to publish.")
EVENTS_EMITTED = Counter("relais_events_emitted", "Events committed to the outbox by this process.", ["type"])
LOGINS = Counter("relais_sso_logins", "National logins, from the sso.login.* events.", ["result"])
GRANTS = Counter("relais_provisioning_grants", "Resource grants, from the provisioning.grant.* events.",
                 ["action"])
HTTP_REQUESTS = Counter("relais_http_requests", "HTTP requests answered, by status code.", ["code"])
HTTP_SECONDS = Histogram("relais_http_request_duration_seconds", "HTTP requests, from start to last byte sent.",
                         buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
HTTP_IN_FLIGHT = Gauge("relais_http_requests_in_flight", "HTTP requests being answered now.")
HTTP_TIMEOUTS = Counter("relais_http_request_timeouts", "HTTP requests cut at RELAIS_HTTP_REQUEST_TIMEOUT_S.")

# Event type -> (domain counter, its labels): what the events a service commits mean to an operator.
DOMAIN_EVENTS: dict[str, tuple[Counter, dict[str, str]]] = {
    "sso.login.succeeded": (LOGINS, {"result": "succeeded"}),
    "sso.login.failed": (LOGINS, {"result": "failed"}),
    "provisioning.grant.created": (GRANTS, {"action": "granted"}),
    "provisioning.grant.revoked": (GRANTS, {"action": "revoked"}),
}


def set_service(service: str) -> None:
    try:
        v = version("relais")
    except PackageNotFoundError:
        v = "unknown"
    SERVICE_INFO.labels(service=service, version=v).set(1)


# -- events, counted on commit ---------------------------------------------------------------


class _Pending:
    """Event counts written in one connection's transaction, kept until it commits.

    Savepoints nest strictly, so what a rolled back savepoint wrote is every
    count added since it began: `starts` is a stack of where each open one
    began (one begun before we listened began before every count: at 0).
    """

    def __init__(self) -> None:
        self.added: list[Mapping[str, int]] = []
        self.starts: list[int] = []

    def savepoint(self, _conn, _name) -> None:
        self.starts.append(len(self.added))

    def rollback_savepoint(self, _conn, _name, _context) -> None:
        del self.added[(self.starts.pop() if self.starts else 0):]

    def release_savepoint(self, _conn, _name, _context) -> None:
        if self.starts:
            self.starts.pop()

    def commit(self, _conn) -> None:
        added, self.added, self.starts = self.added, [], []
        for counts in added:
            _count_events(counts)

    def rollback(self, _conn) -> None:
        self.added, self.starts = [], []


_pending: weakref.WeakKeyDictionary[Connection, _Pending] = weakref.WeakKeyDictionary()
_listening: weakref.WeakSet[Engine] = weakref.WeakSet()
_pending_lock = threading.Lock()  # connections of several threads (an HTTP service's requests) come here
_TRANSACTION_EVENTS = ("savepoint", "rollback_savepoint", "release_savepoint", "commit", "rollback")


def count_events_on_commit(conn: Connection, types: Iterable[str]) -> None:
    """Count these events (their types) once `conn`'s transaction commits."""
    counts = _Tally(types)
    if not counts:
        return
    # Listen once per engine, not per connection: every transaction checks out a new Connection, and
    # registering listeners on it costs more than the rest of a small transaction's bookkeeping.
    engine = getattr(conn.engine, "_proxied", conn.engine)  # writer(engine) is an OptionEngine over it
    with _pending_lock:
        if engine not in _listening:
            for name in _TRANSACTION_EVENTS:
                event.listen(engine, name, _forward(name))
            _listening.add(engine)
        pending = _pending.get(conn)
        if pending is None:
            pending = _pending[conn] = _Pending()
    pending.added.append(counts)


def _forward(name: str) -> Callable[..., None]:
    """An engine-wide listener handing a transaction event to the counts of its connection, if it has any."""
    def forward(conn: Connection, *args) -> None:
        pending = _pending.get(conn)
        if pending is not None:
            getattr(pending, name)(conn, *args)
    return forward


def _count_events(counts: Mapping[str, int]) -> None:
    for type_, n in counts.items():
        EVENTS_EMITTED.labels(type=type_).inc(n)
        domain = DOMAIN_EVENTS.get(type_)
        if domain is not None:
            domain[0].labels(**domain[1]).inc(n)


# -- the outbox backlog, read when scraped -------------------------------------------------


class OutboxBacklog(Collector):
    """`relais_outbox_backlog`: the events waiting in an outbox, counted at each scrape by `count`.

    When the database does not answer, the metric is left out of the scrape (readiness says why).
    """

    def __init__(self, count: Callable[[], int]) -> None:
        self.count = count

    def collect(self):
        try:
            n = self.count()
        except Exception as exc:  # noqa: BLE001 - a scrape must not fail because the database is down
            log.debug("outbox backlog not read: %s", describe_error(exc))
            return
        yield GaugeMetricFamily("relais_outbox_backlog", "Events waiting in the outbox to be published.", value=n)

    def describe(self):
        return []


def watch_outbox(count: Callable[[], int]) -> OutboxBacklog:
    """Export the outbox backlog `count` reads from this process (once per process)."""
    collector = OutboxBacklog(count)
    REGISTRY.register(collector)
    return collector

