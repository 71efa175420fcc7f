"""The one runner: start a service's `Process`, keep it running until SIGTERM or SIGINT, stop it cleanly.

In order:
1. logging as `RELAIS_LOG_FORMAT` says, tagged with the service's name;
2. the ops endpoints (`/healthz`, `/readyz`, `/metrics`) on `RELAIS_OPS_PORT`, readiness made of the
   checks the process names (and, once started, those its parts add);
3. the database schema migrated, then the parts built by the process's `start`;
4. a thread per part: the outbox relay (every second), each timer, each consumer (reconnecting
   when the broker goes away), the HTTP server (cheroot, as RELAIS_HTTP_* say: relais/ops/server.py);
   then nameko, when the process answers RPC;
5. on SIGTERM or SIGINT: nameko stopped, the HTTP server shut down (no new connection; requests in
   flight finish, up to RELAIS_HTTP_SHUTDOWN_S), every loop told to stop and joined, then what the
   parts close, the relay and the ops endpoints.

A process that answers RPC runs under eventlet (nameko needs it): the caller patched the standard
library before importing anything (`green=True`); threads are then green threads, and whatever
blocks (the database, the object store) runs in eventlet's thread pool (`offload`), so it does not
stall the hub. Otherwise, threads are threads and `offload` calls directly.

Exit status: 0 after a clean stop; 2 when the process cannot start as configured (the message says
what to fix); 1 when starting failed otherwise.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

import amqp
from sqlalchemy import Engine
from sqlalchemy.exc import OperationalError

from relais.bus.consumer import EventConsumer
from relais.bus.contracts import subscriptions
from relais.bus.outbox import OutboxRelay, pending_count
from relais.bus.publisher import ConfirmedPublisher, PublishError
from relais.config import Settings
from relais.db import upgrade
from relais.ops import health, metrics
from relais.ops.failures import explain
from relais.ops.logs import LogConfigError, configure_logging, describe_error
from relais.ops.server import HttpConfigError, HttpSettings, ListenError, OpsApp, OpsConfigError, WsgiServer, serve_ops

from .process import Consumer, Context, Parts, Process, StartError, Timer

if TYPE_CHECKING:
    from .rpc import RpcServer

log = logging.getLogger(__name__)

P = TypeVar("P")
Offload = Callable[..., Any]

RELAY_INTERVAL_S = 1.0
RECONNECT_S = 5.0
JOIN_S = 10.0


def run(process: Process[P], settings: Settings, engine: Engine, ports: P, *, green: bool = False) -> int:
    """Run `process` until told to stop; returns the exit status. `green`: eventlet has patched this process."""
    if process.green and not green:
        return _refuse(process.service, "it answers RPC through nameko, which needs eventlet: start it with "
                                        "`relais serve`, which patches the standard library first")
    stop = threading.Event()
    _on_signals(stop, green)
    offload = _offload(green)
    try:
        configure_logging(process.service)
        ops_app = _ops_app(process, settings, engine, offload)
        ops = serve_ops(ops_app)
    except (LogConfigError, OpsConfigError, ListenError) as exc:
        return _refuse(process.service, str(exc))
    running: _Running | None = None
    try:
        try:
            offload(upgrade, engine)
            parts = offload(process.start, Context(settings, engine, ports))
            _check_rpc(process, parts)
            running = _Running(process, parts, settings, engine, stop, offload)
            ops_app.checks.update(parts.checks)
            running.start()
        except (StartError, ListenError, HttpConfigError) as exc:
            return _refuse(process.service, str(exc))
        except Exception as exc:  # noqa: BLE001 - say what failed, once, and exit
            failure = explain(exc, settings)  # the database or broker away: where, and what to do
            log.error("%s could not start: %s", process.service,
                      f"{failure.what} {failure.todo}" if failure.known else describe_error(exc), exc_info=True)
            return 1
        log.info("%s running (%s)", process.service, running.describe())
        running.wait()
        return 1 if running.failed else 0
    finally:
        if running is not None:
            running.stop()
        ops.stop()


class _Running:
    """The threads of one started process, and how to stop them."""

    def __init__(self, process: Process[Any], parts: Parts, settings: Settings, engine: Engine,
                 stop: threading.Event, offload: Offload) -> None:
        self.process, self.parts, self.settings, self.engine = process, parts, settings, engine
        self.stop_event, self.offload = stop, offload
        self.threads: list[threading.Thread] = []
        self.http: WsgiServer | None = None
        self.nameko: RpcServer | None = None
        self.relay: OutboxRelay | None = None

    def start(self) -> None:
        timers = list(self.parts.timers)
        if self.process.relay:
            self.relay = OutboxRelay(self.engine, lambda: ConfirmedPublisher(self.settings.amqp_uri))
            timers.insert(0, Timer("outbox-relay", RELAY_INTERVAL_S, self._relay_once))
        for timer in timers:
            self._thread(f"timer-{timer.name}", self._every, timer)
        for consumer in self.parts.consumers:
            for n in range(consumer.parallel):
                self._thread(f"consumer-{consumer.name}-{n}", self._consume, consumer)
        if self.parts.http is not None:
            http = self.parts.http
            app = http.app if not self.process.green else _offloaded(http.app, self.offload)
            settings = HttpSettings.from_env()  # RELAIS_HTTP_THREADS, ...: a bad value refuses the start
            self.http = WsgiServer(app, http.host, http.port, what=f"{self.process.service}'s HTTP",
                                   where="RELAIS_HTTP_HOST/RELAIS_HTTP_PORT", settings=settings)
            log.info("%s (%s)", http.describe or f"{self.process.service} on http://{http.host}:{self.http.port}/",
                     settings.describe())
        if self.process.rpc:
            from .rpc import start_rpc  # nameko and eventlet: loaded only by a process that answers RPC (patched)

            self.nameko = start_rpc(self.process.service, self.parts.rpc, self.process.rpc, self.settings.amqp_uri,
                                    self.stop_event)

    def describe(self) -> str:
        kinds = [("outbox relay" if self.relay else ""),
                 ", ".join(f"consumer {c.name}" + (f" x{c.parallel}" if c.parallel > 1 else "")
                           for c in self.parts.consumers),
                 ", ".join(f"timer {t.name} every {t.every_s:g} s" for t in self.parts.timers),
                 f"RPC {len(self.parts.rpc)} method(s)" if self.parts.rpc else "",
                 "HTTP" if self.http else ""]
        return "; ".join(k for k in kinds if k) or "nothing"

    def wait(self) -> None:
        self.stop_event.wait()

    @property
    def failed(self) -> bool:
        """Whether it stopped because a part failed for good (nameko's container died)."""
        return self.nameko is not None and self.nameko.failure is not None

    def stop(self) -> None:
        self.stop_event.set()
        if self.nameko is not None:
            self.nameko.stop()
        if self.http is not None:
            self.http.stop()
        for thread in self.threads:
            thread.join(timeout=JOIN_S)
            if thread.is_alive():
                log.warning("%s did not stop within %.0f s", thread.name, JOIN_S)
        for close in self.parts.close:
            try:
                close()
            except Exception as exc:  # noqa: BLE001 - closing the rest matters more
                log.warning("closing: %s", describe_error(exc))
        if self.relay is not None:
            self.relay.close()

    # -- the loops ---------------------------------------------------------------------------

    def _thread(self, name: str, target: Callable[..., None], *args: Any) -> None:
        thread = threading.Thread(target=target, args=args, name=name, daemon=True)
        thread.start()
        self.threads.append(thread)

    def _every(self, timer: Timer) -> None:
        while not self.stop_event.wait(timer.every_s):
            try:
                self.offload(timer.run)
            except Exception as exc:  # noqa: BLE001 - a timer's failure must not end it
                log.warning("%s failed: %s; next run in %g s", timer.name, describe_error(exc), timer.every_s)

    def _relay_once(self) -> None:
        """The outbox relay's run: a broker or a database away is said, and the events wait."""
        assert self.relay is not None
        try:
            self.relay.drain(stop=self.stop_event)  # SIGTERM: stop after the batch in flight
        except PublishError as exc:
            log.warning("outbox relay: %s (the events wait in the outbox)", exc)
        except OperationalError as exc:  # e.g. SQLite busy during a long import
            log.info("outbox relay: database busy or away (%s); will retry", describe_error(exc))

    def _consume(self, consumer: Consumer) -> None:
        bus = event_consumer(consumer, self.engine)
        while not self.stop_event.is_set():
            try:
                bus.run(self.settings.amqp_uri, stop=self.stop_event, offload=self.offload)
            except (OSError, amqp.exceptions.AMQPError) as exc:  # the broker went away: wait, then reconnect
                log.warning("consumer %s: broker connection lost (%s); reconnecting in %.0f s",
                            consumer.name, exc, RECONNECT_S)
                self.stop_event.wait(RECONNECT_S)


def event_consumer(consumer: Consumer, engine: Engine) -> EventConsumer:
    """The bus consumer that runs `consumer` (its queue's bindings: the contracts' receive operations).

    The runner drives it; tests, benchmarks and `--once` commands may too (`.run(amqp_uri, ...)`).
    """
    return EventConsumer(consumer.name, list(subscriptions()[consumer.name]), consumer.handler, engine,
                         batch_handler=consumer.batch_handler)


def _ops_app(process: Process[Any], settings: Settings, engine: Engine, offload: Offload) -> OpsApp:
    """The ops endpoints' application: readiness from the checks the process names; metrics with its backlog."""
    checks: dict[str, health.Check] = {}
    if "broker" in process.readiness:
        checks["broker"] = health.broker_check(settings.amqp_uri)
    if "database" in process.readiness:
        database = health.database_check(settings.database_url)
        checks["database"] = lambda: offload(database)
    metrics.set_service(process.service)
    if process.relay:
        def backlog() -> int:
            with engine.connect() as conn:
                return pending_count(conn)

        metrics.watch_outbox(backlog, run=offload)
    return OpsApp(process.service, checks)


def _check_rpc(process: Process[Any], parts: Parts) -> None:
    if set(parts.rpc) != set(process.rpc):
        raise RuntimeError(f"{process.service} declares RPC methods {sorted(process.rpc)} but started "
                           f"{sorted(parts.rpc)}")


def _refuse(service: str, message: str) -> int:
    print(f"relais serve {service}: {message}", file=sys.stderr)
    return 2


def _offload(green: bool) -> Offload:
    if not green:
        return lambda fn, *args, **kwargs: fn(*args, **kwargs)
    from eventlet import tpool  # only under eventlet (`green`): a plain process never loads it

    return tpool.execute


def _offloaded(app: Any, offload: Offload) -> Any:
    """A WSGI application whose every call, response body included, runs through `offload`."""
    def call(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        return offload(lambda: list(app(environ, start_response)))
    return call


def _on_signals(stop: threading.Event, green: bool) -> None:
    """SIGTERM and SIGINT set `stop` (under eventlet, from a green thread: a handler must not block the hub)."""
    if green:
        import eventlet  # only under eventlet, as above

        def handler(*_: Any) -> None:
            eventlet.spawn_n(stop.set)
    else:
        def handler(*_: Any) -> None:
            stop.set()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
