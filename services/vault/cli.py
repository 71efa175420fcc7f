"""`relais vault …` commands: status, versions, get, restore, erase, purge, retention, access-log.

Each builds the tenant's `Vault` from the configuration (RELAIS_TENANT, RELAIS_VAULT_*) and
hands over to it or to `rights`; reads are recorded in the access log under `--actor`
(default `cli:<login name>`).
"""
from __future__ import annotations

import getpass
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import click

from relais.commands import Context, pass_ctx, relay_now

from . import rights
from .adapters.blob_store import StoreError
from .bags.cli import register as register_bags
from .handover.cli import register as register_handover
from .items import Vault
from .rules.item_ids import VERTICALS
from .settings import VaultConfigError, VaultSettings
from .sync.cli import register as register_sync
from .transfer.cli import register as register_transfer

_ITEM_OPTIONS = [
    click.option("--person", required=True, help="The person's AAF jointure."),
    click.option("--vertical", required=True, type=click.Choice(VERTICALS)),
    click.option("--item", required=True, help="The item's id in that vertical (as the connector reported it)."),
]


def _item_options(fn):
    for option in reversed(_ITEM_OPTIONS):
        fn = option(fn)
    return fn


def _default_actor() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name in a bare container
        user = os.environ.get("USER") or f"uid{os.getuid()}"
    return f"cli:{user}"


_ACTOR = click.option("--actor", default=_default_actor, show_default="cli:<login name>",
                      help="Who reads, for the access log.")
_JSON = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON, for scripts.")


def _vault(ctx: Context, actor: str = "cli") -> tuple[Vault, VaultSettings]:
    try:
        settings = VaultSettings.from_env(settings=ctx.settings)
        store = settings.store_on_first_use(ctx.settings.tenant)  # status, versions... need only the database
    except (VaultConfigError, StoreError) as exc:
        raise click.UsageError(str(exc)) from None
    return Vault(ctx.engine, store, actor=actor, retention=settings.default_retention), settings


@contextmanager
def _fail_on(*errors: type[BaseException]) -> Iterator[None]:
    """Expected failures (nothing to restore, the store unreachable...) as a clear message, exit status 1."""
    try:
        yield
    except errors as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def vault() -> None:
    """Users' ENT data kept outside the ENT: versions, restores, erasure, retention, access log."""


@vault.command("status")
@_JSON
@pass_ctx
def status(ctx: Context, as_json: bool) -> None:
    """Items, tombstones, versions and bytes per vertical; blobs; the store and retention in force."""
    v, settings = _vault(ctx)
    report = {**v.status(), "store": settings.describe()["store"]}
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    store = report["store"]
    click.echo(f"tenant {report['tenant']}: {report['persons']} person(s), store "
               + (f"S3 {store['endpoint']} (SSE {store['sse']})" if store["kind"] == "s3"
                  else f"local {store['root']}"))
    click.echo(f"retention of tombstones: {report['retention']['days']} day(s) ({report['retention']['policy']})")
    rows = [(name, c) for name, c in sorted(report["verticals"].items())] + [("total", report["totals"])]
    click.echo(f"{'vertical':<12}{'items':>10}{'bytes':>16}{'versions':>10}{'tombstones':>12}{'expired':>9}")
    for name, c in rows:
        click.echo(f"{name:<12}{c['items']:>10}{c['bytes']:>16}{c['versions']:>10}{c['tombstones']:>12}"
                   f"{c['tombstones_expired']:>9}")
    click.echo(f"blobs: {report['blobs']['count']} ({report['blobs']['bytes']} bytes, each stored once)")


