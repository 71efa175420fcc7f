"""The `relais` command: the kernel's commands (config, db, outbox, serve, health, status, rpc), and a
group per service (`services/<name>/cli.py`) and for the connectors.

Each command loads only the code it runs: a service's group is imported when one of its commands
is invoked (`GROUPS`), and `serve`, `status` and `config` load what they need of the services
themselves. A container's health probe (`relais health SERVICE`, every few seconds) so starts in
a fraction of the time that loading every service takes, and worker processes that re-import the
command (multiprocessing's spawn) carry only what they use.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import sys

import click

from relais.bus.outbox import pending_count
from relais.commands import Context, pass_ctx, relay_now
from relais.config import redact_url
from relais.db import current_revisions
from relais.ops.failures import explain
from relais.ops.health import probe
from relais.ops.logs import LogConfigError, configure_logging, format_exception
from relais.ops.server import OpsConfigError, ops_address
from relais.runtime.call_args import CallArgumentError, call_arguments
from relais.runtime.status import StatusConfigError, gather, parse_endpoints, render_text

# app/bootstrap.py's PROCESSES (a test holds them equal): what `relais serve` runs
SERVICES = ("console", "directory", "provisioning", "provisioning-api", "sso", "usage", "vault")

# Command groups, loaded when invoked: name -> "module:attribute".
GROUPS = {
    "connectors": "connectors.cli:connectors",
    "console": "services.console.cli:console",
    "deploy": "app.deploy:deploy",
    "directory": "services.directory.cli:directory",
    "provisioning": "services.provisioning.cli:provisioning",
    "sso": "services.sso.cli:sso",
    "subject": "app.subject:subject",
    "usage": "services.usage.cli:usage",
    "vault": "services.vault.cli:vault",
}


class Relais(click.Group):
    """The top-level group: the kernel's commands, and the groups of `GROUPS` loaded on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted([*super().list_commands(ctx), *GROUPS])

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in GROUPS:
            module, attribute = GROUPS[cmd_name].split(":")
            command: click.Command = getattr(importlib.import_module(module), attribute)
            return command
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        """Run the command; a failure ends it with what failed, where and what to do (`failures.explain`), status 1.

        No traceback unless `--debug`, and never a statement's parameters (personal data) either way.
        """
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:  # noqa: BLE001 - every failure is said, in a few lines, and ends the command
            if ctx.params.get("debug"):
                click.echo(format_exception(exc), err=True)
            settings = ctx.obj.settings if isinstance(ctx.obj, Context) else None
            click.echo(explain(exc, settings).render(_failed_command(exc, ctx)), err=True)
            ctx.exit(1)


def _failed_command(exc: BaseException, ctx: click.Context) -> str:
    """`relais directory import`: the innermost command the failure went through (click's frames hold it)."""
    path = ctx.command_path
    tb = exc.__traceback__
    while tb is not None:
        inner = tb.tb_frame.f_locals.get("ctx")
        if isinstance(inner, click.Context):
            path = inner.command_path
        tb = tb.tb_next
    return path


@click.group(cls=Relais)
@click.option("-v", "--verbose", is_flag=True, help="Log progress details to stderr.")
@click.option("--debug", is_flag=True, help="On a failure, also print its traceback (no SQL parameters either).")
@click.pass_context
def main(ctx: click.Context, verbose: bool, debug: bool) -> None:
    """Relais: directory, SSO, provisioning and vault beside an ENT.

    Configuration comes from RELAIS_DATA_DIR, RELAIS_DATABASE_URL, RELAIS_AMQP_URI
    and RELAIS_TENANT (see README). Logs go to stderr as RELAIS_LOG_FORMAT says
    (text on a terminal, JSON otherwise).
    """
    try:
        configure_logging(ctx.invoked_subcommand or "relais", level=logging.INFO if verbose else logging.WARNING)
    except LogConfigError as exc:
        raise click.UsageError(str(exc)) from None
    ctx.obj = Context()


@main.command()
@pass_ctx
def config(ctx: Context) -> None:
    """Show the configuration in force (passwords hidden)."""
    from services.vault.settings import VaultConfigError, VaultSettings  # loaded by this command only

    s = ctx.settings
    try:
        vault = VaultSettings.from_env(settings=s).describe()  # no secret key in it
    except VaultConfigError as exc:
        vault = {"error": str(exc)}
    click.echo(json.dumps({
        "data_dir": str(s.data_dir),
        "database_url": redact_url(s.database_url),
        "amqp_uri": redact_url(s.amqp_uri),
        "tenant": s.tenant,
        "vault": vault,
    }, indent=2))


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
@pass_ctx
def db_upgrade(ctx: Context) -> None:
    """Apply every pending migration (also done automatically on use)."""
    click.echo(f"database at revision {', '.join(current_revisions(ctx.engine))}")


@main.group()
def outbox() -> None:
    """The transactional outbox of events waiting for RabbitMQ."""


@outbox.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def outbox_status(ctx: Context, as_json: bool) -> None:
    """How many events wait to be published."""
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


@main.group()
def queues() -> None:
    """The bounds RabbitMQ keeps Relais's queues within (deploy/queues.md)."""


@queues.command("bound")
@click.option("--rabbitmq-api", envvar="RELAIS_RABBITMQ_API", default="http://guest:guest@127.0.0.1:15672",
              show_default=True, help="RabbitMQ's management API, as a user with the policymaker tag "
              "[env RELAIS_RABBITMQ_API].")
