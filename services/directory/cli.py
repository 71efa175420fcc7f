"""`relais directory …`: the commands, translating options into calls of the `Directory` facade."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
from tqdm import tqdm

from relais.bus.outbox import pending_count
from relais.commands import Context, pass_ctx, relay_now

from .adapters.aaf.file_names import expand_paths
from .api import Directory
from .importing.options import ImportOptions
from .importing.report import Warning


@click.group()
def directory() -> None:
    """The academic directory (AAF exports)."""


def _api(ctx: Context) -> Directory:
    return Directory(ctx.engine, ctx.settings.tenant)


@directory.command("import")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the full report as JSON on stdout.")
@click.option("--force", is_flag=True, help="Apply Complet deletions even above --max-delete-share.")
@click.option("--max-delete-share", type=click.FloatRange(0, 1), default=0.10, show_default=True,
              help="Refuse a Complet that deletes more than this share of a structure's accounts.")
@click.option("--workers", type=click.IntRange(1, 16), default=None,
              help="Parser processes (default: 2 for large imports, else 1).")
@click.option("--no-publish", is_flag=True, help="Leave the events in the outbox (a running service relays them).")
@pass_ctx
def import_(ctx: Context, paths, as_json, force, max_delete_share, workers, no_publish) -> None:
    """Import AAF files or folders of them (Complet and Delta, every family).

    Exit status: 0 imported (rejected records are listed in the report),
    1 a file failed or the import was refused, 2 bad usage.
    """
    infos = expand_paths(paths)
    if not infos:
        raise click.UsageError("no .xml file found in the paths given")
    if workers is None:
        total = sum(i.path.stat().st_size for i in infos)
        workers = 2 if total > 50_000_000 else 1  # files are parsed in pieces: one large file counts too
    options = ImportOptions(force=force, max_delete_share=max_delete_share, workers=workers)

    bar = _progress_bar(enabled=not as_json and sys.stderr.isatty(), unit=" records", desc="import")

    def progress(info, n):
        if bar is not None:
            bar.set_description(info.path.name[-48:])
            bar.update(n)

    report = _api(ctx).import_files(paths, options, progress)
    if bar is not None:
        bar.close()
    if report.status == "completed" and not no_publish:
        pub_bar = _progress_bar(enabled=not as_json and sys.stderr.isatty() and report.events > 0,
                                unit=" events", desc="publish", total=report.events)
        sent, pending, error = relay_now(ctx, pub_bar.update if pub_bar else None)
        if pub_bar is not None:
            pub_bar.close()
        report.events_published, report.events_pending = sent, pending
        if error:
            report.warnings.append(_warning(
                f"events not published yet: {error}. They are kept in the outbox; "
                "`relais outbox relay` or a running directory service delivers them."))
    else:
        with ctx.engine.connect() as conn:
            report.events_pending = pending_count(conn)
    if as_json:
        click.echo(json.dumps(report.to_dict(), ensure_ascii=False))
    else:
        for line in report.summary_lines():
            click.echo(line)
    sys.exit(0 if report.ok else 1)


def _warning(message: str) -> Warning:
    return Warning(None, None, None, message)


def _progress_bar(enabled: bool, **kwargs) -> tqdm | None:
    if not enabled:
        return None
    return tqdm(file=sys.stderr, dynamic_ncols=True, **kwargs)


@directory.command("get")
@click.argument("jointure")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def get(ctx: Context, jointure: str, as_json: bool) -> None:
    """Show one person by jointure, with children and legal guardians."""
    api = _api(ctx)
    person = api.get_person(jointure)
    if person is None:
        click.echo(f"no person with jointure {jointure!r}", err=True)
        sys.exit(1)
    person["children"] = [c["jointure"] for c in api.children(jointure)]
    person["legal_guardians"] = [g["jointure"] for g in api.legal_guardians(jointure)]
    if as_json:
        click.echo(json.dumps(person, ensure_ascii=False, indent=2))
        return
    click.echo(f"{person['last_name']} {person['first_name']} ({person['jointure']}, {person['category']}, "
               f"{', '.join(person['profiles'])})")
    for field in ("birth_date", "email", "ine", "struct_rattach_id", "structure", "mef"):
        if person.get(field):
            click.echo(f"  {field}: {person[field]}")
    first_degree = person.get("first_degree") or {}
    for field in ("level", "cycle"):  # a first-degree export's {code, label}
        if first_degree.get(field):
            click.echo(f"  {field}: {first_degree[field]['label']}"
                       + (f" ({first_degree[field]['code']})" if first_degree[field]["code"] else ""))
    for field in ("class_type", "entry_date", "exit_date"):
        if first_degree.get(field):
            click.echo(f"  {field}: {first_degree[field]}")
    if first_degree.get("services"):
        click.echo(f"  services: {', '.join(first_degree['services'])}")
    for m in person["memberships"]:
        click.echo("  " + " ".join(f"{k}={v}" for k, v in m.items()))
    if person["children"]:
        click.echo(f"  children: {', '.join(person['children'])}")
    if person["legal_guardians"]:
        click.echo(f"  legal guardians: {', '.join(person['legal_guardians'])}")


@directory.command("members")
@click.argument("structure")
@click.option("--class", "class_code", help="Only this class (with its teachers).")
@click.option("--group", "group_code", help="Only this group (with its teachers).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def members(ctx: Context, structure: str, class_code, group_code, as_json: bool) -> None:
    """List the members of a structure (jointure or UAI), class or group."""
    found = _api(ctx).members(structure, class_code, group_code)
    if as_json:
        click.echo(json.dumps(found, ensure_ascii=False))
        return
    for p in found:
        click.echo(f"{p['jointure']:>12}  {p['category']:<13} {p['last_name']} {p['first_name']}")
    click.echo(f"{len(found)} member(s)")


@directory.command("status")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def status(ctx: Context, as_json: bool) -> None:
    """Counts per family and the last import."""
    api = _api(ctx)
    counts = api.family_counts()
    last = api.last_import()
    data = {"counts": counts, "last_import": last and {k: last[k] for k in ("import_id", "status", "finished_at")}}
    if as_json:
        click.echo(json.dumps(data))
        return
    for k, v in counts.items():
        click.echo(f"{k:<16}{v:>9}")
    if last:
        click.echo(f"last import {last['import_id']} {last['status']} at {last['finished_at']}")