@vault.command("versions")
@_item_options
@_ACTOR
@_JSON
@pass_ctx
def versions(ctx: Context, person: str, vertical: str, item: str, actor: str, as_json: bool) -> None:
    """Every version of an item, oldest first (tombstones included). Recorded in the access log."""
    v, _ = _vault(ctx, actor)
    with _fail_on(ValueError):
        found = v.versions(person, vertical, item)
    if as_json:
        click.echo(json.dumps([x.to_dict() for x in found], indent=2, ensure_ascii=False))
        return
    if not found:
        raise click.ClickException(f"no version of that {vertical} item of person {person} (never stored, or purged)")
    for x in found:
        d = x.to_dict()
        if x.content_sha256 is None:  # a tombstone
            click.echo(f"v{x.version}  deleted {d['changed_at']}  restorable until {d['purge_after']}")
        else:
            click.echo(f"v{x.version}  {x.size if x.size is not None else '?':>10} bytes  "
                       f"sha256 {x.content_sha256[:12]}…  changed {d['changed_at']}"
                       + (f"  {x.path}" if x.path else ""))


@vault.command("get")
@_item_options
@click.option("--version", type=int, help="A given version [default: the latest live one].")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the content there [default: stdout].")
@_ACTOR
@pass_ctx
def get(ctx: Context, person: str, vertical: str, item: str, version: int | None, out: Path | None, actor: str) -> None:
    """An item's content. Recorded in the access log."""
    v, _ = _vault(ctx, actor)
    with _fail_on(ValueError, LookupError, StoreError):
        chosen = v.version(person, vertical, item, version)
        if chosen is None:
            raise LookupError(f"no version {version} of that {vertical} item of person {person}" if version else
                              f"person {person} has no live {vertical} item with that id (deleted? see "
                              "`relais vault versions`, then `relais vault restore`)")
        data = v.read(chosen)
    if out is None:
        sys.stdout.buffer.write(data)
    else:
        out.write_bytes(data)
        click.echo(f"version {chosen.version}: {len(data)} bytes written to {out}", err=True)


@vault.command("restore")
@_item_options
@click.option("--version", type=int, help="Bring back this version [default: the last live one].")
@_ACTOR
@_JSON
@pass_ctx
def restore(ctx: Context, person: str, vertical: str, item: str, version: int | None, actor: str,
            as_json: bool) -> None:
    """Bring an item back: its last live version (or --version) becomes its newest version.

    An item deleted in the ENT stays restorable until its tombstone passes the retention period.
    """
    v, _ = _vault(ctx, actor)
    with _fail_on(ValueError, LookupError):
        before = v.versions(person, vertical, item)
        restored = v.restore(person, vertical, item, version)
    added = not before or restored.version != before[-1].version
    if as_json:
        click.echo(json.dumps({"restored": added, "version": restored.to_dict()}, indent=2, ensure_ascii=False))
    elif added:
        click.echo(f"restored as version {restored.version} ({restored.size} bytes)")
    else:
        click.echo(f"already live at version {restored.version}: nothing to do")


@vault.command("erase")
@click.option("--person", required=True, help="The person's AAF jointure.")
@click.option("--by", "actor", required=True, help="Who orders the erasure (operator or DPO request reference).")
@click.option("--yes", is_flag=True, help="Confirm: this deletes the person's data for good.")
@click.option("--no-publish", is_flag=True, help="Leave the audit event in the outbox.")
@_JSON
@pass_ctx
def erase(ctx: Context, person: str, actor: str, yes: bool, no_publish: bool, as_json: bool) -> None:
    """Erase a person's data on request: every version of every item, and every blob no other
    person references (shared ones stay). Publishes the audit event vault.person.erased.

    Erase the person in the ENT too (or stop its connector for them), or continuous mode
    will store what the ENT reports next.
    """
    if not yes:
        raise click.UsageError(f"this deletes every version of person {person}'s data for good: add --yes")
    v, _ = _vault(ctx)
    with _fail_on(LookupError, StoreError, ValueError):
        report = rights.erase_person(v, person, actor=actor)
    result = report.to_dict()
    if not no_publish:
        sent, pending, error = relay_now(ctx)
        result.update(events_published=sent, events_pending=pending)
        if error:
            result["warning"] = (f"audit event not published yet: {error}; it waits in the outbox "
                                 "(`relais outbox relay` or a running service delivers it)")
    if as_json:
        click.echo(json.dumps(result))
        return
    click.echo(f"erased person {person}: {report.items} item(s), {report.versions} version(s), "
               f"{report.blobs_deleted} blob(s) deleted ({report.bytes_deleted} bytes), "
               f"{report.blobs_kept} kept (referenced by others); audit event {report.event_id}")
    if "warning" in result:
        click.echo(result["warning"], err=True)


