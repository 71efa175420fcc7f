"""RPC through nameko: a service's plain functions answered as nameko `@rpc` methods.

nameko is the RPC runtime (its AMQP request/reply, its `rpc-<service>` queue, its
client: `relais rpc SERVICE METHOD ARGS`). The entrypoints are thin on purpose:
each method hands its arguments to the service's function in eventlet's thread
pool (the functions use the database, which would block the hub) and returns
what it returns, which must be JSON-serializable.

Only the runner imports this module, in a process eventlet has patched.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import eventlet
from eventlet import tpool
from nameko.rpc import rpc
from nameko.runners import ServiceRunner

log = logging.getLogger(__name__)


def nameko_service(service: str, methods: Mapping[str, Callable[..., Any]]) -> type:
    """A nameko service class named `service`, with one `@rpc` method per entry of `methods`."""

    def entrypoint(name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: object, *args: Any, **kwargs: Any) -> Any:
            return tpool.execute(fn, *args, **kwargs)

        call.__name__ = name
        call.__doc__ = fn.__doc__
        return rpc(call)

    body: dict[str, Any] = {"name": service}
    body.update({name: entrypoint(name, fn) for name, fn in methods.items()})
    return type(f"{service.title()}Rpc", (), body)


class RpcServer:
    """A nameko `ServiceRunner` answering one service's methods; `stop()` waits for calls in progress."""

    def __init__(self, service: str, methods: Mapping[str, Callable[..., Any]], amqp_uri: str,
                 stop: threading.Event) -> None:
        self.runner = ServiceRunner({"AMQP_URI": amqp_uri})
        self.runner.add_service(nameko_service(service, methods))
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


def start_rpc(service: str, methods: Mapping[str, Callable[..., Any]], amqp_uri: str,
              stop: threading.Event) -> RpcServer:
    return RpcServer(service, methods, amqp_uri, stop)
