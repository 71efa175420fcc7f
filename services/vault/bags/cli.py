"""``relais vault bag | unbag``: the open archive written from the vault and read back (registered by cli.py).

Exit status: 0 when every bag was written (or was there already, whole and up to date) or read back; 1
when a bag failed (each is named with the reason; the same command again redoes only those) or the vault
store could not be reached; 2 for a usage or configuration error.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import click
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from relais.commands import Context, pass_ctx

from ..adapters.blob_store import BlobStore, StoreError
from ..rules.bag_owners import STRUCTURE_PREFIX, BadOwner, structure
from ..settings import VaultConfigError, VaultSettings
from .report import FAILED, BagRun
from .targets import BagTarget, TargetError, open_target

_JSON = click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON, for scripts.")
_TENANT = click.option("--tenant", help="The tenant [default: RELAIS_TENANT].")
_ZIP = click.option("--zip", "zip_", is_flag=True,
                    help="Each bag serialized as <folder>/<bag>.zip (RFC 8493 §4), not as a folder.")


def store_of(ctx: Context, tenant: str | None) -> BlobStore:
    try:
        return VaultSettings.from_env(settings=ctx.settings).open_store(tenant or ctx.settings.tenant)
    except VaultConfigError as exc:
        raise click.UsageError(str(exc)) from None
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


def _target(spec: str, zip_: bool) -> BagTarget:
    try:
        return open_target(spec, zip_=zip_)
    except TargetError as exc:
        raise click.UsageError(str(exc)) from None


def _size(n: int) -> str:
    return f"{n / 1e6:,.1f} MB" if n >= 1e5 else f"{n:,} bytes"


def _finish(run: BagRun, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(run.to_dict(), ensure_ascii=False))
    else:
        verb = "bags of" if run.kind == "bag" else "bags read into the vault of"
        click.echo(f"{verb} tenant {run.tenant}, {run.where}: {run.state}")
        done = (f"{run.count('written'):,} written, {run.count('skipped'):,} already there and up to date"
                if run.kind == "bag" else f"{run.count('read'):,} read")
        click.echo(f"  {len(run.results):,} bag(s): {done}, {run.count(FAILED):,} failed"
                   + (f", {run.count('empty'):,} owner(s) with every item deleted (no bag)" if run.count("empty")
                      else "")
                   + f"; {run.items:,} item(s), {_size(run.bytes)} in {run.seconds:.1f} s")
        for r in run.results:
            if r.state == FAILED:
                click.echo(f"  FAILED {r.name}: {r.error}")
    if run.ok:
        return
    click.echo((f"stopped: {run.error}" if run.error else f"{run.count(FAILED)} bag(s) failed")
               + ": run the same command again to redo them", err=True)
    sys.exit(1)


@contextmanager
def bags_progress(desc: str, as_json: bool) -> Iterator[Callable[[int, int], None] | None]:
    """What writing bags reports its progress to (bags done, bytes moved so far): a bar of bytes on a terminal's
    stderr, closed on the way out; None with --json or when stderr is no terminal. Also `relais vault handover`'s."""
    if as_json or not sys.stderr.isatty():
        yield None
        return
    bar = tqdm(file=sys.stderr, dynamic_ncols=True, unit="B", unit_scale=True, desc=desc)

    def progress(bags: int, moved: int) -> None:
        bar.set_postfix_str(f"{bags:,} bag(s)", refresh=False)
        bar.update(moved - bar.n)

    try:
        yield progress
    finally:
        bar.close()


@click.command("bag")
@_TENANT
@click.option("--to", "dest", required=True, metavar="FOLDER|s3://BUCKET/PREFIX", help="Where the bags go.")
@_ZIP
@click.option("--person", "persons", multiple=True, help="This person's bag (repeatable) [default: every owner].")
@click.option("--structure", "structures", multiple=True, metavar="UAI",
              help="This structure's bag: its shared spaces (repeatable).")
@click.option("--workers", type=click.IntRange(1, 32), default=4, show_default=True, help="Bags written at once.")
@click.option("--source-org", default="Relais", show_default=True, help="bag-info.txt's Source-Organization.")
@click.option("--actor", default="vault-bag", show_default=True, help="Who reads the vault, for the access log.")
@_JSON
@pass_ctx
def bag_cmd(ctx: Context, tenant: str | None, dest: str, zip_: bool, persons: tuple[str, ...],
            structures: tuple[str, ...], workers: int, source_org: str, actor: str, as_json: bool) -> None:
    """Write one BagIt bag per person and per structure (archive format 1.1) from the vault.

    Contents are streamed from the vault store and hashed as they are written. Bags already there, whole,
    valid and holding what the vault holds now are skipped, so after a crash the same command finishes.
    """
    from .write import bag

    try:
        owners = [*persons, *(f"{STRUCTURE_PREFIX}{structure(u).id}" for u in structures)] or None
    except BadOwner as exc:
        raise click.UsageError(f"--structure: {exc}") from None
    store = store_of(ctx, tenant)
    target = _target(dest, zip_)
    try:
        with bags_progress("bag", as_json) as progress:
            run = bag(ctx.engine, store, target, owners_=owners, workers=workers, actor=actor,
                      source_org=source_org, progress=progress)
    except SQLAlchemyError as exc:
        raise click.ClickException(f"the database failed: {type(exc).__name__}; bags written are kept: run the "
                                   "same command again") from None
    _finish(run, as_json)


@click.command("unbag")
@_TENANT
@click.option("--from", "src", required=True, metavar="FOLDER|s3://BUCKET/PREFIX", help="Where the bags are.")
@_ZIP
@click.option("--bag", "names", multiple=True, help="Only this bag, by name (repeatable) [default: every bag there].")
@_JSON
@pass_ctx
def unbag_cmd(ctx: Context, tenant: str | None, src: str, zip_: bool, names: tuple[str, ...], as_json: bool) -> None:
    """Read bags back into the vault: each validated whole first (a bag that fails is refused, naming the
    file), then its items stored. Items the vault holds already, as they are, add nothing."""
    from .read import unbag

    store = store_of(ctx, tenant)
    source = _target(src, zip_)
    run = unbag(ctx.engine, store, source, names=list(names) or None)
    _finish(run, as_json)


def register(group: click.Group) -> None:
    """Add bag and unbag to ``relais vault``."""
    group.add_command(bag_cmd)
    group.add_command(unbag_cmd)