@vault.command("purge")
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@_JSON
@pass_ctx
def purge(ctx: Context, dry_run: bool, as_json: bool) -> None:
    """Remove items deleted longer ago than the retention period (all their versions), and the
    blobs nobody references any more. The running service does it every RELAIS_VAULT_PURGE_INTERVAL."""
    v, _ = _vault(ctx)
    show = not as_json and sys.stderr.isatty()

    def progress(so_far) -> None:
        if show:
            click.echo(f"\rpurged {so_far.items} item(s)…", nl=False, err=True)

    with _fail_on(LookupError, StoreError):
        report = rights.purge_expired(v, dry_run=dry_run, progress=progress)
    if show and report.items:
        click.echo("", err=True)
    if as_json:
        click.echo(json.dumps(report.to_dict()))
    else:
        click.echo(f"{'would purge' if dry_run else 'purged'} {report.items} item(s) past retention: "
                   f"{report.versions} version(s), {report.blobs_deleted} blob(s), {report.bytes_deleted} bytes")


@vault.command("retention")
@click.option("--days", type=click.IntRange(min=0), help="Set the tenant's retention of tombstones, in days.")
@click.option("--by", "actor", help="Who sets it (required with --days).")
@_JSON
@pass_ctx
def retention(ctx: Context, days: int | None, actor: str | None, as_json: bool) -> None:
    """Show, or set with --days, how long deleted items stay restorable for this tenant.

    Setting it moves the purge date of every tombstone already there to its deletion + DAYS."""
    v, _ = _vault(ctx)
    rescheduled = None
    if days is not None:
        if not actor:
            raise click.UsageError("--days needs --by (who sets the policy)")
        rescheduled = rights.set_retention(v, days, by=actor)
    current, own = rights.retention_days(v)
    result = {"tenant": v.tenant, "days": current, "policy": "tenant" if own else "default"}
    if rescheduled is not None:
        result["tombstones_rescheduled"] = rescheduled
    if as_json:
        click.echo(json.dumps(result))
    else:
        click.echo(f"tenant {v.tenant}: tombstones kept {current} day(s) "
                   f"({'its own policy' if own else 'default, RELAIS_VAULT_RETENTION_DAYS'})"
                   + (f"; {rescheduled} tombstone(s) rescheduled" if rescheduled is not None else ""))


@vault.command("access-log")
@click.option("--person", required=True, help="The person's AAF jointure.")
@click.option("--since", type=click.DateTime(formats=["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S"]),
              help="Only accesses from then on (UTC).")
@click.option("--limit", type=click.IntRange(min=1), help="At most this many, newest first.")
@_JSON
@pass_ctx
def access_log(ctx: Context, person: str, since: datetime | None, limit: int | None, as_json: bool) -> None:
    """Who read or restored this person's data, when and what, newest first."""
    v, _ = _vault(ctx)
    rows = rights.access_log(v, person, since=since.replace(tzinfo=UTC) if since else None, limit=limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo(f"no access to person {person}'s vault data recorded")
    for r in rows:
        what = (f"{r['vertical']} {r['item']}" if r["item"]
                else f"{r['vertical']} (item erased)" if r["vertical"] else "")
        click.echo(f"{r['at']}  {r['actor']}  {r['action']}  {what}" + (f" v{r['version']}" if r["version"] else ""))


register_transfer(vault)  # export, import, verify: the contract end (transfer/cli.py)
register_bags(vault)  # bag, unbag: the open archive (bags/cli.py)
register_handover(vault)  # the contract-end handover pack (handover/cli.py)
register_sync(vault)  # sync: the vault follows the ENT (sync/cli.py)
