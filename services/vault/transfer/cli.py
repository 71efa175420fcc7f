"""``relais vault export | import | verify``: the contract-end commands (registered by the vault's cli.py).

Each reads the tenant's vault store from the configuration (RELAIS_VAULT_*), opens the
connectors named with their configuration files, runs the use case with a progress bar on a
terminal, and prints a summary, or the whole report with ``--json``. Exit status: 0 when
everything went through (verify: nothing lost nor unverified), 1 otherwise, 2 for a usage or
configuration error.
"""
from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from connectors.sdk import ConfigError, ConnectorError
from relais.commands import Context, pass_ctx

from ..adapters.blob_store import BlobStore, StoreError
from ..settings import VaultConfigError, VaultSettings
from .checkpoint import TransferError
from .export import export
from .import_ import import_
from .peers import Peer, open_peer
from .report import RunStats, TransferReport
from .verify import VerifyReport, verify

_JSON = click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON, for scripts.")
_TENANT = click.option("--tenant", help="The tenant [default: RELAIS_TENANT].")
_WORKERS = click.option("--workers", type=click.IntRange(1, 64), default=8, show_default=True,
                        help="Items worked on at once.")
_PERSONS = [
    click.option("--person", "persons", multiple=True, help="Only this person (repeatable) [default: every person]."),
    click.option("--persons-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
                 help="Only the persons listed in this file, one id a line."),
]


def _persons_options(fn):
    for option in reversed(_PERSONS):
        fn = option(fn)
    return fn


def _persons(persons: tuple[str, ...], persons_file: Path | None) -> list[str] | None:
    chosen = list(persons)
    if persons_file is not None:
        chosen += [line.strip() for line in persons_file.read_text(encoding="utf-8").splitlines()
                   if line.strip() and not line.startswith("#")]
    return chosen or None


def _store(ctx: Context, tenant: str | None) -> BlobStore:
    try:
        settings = VaultSettings.from_env(settings=ctx.settings)
    except VaultConfigError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        return settings.open_store(tenant or ctx.settings.tenant)
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None


def _peer(ctx: Context, name: str, config: Path | None) -> Peer:
    try:
        return open_peer(name, config, data_dir=ctx.settings.data_dir)
    except ConfigError as exc:
        raise click.UsageError(str(exc)) from None


def _bar(enabled: bool, desc: str) -> tqdm | None:
    if not enabled:
        return None
    return tqdm(file=sys.stderr, dynamic_ncols=True, unit=" items", desc=desc)


def _stats_progress(bar: tqdm | None) -> Callable[[RunStats], None] | None:
    if bar is None:
        return None

    def progress(stats: RunStats) -> None:
        bar.set_postfix_str(f"{stats.fetched_bytes / 1e6:,.1f} MB read, {stats.uploaded} stored", refresh=False)
        bar.update(stats.items + stats.skipped_resumed - bar.n)  # drawn at most every 0.1 s

    return progress


def _sides_progress(bar: tqdm | None) -> Callable[[str, int], None] | None:
    if bar is None:
        return None

    def progress(side: str, n: int) -> None:
        if bar.desc != f"verify {side}":
            bar.set_description_str(f"verify {side}", refresh=False)
            bar.reset()
        bar.update(n - bar.n)

    return progress


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1000 or unit == "TB":
            return f"{value:,.0f} {unit}" if unit == "bytes" else f"{value:,.1f} {unit}"
        value /= 1000
    return str(value)


