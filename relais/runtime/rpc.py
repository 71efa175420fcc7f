"""RPC through nameko: a service's plain functions answered as nameko RPC methods, to the callers it allows.

nameko is the RPC runtime (its AMQP request/reply over the `nameko-rpc` exchange, its
`rpc-<service>` queue, its client). The entrypoints are thin on purpose: each method checks its
caller, calls the service's function and returns what it returns, which must be JSON-serializable.

nameko needs eventlet, which patches the standard library; eventlet's locks do not work across OS
threads (a lock taken in its thread pool and released elsewhere stalls the waiter for good:
eventlet issue #432). So the RPC of a service runs in a process of its own (`serve`), started and
watched by the service's main process (`relais.runtime.rpc_process`), which runs everything else
in plain threads. Here there is one OS thread, eventlet's hub, and one call at a time
(`max_workers` 1): the methods are short queries and an operator's commands.

The caller is the broker user RabbitMQ checked: `RpcClient` sets the `user_id` property of every
request to the user its connection logged in as (RabbitMQ refuses a message whose `user_id` is
another), and `CheckedRpc` reads it and lets the method run only for the callers the service
declared (`RpcMethod.callers`; `relais.runtime.callers` says how a user maps to a caller). A refusal
comes back to the caller as nameko's RemoteError `RpcRefused`, naming the method and the caller.

Only processes eventlet has patched import this module: a service's RPC process
(`python -m app.serve SERVICE --rpc`) and `relais.runtime.call` (`relais rpc`).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import eventlet
import kombu.serialization
from nameko.containers import WorkerContext
from nameko.rpc import Rpc, RpcConsumer, ServiceProxy
from nameko.runners import ServiceRunner
from nameko.standalone.rpc import SingleThreadedReplyListener, StandaloneProxyBase
from sqlalchemy import Engine

from relais.config import Settings, kombu_amqp_uri, parse_amqp_uri
from relais.ops.failures import explain
from relais.ops.logs import LogConfigError, configure_logging, describe_error

from .callers import RpcRefused, authorise, per_service_users
from .process import Context, Process, RpcMethod, StartError

log = logging.getLogger(__name__)

P = TypeVar("P")
ORPHAN_CHECK_S = 1.0


class GuardedRpcConsumer(RpcConsumer):
    """nameko's RPC queue consumer, dropping a request it could not answer.

    nameko answers to the request's `reply_to`, encoded as its `content_type` says; a request
    without them would make its reply fail and the container die, and come back to the next
    instance (any user who may publish to `nameko-rpc` could stop the service so).
    """

    def handle_message(self, body: Any, message: Any) -> None:
        properties = message.properties
        if not properties.get("reply_to") or \
                properties.get("content_type") not in kombu.serialization.registry.type_to_name:
            log.warning("RPC request to %s from broker user %r without reply_to or a known content type: dropped",
                        message.delivery_info.get("routing_key"), properties.get("user_id"))
            self.queue_consumer.ack_message(message)
            return
        super().handle_message(body, message)


class CheckedRpc(Rpc):
    """nameko's `@rpc` entrypoint, run only for the callers the method's declaration allows."""

    rpc_consumer = GuardedRpcConsumer()

    def __init__(self, declared: RpcMethod, server_user: str, **kwargs: Any) -> None:
        self.declared = declared
        self.server_user = server_user
        super().__init__(expected_exceptions=(RpcRefused,), **kwargs)

    def handle_message(self, body: Any, message: Any) -> None:
        service = self.container.service_name
        try:
            caller = authorise(service, self.method_name, self.declared, message.properties.get("user_id"),
                               self.server_user)
        except RpcRefused as exc:
            log.warning("%s", exc)
            raise
        if self.declared.caller and isinstance(body, dict):
            body = {**body, "kwargs": {**(body.get("kwargs") or {}), "caller": caller}}
        super().handle_message(body, message)


def nameko_service(service: str, methods: Mapping[str, Callable[..., Any]],
                   declared: Mapping[str, RpcMethod], server_user: str) -> type:
    """A nameko service class named `service`, with one checked RPC method per entry of `methods`."""

    def entrypoint(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: object, *args: Any, **kwargs: Any) -> Any:
            return fn(*args, **kwargs)

        call.__name__ = name
        call.__doc__ = fn.__doc__
        decorated: Callable[..., Any] = CheckedRpc.decorator(declared=declared[name], server_user=server_user)(call)
        return decorated

    body: dict[str, Any] = {"name": service}
    body.update({name: entrypoint(name, fn) for name, fn in methods.items()})
    return type(f"{service.title()}Rpc", (), body)


class RpcServer:
    """A nameko `ServiceRunner` answering one service's methods; `stop()` waits for calls in progress."""

    def __init__(self, service: str, methods: Mapping[str, Callable[..., Any]], declared: Mapping[str, RpcMethod],
                 amqp_uri: str, stop: threading.Event) -> None:
        user = parse_amqp_uri(amqp_uri).userid
        if not per_service_users(user, service):
            log.warning("%s answers RPC as broker user %r, which is not its own (relais-%s): it cannot tell callers "
                        "apart, and lets only that user call, as the operator (deploy/broker-users.md)",
                        service, user, service)
        # One call at a time (see above); a cluster's nodes as kombu fails over between them.
        self.runner = ServiceRunner({"AMQP_URI": kombu_amqp_uri(amqp_uri), "max_workers": 1})
        self.runner.add_service(nameko_service(service, methods, declared, user))
        self.runner.start()
        self.failure: BaseException | None = None
        eventlet.spawn_n(self._watch, stop)

    def _watch(self, stop: threading.Event) -> None:
        """A container that dies (its broker connection for good, say) stops the whole process."""
        try:
            self.runner.wait()
        except Exception as exc:  # noqa: BLE001 - reported, then the process stops
            self.failure = exc
            log.error("RPC stopped: %s", exc)
        stop.set()

    def stop(self) -> None:
        self.runner.stop()