@click.option("--print", "print_only", is_flag=True,
              help="Only print the `rabbitmqctl set_policy` lines that set them, for the broker's administrator.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def queues_bound(ctx: Context, rabbitmq_api: str, print_only: bool, as_json: bool) -> None:
    """Set the bounds of RELAIS_UNROUTED_MAX_* and RELAIS_QUEUE_MAX_* as RabbitMQ policies on the vhost of
    RELAIS_AMQP_URI. They apply at once, to queues that exist already too; run it again after changing them."""
    from relais.bus.bounds import Bounds, BoundsError, apply
    from relais.config import parse_amqp_uri

    vhost = parse_amqp_uri(ctx.settings.amqp_uri).virtual_host
    try:
        bounds = Bounds.from_env()
        policies = bounds.policies() if print_only else apply(rabbitmq_api, vhost, bounds)
    except BoundsError as exc:
        raise click.ClickException(str(exc)) from None
    if print_only:
        click.echo("\n".join(p.rabbitmqctl(vhost) for p in policies))
    elif as_json:
        click.echo(json.dumps({"vhost": vhost, "policies": {p.name: p.body() for p in policies}}, indent=2))
    else:
        for p in policies:
            click.echo(f"policy {p.name} on vhost {vhost!r}, queues {p.pattern}: {json.dumps(p.definition)}")


@main.command()
@click.argument("service", type=click.Choice(SERVICES))
def serve(service: str) -> None:
    """Run a service in the foreground until SIGTERM, with /healthz, /readyz and /metrics on RELAIS_OPS_PORT.

    What it runs is what `services/SERVICE/process.py` declares. A fresh interpreter runs it
    (`python -m app.serve SERVICE`); a service answering RPC starts a second one for it, under
    eventlet (nameko's runtime), and stops it with the first.
    """
    os.execv(sys.executable, [sys.executable, "-m", "app.serve", service])


@main.command()
@click.argument("service", type=click.Choice(SERVICES))
@click.option("--host", default=None, help="Where the service's ops endpoints listen "
              "[default: RELAIS_OPS_HOST unless it listens on every address, else 127.0.0.1].")
@click.option("--port", type=int, default=None, help="Its ops port [default: RELAIS_OPS_PORT, else 9100].")
@click.option("--live", is_flag=True, help="Ask /healthz (liveness) instead of /readyz (readiness).")
@click.option("--timeout", type=float, default=5.0, show_default=True, help="Seconds to wait for the answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the endpoint's JSON answer.")
def health(service: str, host: str | None, port: int | None, live: bool, timeout: float, as_json: bool) -> None:
    """Exit 0 when SERVICE answers ready (for container health checks), 1 otherwise, saying what is down."""
    if port is None or host is None:
        try:
            env_host, env_port = ops_address()
        except OpsConfigError as exc:
            raise click.UsageError(str(exc)) from None
        port = env_port if port is None else port
        host = host or (env_host if env_host not in ("0.0.0.0", "::", "") else "127.0.0.1")
    ok, body, message = probe(service, host, port, live=live, timeout=timeout)
    if as_json:
        click.echo(json.dumps(body if body is not None else {"service": service, "error": message}))
    else:
        click.echo(message, err=not ok)
    sys.exit(0 if ok else 1)


@main.command()
@click.option("--ops", "ops", multiple=True, metavar="SERVICE=URL",
              help="A service's ops endpoint, e.g. provisioning=http://10.0.0.5:9100 (repeat; "
                   "default RELAIS_OPS_ENDPOINTS, comma-separated).")
@click.option("--rabbitmq-api", envvar="RELAIS_RABBITMQ_API", default="http://guest:guest@127.0.0.1:15672",
              show_default=True, help="RabbitMQ's management API [env RELAIS_RABBITMQ_API].")
@click.option("--timeout", type=float, default=3.0, show_default=True, help="Seconds to wait for each answer.")
@click.option("--json", "as_json", is_flag=True, help="The whole report as JSON, for scripts.")
@pass_ctx
def status(ctx: Context, ops: tuple[str, ...], rabbitmq_api: str, timeout: float, as_json: bool) -> None:
    """The state of the running stack: services up, queue depths, dead letters, outbox backlog, last import.

    Exit status 1 when something is unhealthy (each problem is listed with what to do).
    """
    from .bootstrap import directory_last_import, service_queues  # every service's declaration: this command only

    try:
        endpoints = parse_endpoints(ops)
    except StatusConfigError as exc:
        raise click.UsageError(str(exc)) from None
    report = gather(ctx.settings, rabbitmq_api=rabbitmq_api, ops=endpoints, services=service_queues(),
                    last_import=directory_last_import, timeout=timeout)
    click.echo(json.dumps(report, indent=2, ensure_ascii=False) if as_json else render_text(report))
    sys.exit(0 if report["healthy"] else 1)


@main.command(context_settings={"ignore_unknown_options": True})
@click.argument("service")
@click.argument("method")
@click.argument("args", nargs=-1, metavar="[ARG]...")
def rpc(service: str, method: str, args: tuple[str, ...]) -> None:
    """Call a running service over RPC and print the JSON answer.

    Each ARG is passed as a string, exactly as written: 52006, 0750001A and 007
    stay strings. Prefix json: for another type: json:3 (a number), json:true,
    json:null, json:'["6A","6B"]' (a list), json:'"json:x"' (the string json:x).

    \b
    Examples:
      relais rpc directory get_person 2605692
      relais rpc directory get_structure 0750001A
      relais rpc vault restore 2605692 documents doc-81f3 operator:helpdesk json:2

    Exit status 1 when the method fails or nothing answers, 2 for an argument
    that is not what its json: prefix says.
    """
    try:
        call_arguments(args)
    except CallArgumentError as exc:
        raise click.UsageError(str(exc)) from None
    os.execv(sys.executable, [sys.executable, "-m", "relais.runtime.call", service, method, *args])