def _print_report(r: TransferReport) -> None:
    direction = "from" if r.kind == "export" else "to"
    click.echo(f"{r.kind} job {r.job} of tenant {r.tenant} {direction} {r.connector}: {r.state}"
               + (f" (resumed, run {r.runs})" if r.resumed else ""))
    d = r.to_dict()
    outcomes = ", ".join(f"{d[k]:,} {k.replace('_', ' ')}" for k in
                         (("new", "skipped_unchanged") if r.kind == "export"
                          else ("created", "updated", "skipped_unchanged")))
    click.echo(f"  {r.persons:,} person(s), {r.items:,} item(s) ({outcomes}), {_size(r.bytes)}; {r.failed:,} failed")
    s = r.this_run
    click.echo(f"  this run: {s.items:,} item(s) in {s.seconds:.1f} s"
               + (f", {s.fetched:,} read ({_size(s.fetched_bytes)}), {s.uploaded:,} stored in the vault "
                  f"({_size(s.uploaded_bytes)}), {s.deduplicated:,} already there" if r.kind == "export" else "")
               + (f", {s.skipped_resumed:,} done by an earlier run" if s.skipped_resumed else ""))
    for f in r.failures:
        what = f"item {f.item!r}" if f.item is not None else "listing"
        click.echo(f"  FAILED {f.person} {f.vertical} {what}: {f.error}")


def _finish(r: TransferReport, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(r.to_dict(), ensure_ascii=False))
    else:
        _print_report(r)
    if r.ok:
        return
    if r.state == "stopped":
        click.echo(f"stopped: {r.error}", err=True)
    else:
        click.echo(f"{r.failed} item(s) or person(s) failed" + (f"; {r.error}" if r.error else "")
                   + f": run the same command again to retry them (job {r.job} resumes)", err=True)
    sys.exit(1)


def _database_error(exc: BaseException) -> str:
    """What went wrong with the database, without the SQL and its parameters (item ids, names)."""
    orig = getattr(exc, "orig", None) or exc
    first = (str(orig).strip().splitlines() or [""])[0][:200]
    return (f"the database failed: {type(orig).__name__}: {first}; what was checkpointed is kept: "
            "run the same command again to resume")


def _run(use_case: Callable[[], TransferReport], bar: tqdm | None) -> TransferReport:
    try:
        return use_case()
    except (TransferError, ConnectorError) as exc:  # a job that cannot start; a connector that cannot open
        raise click.ClickException(str(exc)) from None
    except SQLAlchemyError as exc:
        raise click.ClickException(_database_error(exc)) from None
    except KeyboardInterrupt:
        raise click.ClickException("interrupted: what was done is kept; run the same command again to resume") from None
    finally:
        if bar is not None:
            bar.close()


@click.command("export")
@_TENANT
@click.option("--from", "source", required=True, metavar="CONNECTOR",
              help="The source's connector (webdav, caldav...).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Its configuration (YAML) [default: $RELAIS_DATA_DIR/connectors/CONNECTOR.yaml].")
@_persons_options
@_WORKERS
@click.option("--restart", is_flag=True, help="Abandon the unfinished export job of this connector and start afresh.")
@_JSON
@pass_ctx
def export_cmd(ctx: Context, tenant: str | None, source: str, config: Path | None, persons: tuple[str, ...],
               persons_file: Path | None, workers: int, restart: bool, as_json: bool) -> None:
    """Export every person's items (every vertical the connector handles) from a source into the vault.

    Contents are stored once (a file shared by several persons, or already in the vault, is not
    uploaded again) and indexed as versions. Progress is checkpointed: after a crash or Ctrl-C,
    the same command resumes the job. Items the source cannot give are listed with the reason;
    the rest goes on.
    """
    store = _store(ctx, tenant)
    peer = _peer(ctx, source, config)
    bar = _bar(not as_json and sys.stderr.isatty(), "export")
    report = _run(lambda: export(ctx.engine, store, peer, persons=_persons(persons, persons_file), workers=workers,
                                 restart=restart, progress=_stats_progress(bar)), bar)
    _finish(report, as_json)


