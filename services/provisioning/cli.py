"""`relais provisioning …` commands."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
import yaml
from tqdm import tqdm

from relais.commands import Context, pass_ctx, relay_now
from relais.db import writer
from relais.runtime.runner import event_consumer

from .api.apps import SCOPES, AppError, add_app, entitled, load_apps, remove_app
from .api.oneroster_view import AppView
from .feeds.gar import GarReport, export, record_feed, validate
from .feeds.gar_1d import export_1d, has_ecoles, state_key
from .feeds.oneroster_csv import write_bundle
from .grants.catalogue import CatalogueError
from .grants.rules import RuleError
from .handlers.configuration import load_catalogue, load_rules
from .handlers.departures import sweep_departures
from .handlers.explain import explain as explain_person
from .handlers.full_evaluation import evaluate_all
from .handlers.manual_grants import grant_manually, revoke_manually
from .handlers.work import Context as Work
from .handlers.work import ProvisioningError
from .process import consumer


@click.group()
def provisioning() -> None:
    """Resources and licences for directory accounts: catalogue, rules, grants, GAR feed."""


def _document(path: Path) -> dict:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise click.ClickException(f"{path}: cannot read it as YAML or JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise click.ClickException(f"{path}: expected a mapping with 'resources:' and/or 'rules:'")
    return data


def _finish(ctx: Context, result: dict, as_json: bool, no_publish: bool = False) -> None:
    if not no_publish:
        sent, pending, error = relay_now(ctx)
        result.update(events_published=sent, events_pending=pending)
        if error:
            result["warning"] = (f"events not published yet: {error}; they wait in the outbox "
                                 "(`relais outbox relay` or a running service delivers them)")
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False, default=str))
    else:
        for k, v in result.items():
            click.echo(f"{k}: {v}")


@provisioning.command("load")
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-publish", is_flag=True, help="Leave the grant events in the outbox.")
@pass_ctx
def load(ctx: Context, paths, as_json: bool, no_publish: bool) -> None:
    """Load a catalogue (`resources:`) and/or rules (`rules:`) from YAML/JSON files, then re-evaluate.

    Everything is checked first; any problem (unknown structure or class, an
    entry without a licence model, a quota below the licences held) changes nothing.
    """
    resources: dict[str, list[Any]] = {}
    rules: dict[str, Any] = {}
    for path in paths:
        doc = _document(path)
        if "resources" in doc:
            resources.setdefault("resources", []).extend(doc["resources"] or [])
        if "rules" in doc:
            rules.update(doc)
            rules.pop("resources", None)
    if not resources and not rules:
        raise click.UsageError("no 'resources:' or 'rules:' in the files given")
    work = Work(ctx.settings.tenant)
    try:
        with writer(ctx.engine).begin() as conn:
            if resources:
                load_catalogue(conn, resources, work)
            if rules:
                load_rules(conn, rules, work)
    except (CatalogueError, RuleError) as exc:
        click.echo("nothing was changed:", err=True)
        for problem in exc.problems:
            click.echo(f"  - {problem}", err=True)
        sys.exit(1)
    except ProvisioningError as exc:
        raise click.ClickException(f"{exc}; nothing was changed") from exc
    _finish(ctx, dict(work.counts), as_json, no_publish)


@provisioning.command("evaluate")
@click.option("--json", "as_json", is_flag=True)
@click.option("--no-publish", is_flag=True)
@pass_ctx
def evaluate(ctx: Context, as_json: bool, no_publish: bool) -> None:
    """Re-evaluate every account against the rules (normally done on each directory event)."""
    work = Work(ctx.settings.tenant)
    with writer(ctx.engine).begin() as conn:
        evaluate_all(conn, work)
    _finish(ctx, dict(work.counts), as_json, no_publish)


@provisioning.command("sync")
@click.option("--idle", type=float, default=2.0, show_default=True, help="Stop after this many idle seconds.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sync(ctx: Context, idle: float, as_json: bool) -> None:
    """Consume the directory events waiting for provisioning, then stop (the service does this continuously)."""
    handled = event_consumer(consumer(ctx.settings.tenant), ctx.engine).run(ctx.settings.amqp_uri,
                                                                            idle_timeout=idle)
    _finish(ctx, {"events_consumed": handled}, as_json)


@provisioning.command("explain")
@click.argument("jointure")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def explain(ctx: Context, jointure: str, as_json: bool) -> None:
    """Why a person has (or lacks) each resource: grants, causes, refusals, history."""
    with ctx.engine.connect() as conn:
        data = explain_person(conn, jointure)
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False))
        return
    if not data["in_directory"] and not data["grants"] and not data["history"]:
        click.echo(f"{jointure}: not in provisioning's view of the directory, and never held a grant", err=True)
        sys.exit(1)
    click.echo(f"{jointure}: {', '.join(data['profiles']) or 'no profile'} in {', '.join(data['structures']) or '-'}"
               f"{' (classes ' + ', '.join(data['classes']) + ')' if data['classes'] else ''}")
    if not data["grants"]:
        click.echo("  no resource")
    for g in data["grants"]:
        pending = f", revoked after {g['revoke_after'][:10]} (departure)" if g["revoke_after"] else ""
        click.echo(f"  {g['resource']} ({g['title']}) in {g['structure']}: {g['cause']}, "
                   f"since {g['granted_at'][:10]}{pending}")
    for r in data["refusals"]:
        click.echo(f"  REFUSED {r['resource']} in {r['structure']}: {r['reason']}")


@provisioning.command("grant")
@click.argument("person")
@click.argument("resource")
@click.argument("uai")
@click.option("--by", required=True, help="Jointure of the resource manager giving it.")
@pass_ctx
def grant(ctx: Context, person: str, resource: str, uai: str, by: str) -> None:
    """A resource manager of UAI gives RESOURCE to PERSON by hand."""
    _manual(ctx, "grant", by, person, resource, uai)


@provisioning.command("revoke")
@click.argument("person")
@click.argument("resource")
@click.argument("uai")
@click.option("--by", required=True, help="Jointure of the resource manager taking it back.")
@pass_ctx
def revoke(ctx: Context, person: str, resource: str, uai: str, by: str) -> None:
    """A resource manager of UAI takes back a RESOURCE given by hand."""
    _manual(ctx, "revoke", by, person, resource, uai)


def _manual(ctx: Context, action: str, by: str, person: str, resource: str, uai: str) -> None:
    work = Work(ctx.settings.tenant)
    try:
        with writer(ctx.engine).begin() as conn:
            (grant_manually if action == "grant" else revoke_manually)(conn, by, person, resource, uai, work)
    except ProvisioningError as exc:
        raise click.ClickException(str(exc)) from exc
    _finish(ctx, dict(work.counts), as_json=False)


@provisioning.command("sweep")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def sweep(ctx: Context, as_json: bool) -> None:
    """Revoke the grants whose departure grace period is over (the service does it hourly)."""
    work = Work(ctx.settings.tenant)
    with writer(ctx.engine).begin() as conn:
        sweep_departures(conn, work)
    _finish(ctx, dict(work.counts), as_json)


@provisioning.command("gar-export")
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--ent-id", required=True, help="The ENT project's id at the GAR (file name prefix).")
@click.option("--xsd", type=click.Path(exists=True, dir_okay=False, path_type=Path), envvar="RELAIS_GAR_XSD",
              help="GAR-ENT.xsd to validate every file against (env RELAIS_GAR_XSD).")
@click.option("--xsd-1d", type=click.Path(exists=True, dir_okay=False, path_type=Path), envvar="RELAIS_GAR_XSD_1D",
              help="GAR-ENT-1D.xsd to validate the écoles' feed against (env RELAIS_GAR_XSD_1D).")
@click.option("--delta", is_flag=True,
              help="Only the records created or changed since the previous feed (a complete one if records were "
                   "removed since, or if there was none).")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def gar_export(ctx: Context, out_dir: Path, ent_id: str, xsd: Path | None, xsd_1d: Path | None, delta: bool,
               as_json: bool) -> None:
    """Write the GAR feed (Etab, Eleve, Enseignant, Groupe, RespAff files) into OUT_DIR.

    When the directory holds écoles, their first-degree feed too (`…_1D_<Type>_…`
    files, GAR-ENT-1D), reported under `first_degree`. Every feed written (and
    valid, when its XSD is given) is remembered for the next --delta; an
    invalid one is not, so the next delta still compares with the last feed
    that could be delivered.
    """
    now = datetime.now(UTC)
    with ctx.engine.connect() as conn:
        report = export(conn, out_dir, ent_id, now, delta=delta)
        report_1d = export_1d(conn, out_dir, ent_id, now, delta=delta) if has_ecoles(conn) else None
    result = _checked_feed(ctx, report, ent_id, xsd, now)
    problems = result.get("problems")
    if report_1d is not None:
        result["first_degree"] = _checked_feed(ctx, report_1d, state_key(ent_id), xsd_1d, now)
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        _echo_feed(out_dir, report, xsd, problems)
        if report_1d is not None:
            click.echo("first degree (écoles):")
            _echo_feed(out_dir, report_1d, xsd_1d, result["first_degree"].get("problems"))
    sys.exit(1 if problems or (report_1d is not None and result["first_degree"].get("problems")) else 0)


def _checked_feed(ctx: Context, report: GarReport, key: str, xsd: Path | None, now: datetime) -> dict[str, Any]:
    """A feed's report, validated against `xsd` when given, and remembered for the next delta unless invalid."""
    result: dict[str, Any] = report.to_dict()
    problems = validate(report.files, xsd) if xsd else None
    if not problems:
        with writer(ctx.engine).begin() as conn:
            record_feed(conn, key, report, now)
    result["xsd"] = str(xsd) if xsd else None
    result["valid"] = None if problems is None else not problems
    if problems:
        result["problems"] = problems[:100]
    return result


