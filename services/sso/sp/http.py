"""The SAML SP's HTTP side, mounted by app.py for every path under /saml/: it only translates (flows.py acts).

/saml/metadata   GET   our SP metadata (signed)
/saml/login      GET   `next` (a local /cas/ path), `idp`, `force_authn`: a signed AuthnRequest to the IdP
                       (a page to pick the IdP when several are configured and none is named)
/saml/acs        POST  the IdP's Response (HTTP-POST binding): a session and a redirect to `next`,
                       the account choice form, or a page saying why not
/saml/choose     POST  the account choice (bound to this browser, CSRF-proof)
/saml/logout     GET/POST  SP-initiated single logout (POST from our own form: CSRF-checked); `service`: a
                       registered CAS service to land on when the IdP gives no FrEduUrlRetour
/saml/slo        GET/POST  the IdP's LogoutRequest (IdP-initiated logout) or LogoutResponse

A small cookie (`<cookie name>_saml`, random, HttpOnly) binds a login to the
browser that started it, so a response or a choice cannot be replayed into
another browser (login CSRF). It is `SameSite=None` (with `Secure`) because
the IdP POSTs the response to us from its own site.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from html import escape
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Engine
from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.wrappers import Request, Response

from ..config import ConfigError, SsoConfig
from ..cookies import clear_session_cookie, session_id, set_session_cookie
from ..directory_port import DirectoryPort
from ..lazy import Lazy
from ..pages import page, redirect
from ..rules.redirects import safe_next
from ..rules.service_registry import ServiceRegistry, safe_url
from ..saml.bindings import Outgoing
from ..saml.xml import Refused
from ..sessions import ClosedSession, digest, get_session
from .config import parse_saml
from .flows import (
    CHOICE_LIFETIME,
    ChoiceNeeded,
    LoggedIn,
    LoginRefused,
    LogoutAnswered,
    LogoutFinished,
    ServiceProvider,
)

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024  # the largest SAML message we accept is 512 KB, base64 makes it 683 KB


class SpHttp:
    """The /saml/ side of one SSO instance: its ServiceProvider (made on first use) behind the routes below."""

    def __init__(self, *, engine: Engine, config: SsoConfig, registry: ServiceRegistry, directory: DirectoryPort,
                 tenant: str, clock: Callable[[], datetime],
                 notify: Callable[[ClosedSession, datetime], object] | None,
                 uai_of: Callable[[str], str | None] | None = None) -> None:
        self.engine = engine
        self._uai_of = uai_of  # a structure's UAI (the application's cache), for the sessions' usage facts
        self.config = config
        self.registry = registry
        self.clock = clock
        self._directory = directory
        self._tenant = tenant
        self._notify = notify
        self.provider = Lazy(self._make_provider)
        """The ServiceProvider, made on first use (None when the configuration has no saml section)."""

    def _make_provider(self) -> ServiceProvider | None:
        settings = parse_saml(self.config.saml, where="configuration", base_url=self.config.base_url)
        if settings is None:
            return None
        sp = ServiceProvider(settings, engine=self.engine, directory=self._directory, tenant=self._tenant,
                             lifetimes=self.config.lifetimes, clock=self.clock, notify=self._notify,
                             uai_of=self._uai_of)
        sp.load_idp_metadata()
        return sp

    def handle(self, request: Request) -> Response:
        """Entry point for /saml/* (mounted by app.py)."""
        try:
            sp = self.provider()
        except ConfigError as exc:
            log.error("SAML login unavailable: %s", exc)
            return page("Connexion indisponible", "La connexion par les fournisseurs d'identité nationaux est mal "
                        "configurée. Les administrateurs en ont été avertis.", status=500)
        if sp is None:
            raise NotFound("SAML login is not configured")
        sp.refresh_due_metadata()
        route = _ROUTES.get(request.path.rstrip("/"))
        if route is None:
            raise NotFound()
        methods, fn = route
        if request.method not in methods:
            raise MethodNotAllowed(list(methods))
        request.max_content_length = MAX_BODY  # a bigger POST is refused (413) before it is read
        return fn(request, sp, self)


# -- metadata and login ------------------------------------------------------------------------

def _metadata(request: Request, sp: ServiceProvider, side: SpHttp) -> Response:
    return Response(sp.metadata(), content_type="application/samlmetadata+xml",
                    headers={"Cache-Control": "public, max-age=3600"})


def _login(request: Request, sp: ServiceProvider, side: SpHttp) -> Response:
    next_path = safe_next(request.args.get("next"))
    force = (request.args.get("force_authn") or "").lower() in ("true", "1")
    if not force:
        with side.engine.connect() as conn:
            if get_session(conn, session_id(request, side.config), side.clock(), lifetimes=side.config.lifetimes,
                           touch=False) is not None:
                return redirect(next_path)
    wanted = request.args.get("idp")
    idps = sp.settings.idps
    idp = sp.settings.idp(wanted) if wanted else (idps[0] if len(idps) == 1 else None)
    if idp is None:
        if wanted:
            log.warning("SAML login: unknown IdP %r asked for", wanted[:64])
        extra = {"force_authn": "true"} if force else {}
        links = "".join(f'<li><a href="/saml/login?{escape(urlencode({"idp": i.id, "next": next_path, **extra}))}">'
                        f"{escape(i.label)}</a></li>" for i in idps)
        return page("Se connecter", "Choisissez comment vous connecter :", extra=f"<ul>{links}</ul>",
                     status=404 if wanted else 200)
    browser = request.cookies.get(_browser_cookie(side)) or secrets.token_urlsafe(32)
    try:
        outgoing = sp.start_login(idp, next_path=next_path, force_authn=force, browser=browser)
    except Refused as exc:
        incident = secrets.token_hex(4)
        log.error("SAML login through %s impossible: %s (%s) [incident %s]", idp.id, exc.reason, exc.detail, incident)
        return page("Connexion indisponible", f"{idp.label} est momentanément indisponible. Réessayez dans quelques "
                     f"minutes. Référence de l'incident : {incident}.", status=503)
    response = _send(outgoing)
    _set_browser_cookie(response, browser, side, max_age=sp.settings.request_lifetime)
    return response


def _acs(request: Request, sp: ServiceProvider, side: SpHttp) -> Response:
    browser = request.cookies.get(_browser_cookie(side))
    outcome = sp.finish_login(request.form.get("SAMLResponse"), browser)
    response = _login_outcome(outcome, side)
    if isinstance(outcome, ChoiceNeeded) and browser:  # the choice is bound to this cookie: keep it as long
        # as the choice (a choice is only ever offered to a browser that has the cookie)
        _set_browser_cookie(response, browser, side, max_age=int(CHOICE_LIFETIME.total_seconds()))
    return response


def _choose(request: Request, sp: ServiceProvider, side: SpHttp) -> Response:
    if not _same_origin(request, side):
        log.warning("SAML account choice refused: posted from another site (%s)", request.headers.get("Origin"))
        return page("Requête refusée", "Ce formulaire doit être envoyé depuis l'ENT.", status=403)
    outcome = sp.choose(request.form.get("token"), request.cookies.get(_browser_cookie(side)),
                        request.form.get("account"))
    return _login_outcome(outcome, side)


def _login_outcome(outcome: LoggedIn | ChoiceNeeded | LoginRefused, side: SpHttp) -> Response:
    if isinstance(outcome, LoggedIn):
        response = redirect(outcome.next)
        set_session_cookie(response, outcome.session.id, side.config)
        return response
    if isinstance(outcome, ChoiceNeeded):
        options = "".join(
            f'<li><label><input type="radio" name="account" value="{escape(c.jointure)}" required> '
            f"{escape(c.label)}</label></li>" for c in outcome.candidates)
        form = (f'<form method="post" action="/saml/choose"><input type="hidden" name="token" '
                f'value="{escape(outcome.token)}"><ul>{options}</ul><button type="submit">Continuer</button></form>')
        return page("Choisissez votre compte", f"Votre identité {outcome.idp_label} correspond à plusieurs comptes "
                     "de l'ENT. Choisissez celui que vous voulez utiliser :", extra=form)
    return _refusal_page(outcome)


def _refusal_page(outcome: LoginRefused) -> Response:
    ref = f" Référence de l'incident : {outcome.incident}."
    if outcome.reason == "no-account":
        who = outcome.idp.kind if outcome.idp else "educonnect"
        advice = ("Aucun compte de l'ENT ne correspond à votre identité. Élèves et parents : demandez au secrétariat "
                  "de votre établissement de vérifier que votre compte ÉduConnect et votre fiche dans l'établissement "
                  "sont à jour (nom, prénom, établissement)." if who == "educonnect" else
                  "Aucun compte de l'ENT ne correspond à votre adresse académique. Demandez à votre établissement "
                  "de vérifier que votre adresse est bien connue de l'annuaire académique.")
        return page("Compte introuvable", advice + ref, status=403)
    if outcome.reason == "idp-unavailable":
        label = outcome.idp.label if outcome.idp else "Le fournisseur d'identité"
        return page("Connexion indisponible", f"{label} est momentanément indisponible pour l'ENT. Réessayez dans "
                     "quelques minutes." + ref, status=503)
    if outcome.reason == "idp-status":
        return page("Connexion interrompue", "La connexion n'a pas abouti chez le fournisseur d'identité (annulée "
                     "ou refusée). Vous pouvez réessayer." + ref, status=401,
                     extra='<p><a href="/cas/login">Réessayer</a></p>')
    if outcome.reason in ("request-expired", "browser-mismatch", "choice-expired", "already-answered", "replay",
                          "unknown-request", "unsolicited"):
        return page("Connexion expirée", "Cette connexion a expiré ou a déjà été utilisée. Recommencez depuis la "
                     "page de l'application ; si vous utilisez plusieurs navigateurs ou bloquez les cookies, "
                     "restez dans le même navigateur et autorisez les cookies de l'ENT." + ref, status=400,
                     extra='<p><a href="/cas/login">Se connecter</a></p>')
    return page("Connexion refusée", "La réponse du fournisseur d'identité n'a pas pu être vérifiée ; la connexion "
                 "est refusée par sécurité. Réessayez ; si le problème persiste, contactez l'assistance en donnant "
                 "la référence." + ref, status=400)


# -- logout ------------------------------------------------------------------------------------

def _logout(request: Request, sp: ServiceProvider, side: SpHttp) -> Response:
    sid = session_id(request, side.config)
    if request.method == "POST":
        with side.engine.connect() as conn:
            session = get_session(conn, sid, side.clock(), lifetimes=side.config.lifetimes, touch=False)
        if session is None or not session.check_csrf(request.form.get("csrf_token")):
            log.warning("SAML logout form refused: missing or wrong CSRF token")
            return page("Requête refusée", "Le formulaire a expiré ; rechargez la page.", status=403)
    service = request.args.get("service")  # a CAS app's /cas/logout?service=… passes through here
    if service and side.registry.find(service) is None:
        log.warning("SAML logout: not returning to %s, not in the CAS registry", safe_url(service))
        service = None
    started = sp.start_logout(sid, fallback_url=service or None)
    if started.outgoing is not None:
        response = _send(started.outgoing)
    elif started.return_url:
        response = redirect(started.return_url)
    else:
        response = _logged_out_page(complete=True)
    clear_session_cookie(response, side.config)
    return response


def _slo(request: Request, sp: ServiceProvider, side: SpHttp) -> Response:
    try:
        outcome = sp.receive_logout(args=request.args.to_dict(), form=request.form.to_dict(), method=request.method,
                                    raw_query=request.query_string)
    except Refused as exc:
        incident = secrets.token_hex(4)
        log.warning("SAML logout message refused: %s (%s) [incident %s]", exc.reason, exc.detail, incident)
        return page("Déconnexion refusée", "Ce message de déconnexion n'a pas pu être vérifié. Fermez votre "
                     f"navigateur pour terminer vos sessions. Référence de l'incident : {incident}.", status=400)
    if isinstance(outcome, LogoutAnswered):
        response = _send(outcome.outgoing)
        sid = session_id(request, side.config)
        if sid and digest(sid) in outcome.closed_keys:
            clear_session_cookie(response, side.config)
        return response
    assert isinstance(outcome, LogoutFinished)
    if outcome.return_url and outcome.complete:
        return redirect(outcome.return_url)
    return _logged_out_page(complete=outcome.complete, return_url=outcome.return_url)


def _logged_out_page(*, complete: bool, return_url: str | None = None) -> Response:
    message = ("Vous êtes déconnecté de l'ENT et de votre fournisseur d'identité." if complete else
               "Vous êtes déconnecté de l'ENT, mais le fournisseur d'identité n'a pas confirmé votre déconnexion : "
               "fermez le navigateur pour terminer.")
    extra = f'<p><a href="{escape(return_url)}">Continuer</a></p>' if return_url else ""
    return page("Déconnecté", message, extra=extra)


_ROUTES = {
    "/saml/metadata": (("GET", "HEAD"), _metadata),
    "/saml/login": (("GET", "HEAD"), _login),
    "/saml/acs": (("POST",), _acs),
    "/saml/choose": (("POST",), _choose),
    "/saml/logout": (("GET", "POST"), _logout),
    "/saml/slo": (("GET", "POST"), _slo),
}


# -- HTTP helpers ------------------------------------------------------------------------------

def _browser_cookie(side: SpHttp) -> str:
    return f"{side.config.cookie.name}_saml"


def _set_browser_cookie(response: Response, value: str, side: SpHttp, *, max_age: int) -> None:
    secure = side.config.cookie.secure
    response.set_cookie(_browser_cookie(side), value, max_age=max_age, path="/saml/", domain=side.config.cookie.domain,
                        secure=secure, httponly=True, samesite="None" if secure else None)


def _same_origin(request: Request, side: SpHttp) -> bool:
    """A POST from our own pages: Origin (when the browser sends it) is our base URL's."""
    origin = request.headers.get("Origin")
    if origin is None or origin == "null":
        return origin is None
    ours = urlsplit(side.config.base_url)
    theirs = urlsplit(origin)
    return (theirs.scheme, theirs.netloc) == (ours.scheme, ours.netloc)


def _send(outgoing: Outgoing) -> Response:
    if outgoing.form is None:
        return redirect(outgoing.url)
    nonce = secrets.token_urlsafe(16)
    fields = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">' for k, v in outgoing.form.items())
    target = urlsplit(outgoing.url)
    body = (f'<!doctype html><html lang="fr"><head><meta charset="utf-8"><title>Redirection</title></head>'
            f'<body><form method="post" action="{escape(outgoing.url)}">{fields}'
            f'<noscript><button type="submit">Continuer</button></noscript></form>'
            f'<script nonce="{nonce}">document.forms[0].submit()</script></body></html>')
    return Response(body, mimetype="text/html", headers={
        "X-Frame-Options": "DENY",
        "Content-Security-Policy": f"default-src 'none'; script-src 'nonce-{nonce}'; "
                                   f"form-action {target.scheme}://{target.netloc}"})
