"""The SSO service's WSGI application: the three HTTP sides of one instance, and the probes.

| path | side |
|---|---|
| `/cas/…` (and any other path: 404) | the CAS server for the ENT's apps (cas/http.py) |
| `/saml/…` | our SAML SP towards the national IdPs (sp/http.py); 404 without a `saml:` section |
| `/idp/…` | our SAML IdP towards resource platforms (idp/http.py); 404 without an `idp:` section |
| `/oidc/…`, `/.well-known/openid-configuration` | our OpenID Connect provider (oidc/http.py); 404 without `oidc:` |
| `/healthz`, `/readyz` | the probes, for load balancers in front of this port (`/metrics` stays on the ops port) |

The sides share the instance's engine, configuration, CAS registry, directory
port, clock and deployment secret, and one back-channel logout: a session that
ends anywhere (CAS logout, an IdP's or a platform's LogoutRequest, an OIDC client's
logout) tells the CAS apps it logged into, then the OIDC clients it got tokens for.
Several instances over one database share sessions, tickets and pending SAML requests.
Every answer is `Cache-Control: no-store` and `X-Content-Type-Options: nosniff` unless the side said otherwise.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from relais.ops.health import database_check
from relais.ops.server import PROBES, OpsApp

from .attribute_source import AttributeSource
from .cas.back_channel_logout import BackChannelLogout
from .cas.http import CasHttp
from .config import SsoConfig
from .directory_port import DirectoryPort
from .idp.http import IdpHttp
from .oidc.http import DISCOVERY, OidcHttp
from .rules.service_registry import ServiceRegistry
from .sp.http import SpHttp


class SsoApp:
    """The WSGI application of one SSO instance."""

    def __init__(self, engine: Engine, config: SsoConfig, *, directory: DirectoryPort, tenant: str, secret: bytes,
                 clock: Callable[[], datetime] | None = None, http_timeout: float = 5.0) -> None:
        if len(secret) < 32:
            raise ValueError("the deployment secret must be at least 32 bytes")
        self.engine = engine
        self.config = config
        self.registry = ServiceRegistry(config.services)
        self.directory = directory
        self.attributes = AttributeSource(directory, uai_ttl=300)  # structures' UAIs kept 5 minutes
        self.tenant = tenant
        self._secret = secret
        self.clock = clock or (lambda: datetime.now(UTC))
        self.back_channel = BackChannelLogout(self.registry, timeout=http_timeout)
        notify = self.back_channel.notify
        self.cas = CasHttp(engine=engine, config=config, registry=self.registry, attributes=self.attributes,
                           tenant=tenant, secret=secret, clock=self.clock, back_channel=self.back_channel,
                           http_timeout=http_timeout)
        self.sp = SpHttp(engine=engine, config=config, registry=self.registry, directory=directory, tenant=tenant,
                         clock=self.clock, notify=notify, uai_of=self.attributes.uai_of)
        self.idp = IdpHttp(engine=engine, config=config, directory=directory, secret=secret, tenant=tenant,
                           clock=self.clock, notify=notify)
        self.oidc = OidcHttp(engine=engine, config=config, attributes=self.attributes, secret=secret, tenant=tenant,
                             clock=self.clock, notify=notify, http_timeout=http_timeout)
        self.back_channel.listeners.append(self.oidc.session_ended)
        self.ops = OpsApp("sso", {"database": database_check(engine.url.render_as_string(hide_password=False))})

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in PROBES:
            return self.ops(environ, start_response)
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except HTTPException as exc:
            response = exc.get_response(environ)
        response.headers.setdefault("Cache-Control", "no-store")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/saml/"):
            return self.sp.handle(request)
        if request.path.startswith("/idp/"):
            return self.idp.handle(request)
        if request.path.startswith("/oidc/") or request.path == DISCOVERY:
            return self.oidc.handle(request)
        return self.cas.handle(request)

    @property
    def secret(self) -> bytes:
        """The deployment secret (CAS renew stamps, the SAML IdP's pseudonymous NameIDs). Never log it."""
        return self._secret

    def close(self) -> None:
        self.back_channel.close()
        self.oidc.close()