def _echo_feed(out_dir: Path, report: GarReport, xsd: Path | None, problems: list[str] | None) -> None:
    click.echo(f"{report.mode}: {len(report.files)} file(s) in {out_dir}: " +
               (", ".join(f"{k} {report.records.get(k, 0)} ({n} elements)" for k, n in report.elements.items())
                or "nothing changed"))
    if report.mode == "Delta":
        click.echo(f"  {report.unchanged} element(s) unchanged since the previous feed, left out")
    if report.reason:
        click.echo(f"  {report.reason}")
    for s in report.skipped[:20]:
        click.echo(f"  left out {s['type']} {s['id']}: {s['reason']}")
    if len(report.skipped) > 20:
        click.echo(f"  … and {len(report.skipped) - 20} more (--json lists them all)")
    if xsd is None:
        click.echo("  not validated (give --xsd or RELAIS_GAR_XSD; --xsd-1d or RELAIS_GAR_XSD_1D for écoles)")
    elif problems:
        click.echo(f"  INVALID against {xsd}:")
        for p in problems[:20]:
            click.echo(f"    {p}")
    else:
        click.echo(f"  every file is valid against {xsd}")


@provisioning.command("oneroster-export")
@click.option("--app", "app_id", required=True, help="The app (OAuth client id) whose view is exported.")
@click.argument("out", type=click.Path(path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def oneroster_export(ctx: Context, app_id: str, out: Path, as_json: bool) -> None:
    """Write an app's OneRoster 1.2 CSV bundle (bulk) into the folder OUT, or the zip file OUT if it ends in .zip.

    Only what the app is entitled to: the accounts holding one of its
    resources, their schools, classes and groups, and of each account the
    attributes its resources' catalogue entries list.
    """
    if out.exists() and out.suffix.lower() != ".zip" and not out.is_dir():
        raise click.ClickException(f"{out}: exists and is not a folder (give a folder, or a path ending in .zip)")
    with ctx.engine.connect() as conn:
        app = load_apps(conn).get(app_id)
        if app is None:
            raise click.ClickException(f"no app {app_id!r} in this database "
                                       "(create one with `relais provisioning app add`)")
        view = AppView(conn, app, now=datetime.now(UTC))
        bar = None
        if not as_json and sys.stderr.isatty():
            bar = tqdm(total=view.count_accounts(), unit=" accounts", desc="oneroster", file=sys.stderr,
                       dynamic_ncols=True)
        try:
            report = write_bundle(view, out, progress=bar.update if bar else None)
        except OSError as exc:
            raise click.ClickException(f"{out}: cannot write the bundle: {exc}") from exc
        finally:
            if bar:
                bar.close()
    result = report.to_dict()
    if as_json:
        click.echo(json.dumps(result, ensure_ascii=False))
    else:
        click.echo(f"OneRoster {result['path']} for {app_id}: " +
                   ", ".join(f"{name} {rows}" for name, rows in result["rows"].items()))


@provisioning.group("app")
def app_group() -> None:
    """Apps that read rosters (OneRoster, SCIM): OAuth 2.0 clients and the resources they serve."""


@app_group.command("add")
@click.argument("app_id")
@click.option("--resource", "resources", multiple=True, help="A catalogue resource the app serves (repeat).")
@click.option("--scope", "scopes", multiple=True, type=click.Choice(["oneroster", "scim"]),
              help="An API the app may call (repeat; default: all).")
@click.option("--name", default="", help="A label for operators.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def app_add(ctx: Context, app_id: str, resources: tuple[str, ...], scopes: tuple[str, ...], name: str,
            as_json: bool) -> None:
    """Create the app APP_ID, or give it a new secret and settings; prints its secret once.

    The app sees the accounts holding one of its resources, and of them only
    the attributes those resources' catalogue entries list. Only the secret's
    hash is kept: store the secret now, it cannot be shown again.
    """
    try:
        with writer(ctx.engine).begin() as conn:
            app, secret = add_app(conn, app_id, resources, scopes or SCOPES, name)
    except AppError as exc:
        raise click.ClickException(f"{exc}; nothing was changed") from exc
    out: dict[str, Any] = {"client_id": app.id, "client_secret": secret, "resources": sorted(app.resources),
           "scopes": sorted(app.scopes), "token_endpoint": "/oauth/token"}
    if as_json:
        click.echo(json.dumps(out, ensure_ascii=False))
        return
    click.echo(f"app {app.id}: scopes {' '.join(out['scopes'])}; resources {', '.join(out['resources']) or '(none)'}")
    click.echo(f"client_secret: {secret}")
    click.echo("Store the secret now: only its hash is kept.", err=True)
    if not app.resources:
        click.echo("warning: an app with no resource sees nothing (add --resource)", err=True)


@app_group.command("list")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def app_list(ctx: Context, as_json: bool) -> None:
    """The apps, their scopes and resources, and how many accounts each may see."""
    with ctx.engine.connect() as conn:
        rows: list[dict[str, Any]] = [
            {"id": a.id, "name": a.name, "scopes": sorted(a.scopes), "resources": sorted(a.resources),
             "accounts": len(entitled(conn, a))} for a in sorted(load_apps(conn).values(), key=lambda a: a.id)]
    if as_json:
        click.echo(json.dumps(rows, ensure_ascii=False))
    elif not rows:
        click.echo("no apps (create one with `relais provisioning app add`)")
    for r in [] if as_json else rows:
        click.echo(f"{r['id']}: {' '.join(r['scopes'])}; {r['accounts']} accounts; "
                   f"resources {', '.join(r['resources']) or '(none)'}")


@app_group.command("remove")
@click.argument("app_id")
@pass_ctx
def app_remove(ctx: Context, app_id: str) -> None:
    """Remove an app; its tokens stop working at once."""
    with writer(ctx.engine).begin() as conn:
        if not remove_app(conn, app_id):
            raise click.ClickException(f"no app {app_id!r}")
    click.echo(f"app {app_id} removed")


@provisioning.command("serve-api", hidden=True, context_settings={"ignore_unknown_options": True})
@click.argument("ignored", nargs=-1, type=click.UNPROCESSED)
def serve_api(ignored: tuple[str, ...]) -> None:
    """Gone: `relais serve provisioning-api` serves the APIs (exit status 2, as for a configuration to fix)."""
    click.echo("relais provisioning serve-api is gone: run `relais serve provisioning-api`, listening on "
               "RELAIS_HTTP_HOST:RELAIS_HTTP_PORT (default 127.0.0.1:8420) (deploy/http.md)", err=True)
    sys.exit(2)
