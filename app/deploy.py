"""`relais deploy …`: what a deployment makes once, from what the services declare.

`relais deploy broker-users`: each service's RabbitMQ user and the operator's, with the narrowest
permissions their processes work with (`relais.runtime.broker_users`); deploy/broker-users.md.
"""

from __future__ import annotations

import json
import os
import sys
import time
import urllib.parse
from pathlib import Path
from typing import Any

import click

from relais.bus.contracts import subscriptions
from relais.config import parse_amqp_uri, redact_url
from relais.runtime.broker_users import (
    DEFAULT_PREFIX,
    BrokerUnreachable,
    BrokerUsersError,
    Role,
    declare_shared,
    definitions,
    import_definitions,
    passwords,
    permissions,
    roles,
    write_env_files,
)

from .bootstrap import PROCESSES

DEFAULT_API = "http://guest:guest@127.0.0.1:15672"
DEFAULT_AMQP = "amqp://guest:guest@127.0.0.1:5672/"


@click.group()
def deploy() -> None:
    """What a deployment makes once: the broker's users."""


@deploy.command("broker-users")
@click.option("--prefix", default=DEFAULT_PREFIX, show_default=True,
              help="User names are PREFIX<role>: relais-directory, ..., relais-operator.")
@click.option("--vhost", default=None, help="The vhost [default: RELAIS_AMQP_URI's, else /].")
@click.option("--passwords", "passwords_file", type=click.Path(dir_okay=False, path_type=Path),
              help="A NAME=password file (mode 0600): passwords RELAIS_BROKER_PASSWORD_<ROLE> does not set are "
                   "read from it, or made and written to it.")
@click.option("--rotate", multiple=True, metavar="ROLE",
              help="Give ROLE a new password (written to --passwords); repeatable.")
@click.option("--apply", "apply_", is_flag=True,
              help="Create or update the users through RabbitMQ's management API (RELAIS_RABBITMQ_API) and "
                   "declare the shared exchanges and queues (RELAIS_AMQP_URI), both as the broker's administrator; "
                   "without it, print the RabbitMQ definitions (JSON).")
@click.option("--wait", type=click.FloatRange(min=0), default=0, show_default=True, metavar="SECONDS",
              help="With --apply, wait up to SECONDS for the management API to answer (a broker starting).")
@click.option("--env-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Also write <role>.env there (mode 0600): its RELAIS_AMQP_URI, for systemd units.")
@click.option("--broker", default=None, metavar="AMQP_URL",
              help="Where the services reach the broker, for --env-dir [default: RELAIS_AMQP_URI's host and vhost].")
@click.option("--management", default=None, metavar="URL",
              help="The management API, for the operator's --env-dir file [default: http://<broker host>:15672].")
def broker_users(prefix: str, vhost: str | None, passwords_file: Path | None, rotate: tuple[str, ...], apply_: bool,
                 wait: float, env_dir: Path | None, broker: str | None, management: str | None) -> None:
    """Each service's RabbitMQ user and the operator's, with the narrowest permissions that work.

    \b
    relais deploy broker-users --passwords broker-passwords.env > definitions.json
    relais deploy broker-users --apply        # with RELAIS_BROKER_PASSWORD_<ROLE> set (compose does)
    """
    admin_amqp = os.environ.get("RELAIS_AMQP_URI") or DEFAULT_AMQP
    vhost = vhost if vhost is not None else parse_amqp_uri(admin_amqp).virtual_host
    contracts = subscriptions()
    all_roles = roles(PROCESSES, contracts)
    try:
        secret = passwords([r.name for r in all_roles], passwords_file, rotate=rotate)
        users: dict[str, tuple[Role, str]] = {f"{prefix}{r.name}": (r, secret[r.name]) for r in all_roles}
        document = definitions(users, vhost, contracts)
        if env_dir is not None:
            base = broker or _without_user(admin_amqp)
            api = management or f"http://{parse_amqp_uri(base).host}:15672"
            for path in write_env_files(env_dir, users, base, api):
                click.echo(f"wrote {path}", err=True)
        if not apply_:
            click.echo(json.dumps(document, indent=2))
            return
        api = os.environ.get("RELAIS_RABBITMQ_API") or DEFAULT_API
        deadline = time.monotonic() + wait
        while True:
            try:
                import_definitions(api, document)
                break
            except BrokerUnreachable:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(2)
        declare_shared(admin_amqp, contracts)
    except BrokerUsersError as exc:
        click.echo(f"relais deploy broker-users: {exc}", err=True)
        sys.exit(1)
    click.echo(f"users of vhost {vhost!r} created or updated through {redact_url(api)}; "
               f"relais.events, relais.unrouted and {len(contracts)} consumer(s)' queues declared")
    for user, (role, _password) in sorted(users.items()):
        click.echo(_describe(user, role, contracts))


def _without_user(uri: str) -> str:
    params = parse_amqp_uri(uri)
    scheme = uri.split("://", 1)[0]
    vhost = "" if params.virtual_host == "/" else urllib.parse.quote(params.virtual_host, safe="")
    return f"{scheme}://{params.hostport}/{vhost}"


def _describe(user: str, role: Role, contracts: Any) -> str:
    granted = permissions(role, user, contracts)
    tags = f" tags={','.join(role.tags)}" if role.tags else ""
    return f"  {user}: configure={granted.configure} write={granted.write} read={granted.read}{tags}"
