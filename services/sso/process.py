"""What `relais serve sso` runs: the SSO's HTTP side, its outbox relay, and the purge of expired state.

- HTTP (CAS under /cas/, our SAML SP under /saml/, our SAML IdP under /idp/, and
  the probes /healthz and /readyz), on RELAIS_HTTP_HOST:RELAIS_HTTP_PORT (default
  127.0.0.1:8430), behind a TLS-terminating proxy; its configuration is the file
  RELAIS_SSO_CONFIG names (`relais sso check-config` checks one);
- the relay publishes its login and logout events; the broker being away stops no login;
- every ten minutes, expired tickets, sessions, replay-cache entries, SAML requests and OIDC codes and tokens go
  (any instance may do it);
- the consumer of erasure requests (`relais.q.sso-subject`, `subject.py`), confirmed through the relay.

Person data comes from the directory through `Ports.directory`, which the composition
root hands in. Run several instances on one PostgreSQL database to share sessions.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, datetime

from relais.db import writer
from relais.runtime import Context, Http, Parts, Process, StartError, Timer

from . import subject
from .app import SsoApp
from .config import ConfigError, load_config
from .directory_port import DirectoryPort
from .idp.nameid_secret import SecretChanged, check_secret
from .oidc.store import purge as purge_oidc
from .sessions import purge_expired
from .sp.store import purge as purge_saml

log = logging.getLogger(__name__)

DEFAULT_HOST, DEFAULT_PORT = "127.0.0.1", 8430
PURGE_EVERY_S = 600.0


@dataclass(frozen=True)
class Ports:
    """What the SSO needs of other services."""

    directory: DirectoryPort


def start(ctx: Context[Ports]) -> Parts:
    path = os.environ.get("RELAIS_SSO_CONFIG")
    if not path:
        raise StartError("RELAIS_SSO_CONFIG is not set: it names the SSO configuration file (YAML or JSON)")
    host = os.environ.get("RELAIS_HTTP_HOST") or DEFAULT_HOST
    port = _port(os.environ.get("RELAIS_HTTP_PORT"))
    try:
        config = load_config(path)
        app = SsoApp(ctx.engine, config, directory=ctx.ports.directory, tenant=ctx.settings.tenant,
                     secret=config.secret())
        _check_saml(app)
        _check_idp(app, ctx)
        if config.oidc:
            app.oidc.provider()  # a bad oidc section (keys, clients' secrets) stops the start
    except ConfigError as exc:
        raise StartError(str(exc)) from None

    def purge() -> None:
        with writer(ctx.engine).begin() as conn:
            purge_expired(conn, datetime.now(UTC))
            purge_saml(conn, datetime.now(UTC))
            purge_oidc(conn, datetime.now(UTC))

    return Parts(
        http=Http(app, host, port,
                  describe=f"sso on http://{host}:{port}/cas/ ({len(config.services)} CAS service(s))"),
        timers=[Timer("sso-purge", PURGE_EVERY_S, purge)],
        consumers=[subject.consumer(ctx.settings.tenant)],  # erasure requests (relais.subject)
        close=[app.close],
    )


def _port(raw: str | None) -> int:
    if not raw:
        return DEFAULT_PORT
    if not raw.strip().isdigit() or not 0 <= int(raw) <= 65535:
        raise StartError(f"RELAIS_HTTP_PORT={raw!r} is not a TCP port (0-65535)")
    return int(raw)


def _check_saml(app: SsoApp) -> None:
    """Fail now rather than at the first login on a bad saml section; loads the IdPs' metadata."""
    if not app.config.saml:
        return
    sp = app.sp.provider()
    for idp_id, source in (sp.sources.items() if sp else ()):
        if source.last_error:
            log.warning("IdP %s: no usable metadata yet (%s); retried every 5 minutes", idp_id, source.last_error)


def _check_idp(app: SsoApp, ctx: Context[Ports]) -> None:
    """Fail now on a bad idp section; warn when the deployment secret is not the one NameIDs derive from."""
    if not app.config.idp:
        return
    app.idp.provider()
    try:
        with writer(ctx.engine).begin() as conn:
            check_secret(conn, app.secret, datetime.now(UTC))
    except SecretChanged as exc:
        log.warning("the SAML IdP will answer nothing: %s", exc)


PROCESS: Process[Ports] = Process(service="sso", start=start, readiness=("database",))
