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
| `rpc` | answers each method over nameko RPC (the process then runs under eventlet) |
| `Http` | serves a WSGI application on its own port |
| the relay | publishes what the process wrote to its outbox, every second (`Process.relay`) |

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
    rpc: tuple[str, ...] = ()  # the RPC methods `start` must provide; any: the process runs under eventlet

    def __post_init__(self) -> None:
        unknown = set(self.readiness) - set(READINESS)
        if unknown:
            raise ValueError(f"{self.service}: readiness {sorted(unknown)} unknown (known: {', '.join(READINESS)})")

    @property
    def green(self) -> bool:
        """Whether it runs under eventlet: nameko, which answers RPC, needs the standard library patched."""
        return bool(self.rpc)
