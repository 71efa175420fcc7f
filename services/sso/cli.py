"""`relais sso …` commands."""

from __future__ import annotations

import json
import sys
import threading
from datetime import UTC, datetime
from pathlib import Path

import click

from relais.cli import Context, pass_ctx

_CONFIG = click.option("--config", "config_path", envvar="RELAIS_SSO_CONFIG", required=True,
                       type=click.Path(exists=True, dir_okay=False, path_type=Path),
                       help="The SSO configuration (YAML or JSON); default $RELAIS_SSO_CONFIG.")


@click.group()
def sso() -> None:
    """Single sign-on: SSO sessions, the CAS server for the ENT's apps, the SAML SP towards national IdPs."""


def _load(path: Path):
    from .config import ConfigError, load_config

    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@sso.command("check-config")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
def check_config(path: Path, as_json: bool) -> None:
    """Check an SSO configuration; every problem is listed with where it is (exit 1 if any)."""
    from .config import ConfigError, load_config

    try:
        config = load_config(path)
    except ConfigError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "problems": exc.problems}, ensure_ascii=False))
        else:
            click.echo(str(exc), err=True)
        sys.exit(1)
    summary = {"ok": True, "base_url": config.base_url, "services": [s.id for s in config.services],
               "lifetimes": vars(config.lifetimes), "cookie_secure": config.cookie.secure,
               "allow_http_callbacks": config.allow_http_callbacks, "secret_env": config.secret_env}
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False))
    else:
        click.echo(f"{path}: OK, {len(config.services)} CAS service(s): {', '.join(summary['services']) or 'none'}")
        if not config.cookie.secure or config.allow_http_callbacks:
            click.echo("warning: cookie.secure is off or allow_http_callbacks is on: for local tests only", err=True)


@sso.command("serve")
@_CONFIG
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8430, show_default=True, type=int)
@pass_ctx
def serve(ctx: Context, config_path: Path, host: str, port: int) -> None:
    """Serve /cas/ and /saml/ over HTTP (werkzeug's threaded server), behind a TLS-terminating proxy.

    Person data comes from the directory's tables in the same database (embedded
    deployment). Run several instances on one PostgreSQL database to share sessions.
    """
    from werkzeug.serving import make_server

    from services.directory.api import Directory

    from .config import ConfigError
    from .web import QuietRequestHandler, make_app

    config = _load(config_path)
    try:
        secret = config.secret()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    app = make_app(ctx.engine, config, directory=Directory(ctx.engine, ctx.settings.tenant),
                   tenant=ctx.settings.tenant, secret=secret)
    server = make_server(host, port, app, threaded=True, request_handler=QuietRequestHandler)
    stop = threading.Event()
    threading.Thread(target=_purge_every, args=(ctx.engine, 600, stop), daemon=True, name="sso-purge").start()
    click.echo(f"sso on http://{host}:{port}/cas/ ({len(config.services)} CAS service(s))", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        app.close()


def _purge_every(engine, seconds: float, stop: threading.Event) -> None:
    """Expired tickets, sessions and replay-cache entries go every `seconds` (any instance may do it)."""
    import logging

    from relais.db import writer

    from .sessions import purge_expired

    while not stop.wait(seconds):
        try:
            with writer(engine).begin() as conn:
                purge_expired(conn, datetime.now(UTC))
        except Exception:
            logging.getLogger(__name__).exception("purge of expired SSO state failed")


@sso.command("purge")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def purge(ctx: Context, as_json: bool) -> None:
    """Delete expired tickets, sessions past their end and expired replay-cache entries."""
    from relais.db import writer

    from .sessions import purge_expired

    with writer(ctx.engine).begin() as conn:
        n = purge_expired(conn, datetime.now(UTC))
    click.echo(json.dumps({"sessions_deleted": n}) if as_json else f"{n} expired session(s) deleted")
