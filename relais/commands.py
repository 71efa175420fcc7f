"""What every `relais …` command group shares: its context (settings, a migrated engine) and relaying now.

The composition root (`app/cli.py`) builds the `relais` command and hands each
command a `Context` (`pass_ctx`); a service's command group (`services/<name>/
entrypoints/cli.py`) only translates options into calls of its use cases.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from sqlalchemy import Engine

from relais.bus.outbox import OutboxRelay, pending_count
from relais.bus.publisher import ConfirmedPublisher, PublishError
from relais.config import Settings
from relais.db import make_engine, upgrade


class Context:
    """The settings from the environment, and an engine built (and the schema migrated) on first use."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.settings = settings or Settings.from_env()
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        if self._engine is None:
            self._engine = make_engine(self.settings.database_url)
            upgrade(self._engine)
        return self._engine


pass_ctx = click.make_pass_decorator(Context, ensure=True)


def relay_now(ctx: Context, progress: Callable[[int], object] | None = None) -> tuple[int, int, str | None]:
    """Drain the outbox now; returns (published, still pending, error message or None).

    `published` is what RabbitMQ confirmed, also when the broker goes away mid-way or the command
    is interrupted: SIGINT or SIGTERM stops it once the batch in flight is confirmed and removed
    from the outbox (a second signal stops it at once: that batch then goes again next run).
    """
    relay = OutboxRelay(ctx.engine, lambda: ConfirmedPublisher(ctx.settings.amqp_uri))
    error = None
    try:
        with _stopped_by_signals() as stopped:
            relay.drain(progress, stop=stopped.event)
        if stopped.by:
            error = f"interrupted by {stopped.by}; the rest waits in the outbox for the next relay"
    except PublishError as exc:
        error = str(exc)
    except KeyboardInterrupt:
        error = "interrupted mid-batch; that batch and the rest wait in the outbox for the next relay"
    finally:
        relay.close()
    with ctx.engine.connect() as conn:
        return relay.published, pending_count(conn), error


class _Stop:
    """Set by the first SIGINT or SIGTERM: `event`, and the signal's name in `by`."""

    def __init__(self) -> None:
        self.event = threading.Event()
        self.by: str | None = None

    def __call__(self, signum: int, _frame: object) -> None:
        if self.event.is_set():
            raise KeyboardInterrupt  # the second signal: stop now
        self.by = signal.Signals(signum).name
        self.event.set()


@contextmanager
def _stopped_by_signals() -> Iterator[_Stop]:
    """SIGINT and SIGTERM set the `_Stop` instead of ending the process, while inside (main thread only)."""
    stop = _Stop()
    if threading.current_thread() is not threading.main_thread():
        yield stop
        return
    previous = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield stop
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
