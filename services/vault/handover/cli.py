"""``relais vault handover``: the contract-end pack of a tenant (registered by the vault's cli.py).

Exit status: 0 when every bag was written and nothing is missing (lost = 0); 1 when the pack names misses
(it is written all the same: the misses are what the collectivité must see) or a bag failed; 2 for a usage
or configuration error.
"""
from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from sqlalchemy.exc import SQLAlchemyError

from relais.commands import Context, pass_ctx
from relais.i18n import UnknownLanguage, languages

from ..bags.cli import bags_progress, store_of
from .pack import HandoverError, handover


@click.command("handover")
@click.option("--tenant", help="The tenant [default: RELAIS_TENANT].")
@click.option("--to", "folder", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="The pack's folder (bags/, handover.json, bags-sha256.txt, summary-<lang>.html and .pdf).")
@click.option("--by", "ran_by", required=True, help="Who runs it, as the summary shows it: name and role.")
@click.option("--lang", default="fr", show_default=True, help=f"The summary's language ({', '.join(languages())}).")
@click.option("--zip", "zip_", is_flag=True, help="Each bag as bags/<bag>.zip (RFC 8493 §4).")
@click.option("--verify-report", "verify_reports", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The output of `relais vault verify --json` to include (repeatable): its losses are named.")
@click.option("--workers", type=click.IntRange(1, 32), default=4, show_default=True, help="Bags written at once.")
@click.option("--source-org", default="Relais", show_default=True, help="The bags' Source-Organization.")
@click.option("--json", "as_json", is_flag=True, help="Print the pack's summary as JSON, for scripts.")
@pass_ctx
def handover_cmd(ctx: Context, tenant: str | None, folder: Path, ran_by: str, lang: str, zip_: bool,
                 verify_reports: tuple[Path, ...], workers: int, source_org: str, as_json: bool) -> None:
    """Write the contract-end handover pack of a tenant: a bag per person and per structure, what the pack
    holds (persons, structures, verticals, counts, bytes), the export jobs and the verifications given, every
    miss named (or lost = 0), the hashes, and a summary to sign in HTML and PDF (French by default).

    Running it again redoes only the bags that are not whole and up to date."""
    store = store_of(ctx, tenant)
    try:
        with bags_progress("handover", as_json) as progress:
            pack = handover(ctx.engine, store, folder, ran_by=ran_by, lang=lang, zip_=zip_,
                            verify_reports=verify_reports, workers=workers, source_org=source_org,
                            progress=progress)
    except UnknownLanguage as exc:
        raise click.UsageError(f"--lang: {exc}") from None
    except HandoverError as exc:
        raise click.UsageError(str(exc)) from None
    except SQLAlchemyError as exc:
        raise click.ClickException(f"the database failed: {type(exc).__name__}; run the same command again") from None
    report = pack.to_dict()
    if as_json:
        click.echo(json.dumps(report, ensure_ascii=False))
    else:
        h = pack.handover
        click.echo(f"handover pack of tenant {h.tenant} in {folder}: {h.persons:,} person(s), "
                   f"{h.structures:,} structure(s), {h.items:,} item(s), {h.bytes:,} bytes; lost: {report['lost']}")
        for name, path in pack.files.items():
            click.echo(f"  {name}: {path}")
        click.echo(f"  seal of the bags (sha256 of bags-sha256.txt): {report['bags_seal_sha256']}")
        for m in report["misses"]:
            click.echo(f"  MISS {m['kind']} {m['owner'] or ''} {m['what']}: {m['why']}")
    if not pack.ok:
        click.echo(f"{report['lost']} miss(es) named in {folder / 'handover.json'}", err=True)
        sys.exit(1)


def register(group: click.Group) -> None:
    group.add_command(handover_cmd)
