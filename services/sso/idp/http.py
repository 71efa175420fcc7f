"""The SAML IdP's HTTP side, mounted by app.py for every path under /idp/: it only translates (flows.py acts).

/idp/metadata              GET       our IdP metadata (signed; every key of a rollover)
/idp/sso                   GET       an AuthnRequest over HTTP-Redirect (SP-initiated SSO)
                           POST      an AuthnRequest over HTTP-POST
/idp/sso/continue          GET       back from the login (`request`: the signed continuation token)
/idp/launch/<platform id>  GET       IdP-initiated SSO: an unsolicited response (`RelayState`: where to land)
/idp/slo                   GET/POST  a platform's LogoutRequest (HTTP-Redirect / HTTP-POST): ends the session
/idp/slo/continue          GET       the same, for a LogoutRequest that came by cross-site POST

An answer is an auto-submitting form posting the Response to the platform's
ACS, taken from its metadata. Without an SSO session the browser goes to
`/saml/login?next=/idp/sso/continue?…` and comes back. A request that cannot
be answered safely (unknown platform, ACS not in the metadata, bad or missing
signature, hostile XML) gets an error page naming the problem and an incident
reference that is also in the log; nothing is posted anywhere.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from ..config import ConfigError, SsoConfig
from ..cookies import clear_session_cookie, session_id
from ..directory_port import DirectoryPort
from ..lazy import Lazy
from ..saml.bindings import Outgoing
from ..saml.xml import BINDING_POST, BINDING_REDIRECT, Refused
from ..sessions import ClosedSession
from .config import parse_idp
from .flows import CONTINUE_PATH, LOGOUT_CONTINUE_PATH, Answer, IdentityProvider, LoggedOut, NeedLogin, Resume
from .nameid_secret import SecretChanged

log = logging.getLogger(__name__)

MAX_REQUEST_BODY = 256 * 1024
# refusal reason -> HTTP status of the error page (default 400)
_STATUS = {"unknown-platform": 403, "idp-initiated-refused": 403, "too-large": 413}


_Route = tuple[tuple[str, ...], Callable[[Request, IdentityProvider, "IdpHttp"], Response]]


class IdpHttp:
    """The /idp/ side of one SSO instance: its IdentityProvider (made on first use) behind the routes below."""

    def __init__(self, *, engine: Engine, config: SsoConfig, directory: DirectoryPort, secret: bytes, tenant: str,
                 clock: Callable[[], datetime], notify: Callable[[ClosedSession, datetime], object] | None) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self._directory = directory
        self._secret = secret
        self._tenant = tenant
        self._notify = notify
        self.provider = Lazy(self._make_provider)
        """The IdentityProvider, made on first use (None when the configuration has no idp section)."""

    def _make_provider(self) -> IdentityProvider | None:
        settings = parse_idp(self.config.idp, where="configuration", base_url=self.config.base_url)
        if settings is None:
            return None
        return IdentityProvider(settings, engine=self.engine, directory=self._directory, secret=self._secret,
                                lifetimes=self.config.lifetimes, clock=self.clock, tenant=self._tenant,
                                notify=self._notify)

    def handle(self, request: Request) -> Response:
        """Entry point for /idp/* (mounted by app.py)."""
        try:
            idp = self.provider()
        except ConfigError as exc:
            log.error("SAML IdP unavailable: %s", exc)
            return _page("Service indisponible", "L'accès aux ressources en ligne est mal configuré. Les "
                         "administrateurs en ont été avertis.", status=500)
        if idp is None:
            raise NotFound("the SAML identity provider is not configured")
        path = request.path.rstrip("/")
        route: _Route | None
        if path.startswith("/idp/launch/") and "/" not in path.removeprefix("/idp/launch/"):
            route = (("GET",), _launch)
        else:
            route = _ROUTES.get(path)
        if route is None:
            raise NotFound()
        methods, fn = route
        if request.method not in methods:
            raise MethodNotAllowed(list(methods))
        try:
            return fn(request, idp, self)
        except Refused as exc:
            incident = secrets.token_hex(4)
            log.warning("SAML IdP refused %s %s: %s (%s) [incident %s]", request.method, path, exc.reason,
                        exc.detail, incident)
            return _refusal_page(exc, incident)
        except SecretChanged as exc:
            incident = secrets.token_hex(4)
            log.error("SAML IdP answers nothing: %s [incident %s]", exc, incident)
            return _page("Service indisponible", "L'accès aux ressources en ligne est suspendu le temps d'une "
                         f"vérification par les administrateurs. Référence de l'incident : {incident}.", status=503)


def _metadata(request: Request, idp: IdentityProvider, side: IdpHttp) -> Response:
    return Response(idp.metadata(), content_type="application/samlmetadata+xml",
                    headers={"Cache-Control": "public, max-age=3600"})


def _message(request: Request, side: IdpHttp) -> dict[str, Any]:
    """A platform's SAML message as `receive` and `receive_logout` take it: by binding, with the session."""
    sid = session_id(request, side.config)
    if request.method == "POST":
        request.max_content_length = MAX_REQUEST_BODY
        return {"binding": BINDING_POST, "params": request.form.to_dict(), "raw_query": b"", "sid": sid}
    return {"binding": BINDING_REDIRECT, "params": request.args.to_dict(), "raw_query": request.query_string,
            "sid": sid}


def _sso(request: Request, idp: IdentityProvider, side: IdpHttp) -> Response:
    return _outcome(idp.receive(**_message(request, side)))


def _continue(request: Request, idp: IdentityProvider, side: IdpHttp) -> Response:
    return _outcome(idp.resume(request.args.get("request"), sid=session_id(request, side.config)))


def _slo(request: Request, idp: IdentityProvider, side: IdpHttp) -> Response:
    return _logged_out(idp.receive_logout(**_message(request, side)), side)


def _slo_continue(request: Request, idp: IdentityProvider, side: IdpHttp) -> Response:
    return _logged_out(idp.resume_logout(request.args.get("request"), sid=session_id(request, side.config)), side)


def _launch(request: Request, idp: IdentityProvider, side: IdpHttp) -> Response:
    platform_id = request.path.rstrip("/").removeprefix("/idp/launch/")
    return _outcome(idp.launch(platform_id, relay_state=request.args.get("RelayState"),
                               sid=session_id(request, side.config)))


_ROUTES: dict[str, _Route] = {
    "/idp/metadata": (("GET", "HEAD"), _metadata),
    "/idp/sso": (("GET", "POST"), _sso),
    CONTINUE_PATH: (("GET",), _continue),
    "/idp/slo": (("GET", "POST"), _slo),
    LOGOUT_CONTINUE_PATH: (("GET",), _slo_continue),
}


# -- responses ----------------------------------------------------------------------------------

def _outcome(outcome: Answer | NeedLogin | Resume) -> Response:
    if isinstance(outcome, Answer):
        return _send(outcome.outgoing, f"Connexion à {outcome.platform.label}")
    if isinstance(outcome, NeedLogin):
        return Response(status=302, headers={"Location": outcome.location})
    return Response(status=303, headers={"Location": outcome.location})


def _logged_out(outcome: LoggedOut | Resume, side: IdpHttp) -> Response:
    if isinstance(outcome, Resume):
        return Response(status=303, headers={"Location": outcome.location})
    if outcome.outgoing is not None:
        response = _send(outcome.outgoing, f"Déconnexion de {outcome.platform.label}")
    else:
        response = _page("Déconnecté", "Vous êtes déconnecté de l'ENT. Fermez le navigateur pour terminer.")
    if outcome.closed:
        clear_session_cookie(response, side.config)
    return response


def _send(outgoing: Outgoing, title: str) -> Response:
    """A redirect (HTTP-Redirect binding), or the auto-submitting form that POSTs a message (HTTP-POST binding)."""
    if outgoing.form is None:
        return Response(status=302, headers={"Location": outgoing.url})
    nonce = secrets.token_urlsafe(16)
    fields = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in outgoing.form.items())
    target = urlsplit(outgoing.url)
    body = (f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
            f'<body><form method="post" action="{escape(outgoing.url)}">{fields}<noscript><p>{escape(title)}.</p>'
            f'<button type="submit">Continuer</button></noscript></form>'
            f'<script nonce="{nonce}">document.forms[0].submit()</script></body></html>')
    return Response(body, mimetype="text/html", headers={
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; "
                                   f"form-action {target.scheme}://{target.netloc}"})


def _refusal_page(exc: Refused, incident: str) -> Response:
    status = _STATUS.get(exc.reason, 400)
    ref = f" Référence de l'incident : {incident}."
    if exc.reason == "unknown-platform":
        return _page("Ressource inconnue", "Cette plateforme n'est pas enregistrée auprès de l'ENT : aucune "
                     "information ne lui a été envoyée." + ref, status=status, detail=exc.detail)
    if exc.reason == "idp-initiated-refused":
        return _page("Accès direct impossible", "Cette plateforme ne s'ouvre pas depuis l'ENT : allez sur son site "
                     "et choisissez la connexion par l'ENT." + ref, status=status)
    if exc.reason in ("request-expired", "no-session-after-login"):
        return _page("Connexion expirée", "La demande de connexion a expiré ou la session de l'ENT n'a pas pu être "
                     "ouverte (le navigateur bloque-t-il les cookies de l'ENT ?). Recommencez depuis la plateforme."
                     + ref, status=status, detail=exc.detail)
    return _page("Demande refusée", "La demande de connexion de la plateforme n'a pas pu être vérifiée ; aucune "
                 "information ne lui a été envoyée. Si le problème persiste, transmettez la référence à "
                 "l'assistance." + ref, status=status, detail=exc.detail)


def _page(title: str, message: str, *, status: int = 200, detail: str | None = None) -> Response:
    extra = f"<p><small>{escape(detail)}</small></p>" if detail else ""
    body = (f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>{escape(title)}</title></head>'
            f"<body><h1>{escape(title)}</h1><p>{escape(message)}</p>{extra}</body></html>")
    return Response(body, status=status, mimetype="text/html", headers={
        "X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'none'"})
