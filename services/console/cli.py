"""`relais console …` commands: check the console's settings (and print its SSO registry entry), read the audit log.

`relais serve console` runs the pages themselves (process.py). Every command takes `--json`; a setting that
cannot be used is named, with exit status 2.
"""

from __future__ import annotations

import json

import click
import yaml

from relais.commands import Context, pass_ctx

from .adapters.audit import recent
from .rules.roles import ROLES
from .settings import ConsoleConfigError, ConsoleSettings

# What the console needs released on p3/serviceValidate to derive roles (rules/roles.py).
RELEASED = ["uid", "displayName", "ENTPersonProfils", "ENTPersonFonctions", "ENTPersonEtablissementsUAI",
            "ENTPersonStructRattachUAI"]


@click.group()
def console() -> None:
    """The operator console: a web interface for the people who run Relais (`relais serve console`)."""


@console.command("check-config")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def check_config(as_json: bool) -> None:
    """Check RELAIS_CONSOLE_* and print the CAS service entry to add to the SSO's `services:`."""
    try:
        s = ConsoleSettings.from_env()
    except ConsoleConfigError as exc:
        raise click.UsageError(str(exc)) from None
    entry = {"id": "console", "prefix": s.service_url, "attributes": RELEASED, "logout": True}
    report = {"url": s.url, "cas_url": s.cas_url, "service": entry, "cookie_secure": s.cookie_secure,
              "session_idle_s": s.idle_s, "session_max_s": s.max_s,
              "roles": {"administrator": sorted(s.policy.administrators), "dpo": sorted(s.policy.dpos),
                        "collectivite": sorted(s.policy.collectivite),
                        "manager_functions": sorted(s.policy.manager_functions),
                        "manager_profiles": sorted(s.policy.manager_profiles)}}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    click.echo(f"console at {s.url}, signing in through {s.cas_url} (roles: {', '.join(ROLES)})")
    click.echo("add to the SSO configuration's services: (RELAIS_SSO_CONFIG):")
    click.echo(yaml.safe_dump([entry], sort_keys=False).rstrip())


@console.command("audit")
@click.option("--limit", type=click.IntRange(1, 10000), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@pass_ctx
def audit(ctx: Context, limit: int, as_json: bool) -> None:
    """The console's audit log, newest first: who did what, when, from where, and how it ended."""
    entries = recent(ctx.engine, limit)
    if as_json:
        click.echo(json.dumps([{**e, "at": e["at"].isoformat()} for e in entries], ensure_ascii=False))
        return
    for e in entries:
        click.echo(f"{e['at']:%Y-%m-%d %H:%M:%S} {e['actor']:<12} {e['action']:<16} {e['outcome']:<8} "
                   f"{e['uai'] or '-':<9} {e['address'] or '-':<15} {e['target'] or ''} {e['detail'] or ''}".rstrip())
