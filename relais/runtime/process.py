"""What a service's process runs, as the service declares it (plain data: nothing here runs).

Every service has a module `services/<name>/process.py` holding `PROCESS`, a
`Process`: its name, what its readiness depends on, whether it relays its
outbox, the RPC methods it answers, and `start`, which builds the running
parts from a `Context` (settings, a migrated engine, the ports the composition
root hands it):

| part | what the runner does with it |
|---|---|
| `Consumer` | consumes `relais.q.<name>` as `relais.bus.consumer` says (batches, retries, dead letters) |
| `Timer` | calls a function every so many seconds; a failure is logged, the next call comes on time |
| `rpc` | answers each method over nameko RPC, to the callers its `RpcMethod` names (in an RPC process: `rpc`) |
| `Http` | serves a WSGI application on its own port |
| the relay | publishes what the process wrote to its outbox, every second (`Process.relay`) |

Who may call an RPC method is declared beside it (`RpcMethod.callers`: services by name, or
`OPERATOR`); the runner refuses any other caller, identified by the broker user RabbitMQ checked
(`relais.runtime.callers`).

A consumer's queue is bound to the event types the contracts say it receives, and it
reconnects when the broker goes away.

`relais.runtime.runner.run` starts any `Process`; `relais serve NAME` gets
there through the composition root (`app/`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from sqlalchemy import Connection, Engine

    from relais.config import Settings

P = TypeVar("P")

Handler = Callable[[dict[str, Any], "Connection"], None]
BatchHandler = Callable[[list[dict[str, Any]], "Connection"], None]
WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]
Check = Callable[[], str]

READINESS = ("broker", "database")  # the dependencies the kernel knows how to check
OPERATOR = "operator"  # the caller `relais rpc` and `relais status` are, with the operator's broker user


class StartError(RuntimeError):
    """A service cannot start as configured; the message says what to fix (`relais serve` exits 2)."""


@dataclass(frozen=True)
class Context(Generic[P]):
    """What `start` gets: the settings, an engine on a migrated database, and the service's ports."""

    settings: Settings
    engine: Engine
    ports: P


@dataclass(frozen=True)
class Consumer:
    """Consume the queue `relais.q.<name>` with `handler` (one event) and `batch_handler` (several)."""

    name: str
    handler: Handler
    batch_handler: BatchHandler | None = None
    parallel: int = 1  # consumers on the queue in this process, each with its connection
    batch_size: int = 200  # events settled in one transaction at most (twice as many prefetched)


@dataclass(frozen=True)
class Timer:
    """Call `run` every `every_s` seconds (the first time after `every_s`)."""

    name: str
    every_s: float
    run: Callable[[], object]


@dataclass(frozen=True)
class Http:
    """Serve `app` on host:port; `describe` is the line logged once it listens."""

    app: WSGIApp
    host: str
    port: int
    describe: str = ""


@dataclass(frozen=True)
class RpcMethod:
    """Who may call one RPC method: services by name, or `OPERATOR`.

    `caller`: the function also gets `caller=`, the `relais.runtime.callers.Caller` RabbitMQ vouched
    for (to record who acted, say); a `caller` the request itself carries is replaced.
    """

    callers: tuple[str, ...]
    caller: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.callers, str) or not self.callers or not all(isinstance(c, str) and c for c in self.callers):
            raise ValueError(f"RpcMethod callers must be a non-empty tuple of service names or {OPERATOR!r}, "
                             f"not {self.callers!r}")


@dataclass
class Parts:
    """The running parts `start` built."""

    consumers: Sequence[Consumer] = ()
    timers: Sequence[Timer] = ()
    rpc: Mapping[str, Callable[..., Any]] = field(default_factory=dict)
    http: Http | None = None
    checks: Mapping[str, Check] = field(default_factory=dict)  # further readiness checks
    close: Sequence[Callable[[], object]] = ()  # called once everything has stopped


@dataclass(frozen=True)
class Process(Generic[P]):
    """One service's process: `relais serve <service>`."""

    service: str
    start: Callable[[Context[P]], Parts]
    readiness: tuple[str, ...] = ("database",)  # of READINESS
    relay: bool = True
    # The event types its relay publishes, when fewer than any: its broker user may publish only those.
    sends: tuple[str, ...] | None = None
    # The RPC methods `start` must provide, and who may call each; any: an RPC process runs beside the main one.
    rpc: Mapping[str, RpcMethod] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.readiness) - set(READINESS)
        if unknown:
            raise ValueError(f"{self.service}: readiness {sorted(unknown)} unknown (known: {', '.join(READINESS)})")
        undeclared = sorted(name for name, method in self.rpc.items() if not isinstance(method, RpcMethod))
        if undeclared:
            raise ValueError(f"{self.service}: RPC method(s) {undeclared} need an RpcMethod saying who may call them")

    def check_rpc(self, parts: Parts) -> None:
        """`start` built exactly the RPC methods declared."""
        if set(parts.rpc) != set(self.rpc):
            raise RuntimeError(f"{self.service} declares RPC methods {sorted(self.rpc)} but started "
                               f"{sorted(parts.rpc)}")
