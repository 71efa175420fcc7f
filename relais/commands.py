"""What every `relais …` command group shares: its context (settings, a migrated engine) and relaying now.

The composition root (`app/cli.py`) builds the `relais` command and hands each
command a `Context` (`pass_ctx`); a service's command group (`services/<name>/
entrypoints/cli.py`) only translates options into calls of its use cases.
"""

from __future__ import annotations

from collections.abc import Callable

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
    """Drain the outbox now; returns (published, still pending, error message or None)."""
    relay = OutboxRelay(ctx.engine, lambda: ConfirmedPublisher(ctx.settings.amqp_uri))
    sent, error = 0, None
    try:
        sent = relay.drain(progress)
    except PublishError as exc:
        error = str(exc)
    finally:
        relay.close()
    with ctx.engine.connect() as conn:
        return sent, pending_count(conn), error
