"""The OpenID Connect provider's HTTP side, mounted by app.py for `/oidc/` and `/.well-known/openid-configuration`:
it only translates (flows.py acts).

/oidc/.well-known/openid-configuration   GET       discovery (also at /.well-known/openid-configuration)
/oidc/jwks                               GET       the published signing keys
/oidc/authorize                          GET       the authorization code flow (the SSO cookie: its live session)
/oidc/token                              POST      codes and refresh tokens for tokens
/oidc/userinfo                           GET/POST  the claims, for a Bearer access token
/oidc/logout                             GET/POST  RP-initiated logout (POST: our confirmation form)

Every path answers 404 when the configuration has no `oidc:` section. Browser applications (public clients) call
the token and userinfo endpoints across origins: those answer CORS only to the origins of registered redirect URIs
(preflights included); discovery and the JWKS, public documents, to any origin.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import datetime
from html import escape
from urllib.parse import unquote_plus, urlsplit

from sqlalchemy import Engine
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from ..attribute_source import AttributeSource
from ..config import SsoConfig
from ..cookies import clear_session_cookie, session_id
from ..lazy import Lazy
from ..pages import redirect
from ..sessions import ClosedSession
from .back_channel_logout import OidcBackChannel
from .config import parse_oidc
from .flows import Json, OidcProvider, Page, Redirect

log = logging.getLogger(__name__)
DISCOVERY = "/.well-known/openid-configuration"


class OidcHttp:
    """The /oidc/ side of one SSO instance: its provider, made on first use (None without an oidc section)."""

    def __init__(self, *, engine: Engine, config: SsoConfig, attributes: AttributeSource, secret: bytes, tenant: str,
                 clock: Callable[[], datetime], notify: Callable[[ClosedSession, datetime], object],
                 http_timeout: float) -> None:
        self.engine = engine
        self.config = config
        self._attributes = attributes
        self._secret = secret
        self._tenant = tenant
        self.clock = clock
        self._notify = notify
        self._timeout = http_timeout
        self.back_channel: OidcBackChannel | None = None
        self.provider = Lazy(self._make_provider)

    def _make_provider(self) -> OidcProvider | None:
        settings = parse_oidc(self.config.oidc, where="configuration", base_url=self.config.base_url)
        if settings is None:
            return None
        provider = OidcProvider(settings, engine=self.engine, attributes=self._attributes, secret=self._secret,
                                lifetimes=self.config.lifetimes, clock=self.clock, tenant=self._tenant,
                                notify=self._notify)
        self.back_channel = OidcBackChannel(provider, secret=self._secret, timeout=self._timeout)
        return provider

    def session_ended(self, closed: ClosedSession, now: datetime) -> None:
        """Back-channel logout to the session's OIDC clients (called after the CAS services are told)."""
        if self.config.oidc and self.provider() is not None and self.back_channel is not None:
            self.back_channel.notify(closed, now)

    def handle(self, request: Request) -> Response:
        provider = self.provider() if self.config.oidc else None
        if provider is None:
            raise NotFound()
        response = self._answer(request, provider)
        path = request.path.rstrip("/")
        origin = request.headers.get("Origin")
        if path in (DISCOVERY, "/oidc" + DISCOVERY, "/oidc/jwks"):
            response.headers["Access-Control-Allow-Origin"] = "*"
        elif path in ("/oidc/token", "/oidc/userinfo") and origin and origin in provider.origins:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    def _answer(self, request: Request, provider: OidcProvider) -> Response:
        path = request.path.rstrip("/")
        if request.method == "OPTIONS" and path in ("/oidc/token", "/oidc/userinfo"):  # a CORS preflight
            return Response(status=204, headers={"Access-Control-Allow-Methods": "GET, POST",
                                                 "Access-Control-Allow-Headers": "Authorization, Content-Type",
                                                 "Access-Control-Max-Age": "600"})
        if path in (DISCOVERY, "/oidc" + DISCOVERY):
            return _json(Json(200, provider.discovery(), {"Cache-Control": "public, max-age=3600"}))
        if path == "/oidc/jwks":
            return _json(Json(200, provider.jwks(), {"Cache-Control": "public, max-age=300"}))
        if path == "/oidc/authorize":
            _methods(request, "GET", "HEAD")
            outcome = provider.authorize(request.args.to_dict(), session_id(request, self.config),
                                         request.query_string.decode("latin-1"))
            return self._outcome(outcome)
        if path == "/oidc/token":
            _methods(request, "POST")
            return _json(provider.token(request.form.to_dict(), _basic(request)))
        if path == "/oidc/userinfo":
            _methods(request, "GET", "POST")
            return _json(provider.userinfo(_bearer(request)))
        if path == "/oidc/logout":
            _methods(request, "GET", "HEAD", "POST")
            params = (request.form if request.method == "POST" else request.args).to_dict()
            csrf = params.pop("csrf_token", None) if request.method == "POST" else None
            return self._outcome(provider.logout(params, session_id(request, self.config), confirmed_csrf=csrf))
        raise NotFound()

    def _outcome(self, outcome: Redirect | Page) -> Response:
        if isinstance(outcome, Redirect):
            response = redirect(outcome.location)
        else:
            response = _page(outcome)
        if outcome.clear_cookie:
            clear_session_cookie(response, self.config)
        return response

    def close(self) -> None:
        if self.back_channel is not None:
            self.back_channel.close()


def _methods(request: Request, *allowed: str) -> None:
    if request.method not in allowed:
        raise MethodNotAllowed(list(allowed))


def _json(answer: Json) -> Response:
    return Response(json.dumps(answer.body), status=answer.status, mimetype="application/json",
                    headers=answer.headers)


def _basic(request: Request) -> tuple[str, str] | None:
    """client_secret_basic: the form-urlencoded id and secret of the Authorization header (RFC 6749 2.3.1)."""
    auth = request.authorization
    if auth is None or auth.type != "basic" or auth.username is None:
        return None
    return unquote_plus(auth.username), unquote_plus(auth.password or "")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def _page(page: Page) -> Response:
    form = ""
    if page.form is not None:
        fields = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in page.form.items())
        form = f'<form method="post" action="/oidc/logout">{fields}<button type="submit">{escape(page.button)}' \
               '</button></form>'
    body = (f'<!doctype html><html lang="{escape(page.lang)}"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{escape(page.title)}</title>'
            f"</head><body><main><h1>{escape(page.title)}</h1><p>{escape(page.message)}</p>{form}</main></body></html>")
    # The confirmation form's answer redirects to the client's registered return URI: the form may lead there.
    target = urlsplit((page.form or {}).get("post_logout_redirect_uri", ""))
    also = f" {target.scheme}://{target.netloc}" if target.scheme in ("https", "http") and target.netloc else ""
    return Response(body, status=page.status, mimetype="text/html", headers={
        "X-Frame-Options": "DENY", "Content-Security-Policy": f"default-src 'none'; form-action 'self'{also}"})