@click.command("import")
@_TENANT
@click.option("--to", "target", required=True, metavar="CONNECTOR", help="The target's connector.")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Its configuration (YAML) [default: $RELAIS_DATA_DIR/connectors/CONNECTOR.yaml].")
@_persons_options
@_WORKERS
@click.option("--restart", is_flag=True, help="Abandon the unfinished import job of this connector and start afresh.")
@click.option("--actor", default="vault-import", show_default=True, help="Who reads the vault, for the access log.")
@_JSON
@pass_ctx
def import_cmd(ctx: Context, tenant: str | None, target: str, config: Path | None, persons: tuple[str, ...],
               persons_file: Path | None, workers: int, restart: bool, actor: str, as_json: bool) -> None:
    """Import the vault's current items into a target, through its connector.

    Idempotent: what the target holds already is left as it is, so running it again creates
    no duplicate, and a partly filled target only gets what it misses. Checkpointed and
    resumable like an export.
    """
    store = _store(ctx, tenant)
    peer = _peer(ctx, target, config)
    bar = _bar(not as_json and sys.stderr.isatty(), "import")
    report = _run(lambda: import_(ctx.engine, store, peer, persons=_persons(persons, persons_file), workers=workers,
                                  restart=restart, progress=_stats_progress(bar), actor=actor), bar)
    _finish(report, as_json)


@click.command("verify")
@_TENANT
@click.option("--source", metavar="CONNECTOR", help="Compare with this source.")
@click.option("--source-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The source's configuration [default: $RELAIS_DATA_DIR/connectors/CONNECTOR.yaml].")
@click.option("--target", metavar="CONNECTOR", help="Compare with this target.")
@click.option("--target-config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The target's configuration [default: $RELAIS_DATA_DIR/connectors/CONNECTOR.yaml].")
@_persons_options
@_WORKERS
@click.option("--trust-announced", is_flag=True,
              help="Take the sha256 a side announces (a WebDAV server written by Relais) instead of downloading "
                   "and hashing the item; metadata of such items is then not compared.")
@_JSON
@pass_ctx
def verify_cmd(ctx: Context, tenant: str | None, source: str | None, source_config: Path | None, target: str | None,
               target_config: Path | None, persons: tuple[str, ...], persons_file: Path | None, workers: int,
               trust_announced: bool, as_json: bool) -> None:
    """Compare source, vault and target per person and vertical: counts, bytes, checksums, folder
    paths, metadata. Lists every missing or altered item by person, vertical and path.

    Exit status 0 only when no item is lost and every item could be checked.
    """
    store = _store(ctx, tenant)
    src = _peer(ctx, source, source_config) if source else None
    tgt = _peer(ctx, target, target_config) if target else None
    bar = _bar(not as_json and sys.stderr.isatty(), "verify")
    try:
        report = verify(ctx.engine, store, source=src, target=tgt, persons=_persons(persons, persons_file),
                        workers=workers, trust_announced=trust_announced, progress=_sides_progress(bar))
    except StoreError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print_verify(report)
    sys.exit(0 if report.ok else 1)


def _print_verify(report: VerifyReport) -> None:
    c = report.comparison
    click.echo(f"verify tenant {report.tenant}: " + ", ".join(
        f"{side} ({what})" if side != "vault" else "vault" for side, what in report.sides.items()))
    click.echo(f"{'vertical':<12}{'side':<8}{'items':>10}{'bytes':>18}")
    for vertical, sides in c.totals().items():
        for side in ("source", "vault", "target"):
            if side in sides:
                click.echo(f"{vertical:<12}{side:<8}{sides[side]['items']:>10,}{sides[side]['bytes']:>18,}")
    for e in c.errors:
        click.echo(f"CANNOT LIST {e.side} {e.person or '(every person)'} {e.vertical}: {e.error}")
    for f in c.findings:
        click.echo(f"{f.verdict.upper()} {f.person} {f.vertical} {f.path or f.item!r}: {f.detail}")
    click.echo(f"lost: {c.lost}, unverified: {c.unverified}, extra: {c.extra}"
               + (" — nothing lost" if report.ok else ""))


def register(group: click.Group) -> None:
    """Add export, import and verify to ``relais vault``."""
    group.add_command(export_cmd)
    group.add_command(import_cmd)
    group.add_command(verify_cmd)
