"""The `relais` command line: one entry point, a group per service."""

from __future__ import annotations

import json
import logging
import os
import sys

import click

from relais.config import Settings, redact_url


class Context:
    """Lazily built engine and settings shared by subcommands."""

    def __init__(self) -> None:
        self.settings = Settings.from_env()
        self._engine = None

    @property
    def engine(self):
        if self._engine is None:
            from relais.db import make_engine, upgrade

            self._engine = make_engine(self.settings.database_url)
            upgrade(self._engine)
        return self._engine


pass_ctx = click.make_pass_decorator(Context, ensure=True)


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Relais: directory, SSO, provisioning and vault beside an ENT.

    Configuration comes from RELAIS_DATA_DIR, RELAIS_DATABASE_URL, RELAIS_AMQP_URI
    and RELAIS_TENANT (see README).
    """
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = Context()


@main.command()
@pass_ctx
def config(ctx: Context) -> None:
    """Show the configuration in force (passwords hidden)."""
    s = ctx.settings
    click.echo(json.dumps({
        "data_dir": str(s.data_dir),
        "database_url": redact_url(s.database_url),
        "amqp_uri": redact_url(s.amqp_uri),
        "tenant": s.tenant,
    }, indent=2))


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply every pending migration (also done automatically on use)."""
    from relais.db import current_revision

    click.echo(f"database at revision {current_revision(ctx.engine)}")


@main.group()
def outbox() -> None:
    """The transactional outbox of events waiting for RabbitMQ."""


@outbox.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def outbox_status(ctx: Context, as_json: bool) -> None:
    """How many events wait to be published."""
    from relais.bus.outbox import pending_count

    with ctx.engine.connect() as conn:
        n = pending_count(conn)
    click.echo(json.dumps({"pending": n}) if as_json else f"{n} event(s) waiting in the outbox")


@outbox.command("relay")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def outbox_relay(ctx: Context, as_json: bool) -> None:
    """Publish every waiting event with confirms, then exit."""
    sent, pending, error = relay_now(ctx)
    if as_json:
        click.echo(json.dumps({"published": sent, "pending": pending, "error": error}))
    else:
        click.echo(f"published {sent} event(s); {pending} waiting" + (f" ({error})" if error else ""))
    sys.exit(1 if error else 0)


def relay_now(ctx: Context, progress=None) -> tuple[int, int, str | None]:
    """Drain the outbox now; returns (published, still pending, error message or None)."""
    from relais.bus.outbox import OutboxRelay, pending_count
    from relais.bus.publisher import ConfirmedPublisher, PublishError

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


# The directory answers RPC under nameko; provisioning consumes events with its own loop.
SERVICE_MODULES = {"directory": "relais.serve", "provisioning": "services.provisioning.service"}


@main.command()
@click.argument("service", type=click.Choice(sorted(SERVICE_MODULES)))
def serve(service: str) -> None:
    """Run a service until SIGTERM."""
    module = SERVICE_MODULES[service]
    args = [service] if module == "relais.serve" else []
    os.execv(sys.executable, [sys.executable, "-m", module, *args])


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("service")
@click.argument("method")
@click.argument("args", nargs=-1)
def rpc(service: str, method: str, args: tuple[str, ...]) -> None:
    """Call a running service over RPC and print the JSON answer.

    Example: relais rpc directory get_person 2605692
    """
    os.execv(sys.executable, [sys.executable, "-m", "relais.rpc", service, method, *args])


def _register() -> None:
    from services.directory.cli import directory
    from services.provisioning.cli import provisioning
    from services.sso.cli import sso

    main.add_command(directory)
    main.add_command(provisioning)
    main.add_command(sso)


_register()