def serve(process: Process[P], settings: Settings, engine: Engine, ports: P) -> int:
    """Answer `process`'s RPC methods until SIGTERM, SIGINT or the main process's end; the exit status.

    The main process (`relais.runtime.rpc_process.RpcProcess`) has migrated the database already.
    """
    try:
        configure_logging(process.service)
    except LogConfigError as exc:
        print(f"relais serve {process.service} (RPC): {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()

    def on_signal(*_: Any) -> None:
        eventlet.spawn_n(stop.set)  # a handler must not block the hub

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    parent = os.getppid()
    try:
        parts = process.start(Context(settings, engine, ports))
        process.check_rpc(parts)
        server = RpcServer(process.service, parts.rpc, process.rpc, settings.amqp_uri, stop)
    except StartError as exc:
        print(f"relais serve {process.service} (RPC): {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # noqa: BLE001 - say what failed, once, and exit
        failure = explain(exc, settings)
        log.error("%s RPC could not start: %s", process.service,
                  f"{failure.what} {failure.todo}" if failure.known else describe_error(exc), exc_info=True)
        return 1
    log.info("%s RPC answering %d method(s) on rpc-%s", process.service, len(parts.rpc), process.service)
    while not stop.wait(ORPHAN_CHECK_S):
        if os.getppid() != parent:  # the main process is gone (killed): do not outlive it
            log.warning("%s RPC: the main process %d is gone; stopping", process.service, parent)
            break
    server.stop()
    for close in parts.close:
        try:
            close()
        except Exception as exc:  # noqa: BLE001 - closing the rest matters more
            log.warning("closing: %s", describe_error(exc))
    return 1 if server.failure is not None else 0


class _Services:
    """`client.directory.get_person(...)`: a proxy per service, each request sent with `user_id`."""

    def __init__(self, worker_ctx: WorkerContext, reply_listener: Any, user: str) -> None:
        self._worker_ctx, self._reply_listener, self._user = worker_ctx, reply_listener, user
        self._proxies: dict[str, ServiceProxy] = {}

    def __getattr__(self, name: str) -> ServiceProxy:
        if name.startswith("_"):
            raise AttributeError(name)
        if name not in self._proxies:
            self._proxies[name] = ServiceProxy(self._worker_ctx, name, self._reply_listener, user_id=self._user)
        return self._proxies[name]

    def __getitem__(self, name: str) -> ServiceProxy:
        return getattr(self, name)


class RpcClient(StandaloneProxyBase):
    """nameko's standalone RPC client, as the broker user of `amqp_uri`.

    Every request carries `user_id`, that user, which RabbitMQ checks and the server authorises;
    replies come to a queue named after it, `rpc.reply-<user>-<uuid>`, so a user's permissions can
    let it read its own replies and no one else's (`relais deploy broker-users`).

        with RpcClient(amqp_uri, timeout=30) as services:
            services.directory.get_person("2605692")
    """

    def __init__(self, amqp_uri: str, timeout: float | None = None) -> None:
        self.user = parse_amqp_uri(amqp_uri).userid
        container = StandaloneProxyBase.ServiceContainer({"AMQP_URI": kombu_amqp_uri(amqp_uri)})
        container.service_name = self.user  # names the reply queue
        self._worker_ctx = WorkerContext(container, service=None, entrypoint=StandaloneProxyBase.Dummy)
        self._reply_listener = SingleThreadedReplyListener(timeout=timeout).bind(container)
        self._proxy = _Services(self._worker_ctx, self._reply_listener, self.user)
