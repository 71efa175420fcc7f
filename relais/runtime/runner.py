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

A service that answers RPC also gets its RPC process, started with the command the composition
root gives (`rpc_command`), watched, and stopped with the rest (`relais.runtime.rpc_process`):
nameko needs eventlet, which stays out of this process, where threads are plain threads.

Exit status: 0 after a clean stop; 2 when the process cannot start as configured (the message says
what to fix); 1 when starting failed otherwise.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

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
from .rpc_process import RpcProcess

log = logging.getLogger(__name__)

P = TypeVar("P")

RELAY_INTERVAL_S = 1.0
RECONNECT_S = 5.0
JOIN_S = 10.0


def run(process: Process[P], settings: Settings, engine: Engine, ports: P, *,
        rpc_command: Sequence[str] | None = None) -> int:
    """Run `process` until told to stop; returns the exit status. `rpc_command` starts its RPC process."""
    if process.rpc and not rpc_command:
        return _refuse(process.service, "it answers RPC in a process of its own: start it with `relais serve`, "
                                        "which knows the command")
    stop = threading.Event()
    _on_signals(stop)
    try:
        configure_logging(process.service)
        ops_app = _ops_app(process, settings, engine)
        checks = ops_app.checks
        ops_app.checks = {**checks, "starting": _starting}  # not ready before every part runs
        ops = serve_ops(ops_app)
    except (LogConfigError, OpsConfigError, ListenError) as exc:
        return _refuse(process.service, str(exc))
    running: _Running | None = None
    try:
        try:
            upgrade(engine)
            parts = process.start(Context(settings, engine, ports))
            process.check_rpc(parts)
            running = _Running(process, parts, settings, engine, stop)
            running.start(rpc_command)
            rpc = {"rpc": running.rpc.check} if running.rpc is not None else {}
            ops_app.checks = {**checks, **parts.checks, **rpc}  # one swap: no longer "starting"
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
                 stop: threading.Event) -> None:
        self.process, self.parts, self.settings, self.engine = process, parts, settings, engine
        self.stop_event = stop
        self.threads: list[threading.Thread] = []
        self.http: WsgiServer | None = None
        self.rpc: RpcProcess | None = None
        self.relay: OutboxRelay | None = None

    def start(self, rpc_command: Sequence[str] | None) -> None:
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
            settings = HttpSettings.from_env()  # RELAIS_HTTP_THREADS, ...: a bad value refuses the start
            self.http = WsgiServer(http.app, http.host, http.port, what=f"{self.process.service}'s HTTP",
                                   where="RELAIS_HTTP_HOST/RELAIS_HTTP_PORT", settings=settings)
            log.info("%s (%s)", http.describe or f"{self.process.service} on http://{http.host}:{self.http.port}/",
                     settings.describe())
        if self.process.rpc and rpc_command:
            self.rpc = RpcProcess(self.process.service, rpc_command, self.settings.amqp_uri, self.stop_event)

    def describe(self) -> str:
        kinds = [("outbox relay" if self.relay else ""),
                 ", ".join(f"consumer {c.name}" + (f" x{c.parallel}" if c.parallel > 1 else "")
                           for c in self.parts.consumers),
                 ", ".join(f"timer {t.name} every {t.every_s:g} s" for t in self.parts.timers),
                 f"RPC {len(self.parts.rpc)} method(s) in process {self.rpc.child.pid}" if self.rpc else "",
                 "HTTP" if self.http else ""]
        return "; ".join(k for k in kinds if k) or "nothing"

    def wait(self) -> None:
        self.stop_event.wait()

    @property
    def failed(self) -> bool:
        """Whether it stopped because a part failed for good (its RPC process ended)."""
        return self.rpc is not None and self.rpc.failed

    def stop(self) -> None:
        self.stop_event.set()
        if self.rpc is not None:
            self.rpc.stop()
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
                timer.run()
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
                bus.run(self.settings.amqp_uri, stop=self.stop_event, batch_size=consumer.batch_size,
                        prefetch=2 * consumer.batch_size)
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


def _ops_app(process: Process[Any], settings: Settings, engine: Engine) -> OpsApp:
    """The ops endpoints' application: readiness from the checks the process names; metrics with its backlog."""
    checks: dict[str, health.Check] = {}
    if "broker" in process.readiness:
        checks["broker"] = health.broker_check(settings.amqp_uri)
    if "database" in process.readiness:
        checks["database"] = health.database_check(settings.database_url)
    metrics.set_service(process.service)
    if process.relay:
        def backlog() -> int:
            with engine.connect() as conn:
                return pending_count(conn)

        metrics.watch_outbox(backlog)
    return OpsApp(process.service, checks)


def _starting() -> str:
    raise health.CheckFailed("starting: the database migrated, then every part started")


def _refuse(service: str, message: str) -> int:
    print(f"relais serve {service}: {message}", file=sys.stderr)
    return 2


def _on_signals(stop: threading.Event) -> None:
    """SIGTERM and SIGINT set `stop`."""
    def handler(*_: Any) -> None:
        stop.set()
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
