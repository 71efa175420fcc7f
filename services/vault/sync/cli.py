"""``relais vault sync``: one incremental sync pass from a connector (registered by the vault's cli.py).

Exit status: 0 when every person's items went in and the completeness check found nothing missing,
1 otherwise (the report names each person, item and reason), 2 for a usage or configuration error.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError
from tqdm import tqdm

from connectors.sdk import ConfigError, ConnectorError
from relais.commands import Context, pass_ctx

from ..adapters.blob_store import StoreError
from ..settings import VaultConfigError, VaultSettings
from ..transfer.peers import open_peer
from .run import PersonSync, SyncReport, sync


def _print(r: SyncReport) -> None:
    click.echo(f"sync of tenant {r.tenant} from {r.connector}: {'complete' if r.complete else 'INCOMPLETE'} "
               f"in {r.seconds:.1f} s")
    click.echo(f"  {len({p.person for p in r.persons}):,} persons, {r.total('changed'):,} items changed at the "
               f"source, {r.total('new_versions'):,} new versions ({r.total('bytes'):,} bytes read), "
               f"{r.total('deleted'):,} deleted")
    for error in r.errors:
        click.echo(f"  error: {error}")
    for p in r.persons:
        if p.complete:
            continue
        click.echo(f"  {p.person} ({p.vertical}):" + (f" cannot say what changed: {p.error}" if p.error else ""))
        for f in p.failures:
            click.echo(f"    failed {f['item']}: {f['error']}")
        for m in p.misses:
            click.echo(f"    missing {m['item']}: {m['reason']}")


@click.command("sync")
@click.option("--tenant", help="The tenant [default: RELAIS_TENANT].")
@click.option("--from", "source", required=True, metavar="CONNECTOR", help="The ENT's connector (webdav, caldav...).")
@click.option("--config", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Its configuration (YAML) [default: $RELAIS_DATA_DIR/connectors/CONNECTOR.yaml].")
@click.option("--person", "persons", multiple=True, help="Only this person (repeatable) [default: every person].")
@click.option("--workers", type=click.IntRange(1, 64), default=4, show_default=True, help="Items fetched at once.")
@click.option("--json", "as_json", is_flag=True, help="Print the whole report as JSON, for scripts.")
@pass_ctx
def sync_cmd(ctx: Context, tenant: str | None, source: str, config: Path | None, persons: tuple[str, ...],
             workers: int, as_json: bool) -> None:
    """Bring the vault up to date with the ENT: only what changed since the last sync is read.

    Sync tokens (RFC 6578) where the server has them, ETags otherwise; deletions become tombstones.
    The load on the ENT is bounded by the connector's rate_limit. Ends with a completeness check per
    person: every item at the source is in the vault, nothing else.
    """
    try:
        settings = VaultSettings.from_env(settings=ctx.settings)
        peer = open_peer(source, config, data_dir=ctx.settings.data_dir)
    except (VaultConfigError, ConfigError) as exc:
        raise click.UsageError(str(exc)) from None
    bar = tqdm(file=sys.stderr, dynamic_ncols=True, unit=" persons", desc="sync") \
        if not as_json and sys.stderr.isatty() else None

    def progress(p: PersonSync) -> None:
        if bar is not None:
            bar.set_postfix_str(f"{p.vertical}", refresh=False)
            bar.update(1)

    try:
        store = settings.open_store(tenant or ctx.settings.tenant)
        report = sync(ctx.engine, store, peer, persons=persons or None, workers=workers, progress=progress,
                      retention=settings.default_retention)
    except (StoreError, ConnectorError) as exc:
        raise click.ClickException(f"{exc}; what was done is kept: run the same command again") from None
    except SQLAlchemyError as exc:
        raise click.ClickException(f"the database failed: {type(exc).__name__}; run the same command again") from None
    finally:
        if bar is not None:
            bar.close()
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        _print(report)
    sys.exit(0 if report.complete else 1)


def register(group: click.Group) -> None:
    group.add_command(sync_cmd)
