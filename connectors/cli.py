"""``relais connectors …``: which connectors exist, whether a configuration reaches its peer, a new one's package.

Before a long export, ``relais connectors check webdav --config ent-a.yaml`` says whether the
URL answers, the credentials are accepted and owners are listed, with the connector's own
error otherwise (exit status 1).
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import click

from connectors.sdk import VERTICALS, ConnectorConfig, ConnectorError, registry
from connectors.sdk.template import TemplateError, write_skeleton


@click.group("connectors")
def connectors() -> None:
    """Connectors to ENTs and other sources and targets of the vault."""


@connectors.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def list_(as_json: bool) -> None:
    """The connectors known: built-in, installed plugins."""
    rows: list[dict[str, Any]] = []
    for name in registry.names():
        try:
            info = registry.get(name)
        except ConnectorError as exc:
            rows.append({"name": name, "error": str(exc)})
            continue
        rows.append({"name": name, "verticals": list(info.verticals), "summary": info.summary,
                     "export": info.exporter is not None, "import": info.importer is not None,
                     "options": dict(info.options or {})})
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    for row in rows:
        if "error" in row:
            click.echo(f"{row['name']:<10} cannot be loaded: {row['error']}")
            continue
        ways = "/".join(w for w in ("export", "import") if row[w])
        click.echo(f"{row['name']:<10} {', '.join(row['verticals']):<12} {ways:<14} {row['summary']}")


@connectors.command()
@click.argument("name")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="YAML or JSON configuration of the connector (see connectors/README.md).")
@click.option("--vertical", default=None, help="For a connector handling several verticals.")
@click.option("--owner", default=None, help="Also list this owner's items (counted, not read).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def check(name: str, config_path: Path, vertical: str | None, owner: str | None, as_json: bool) -> None:
    """Reach the connector's peer with a configuration: list owners (and an owner's items)."""
    report: dict[str, Any] = {"connector": name, "config": str(config_path), "ok": False}
    t0 = time.monotonic()
    try:
        config = ConnectorConfig.from_file(config_path)
        report["settings"] = config.describe()
        exporter = registry.open_exporter(name, config, vertical)
        try:
            report["vertical"] = exporter.vertical
            owners = exporter.owners()
            report["owners_first_page"] = len(owners.items)
            report["more_owners"] = owners.next_cursor is not None
            discovery = getattr(exporter, "discovery", None)  # caldav/carddav with options.discover
            if discovery is not None:
                report["discovery"] = discovery.to_dict()
            if owner is not None:
                files = folders = 0
                for ref in exporter.iter_refs(owner):
                    files += ref.kind == "file"
                    folders += ref.kind == "folder"
                report["owner"] = {"id": owner, "files": files, "folders": folders}
        finally:
            exporter.close()
        report["ok"] = True
    except ConnectorError as exc:
        report["error"] = str(exc)
    report["seconds"] = round(time.monotonic() - t0, 3)
    if as_json:
        click.echo(json.dumps(report, indent=2, ensure_ascii=False))
    elif report["ok"]:
        line = f"{name}: ok, {report['owners_first_page']}{'+' if report['more_owners'] else ''} owners"
        if owner is not None:
            o = report["owner"]
            line += f"; {owner}: {o['files']} files in {o['folders']} folders"
        click.echo(line + f" ({report['seconds']} s)")
        if "discovery" in report:
            found = report["discovery"]
            click.echo(f"discovered: principal {found['principal_url']}, homes "
                       f"{', '.join(found['calendar_homes'] + found['addressbook_homes'])}"
                       f"{' (through /.well-known/)' if found['well_known'] else ''}")
    else:
        click.echo(report["error"], err=True)
    sys.exit(0 if report["ok"] else 1)


@connectors.command()
@click.argument("name")
@click.option("--dir", "dest", default=".", show_default=True, type=click.Path(path_type=Path, file_okay=False),
              help="Where to write relais-connector-NAME/.")
@click.option("--vertical", default="documents", show_default=True, type=click.Choice(VERTICALS))
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def new(name: str, dest: Path, vertical: str, as_json: bool) -> None:
    """Write a new connector's package: connector, configuration, tests running the kit (connectors/GUIDE.md)."""
    try:
        written = write_skeleton(name, dest, vertical=vertical)
    except TemplateError as exc:
        if as_json:
            click.echo(json.dumps({"name": name, "ok": False, "error": str(exc)}, ensure_ascii=False))
        else:
            click.echo(f"relais connectors new: {exc}", err=True)
        sys.exit(2)
    root = written[0].parent
    if as_json:
        click.echo(json.dumps({"name": name, "ok": True, "root": str(root), "vertical": vertical,
                               "files": [str(p.relative_to(root)) for p in written]}, ensure_ascii=False))
        return
    click.echo(f"{name}: wrote {root}/ ({len(written)} files)")
    for path in written:
        click.echo(f"  {path.relative_to(root)}")
    click.echo(f"Next: cd {root} && pip install -e '.[test]' && pytest  (connectors/GUIDE.md)")
