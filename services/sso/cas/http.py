"""The CAS server's HTTP side, mounted by app.py for every path under /cas/: it reads requests, runs each
use case in one database transaction (tickets.py), and writes responses (responses.py).

/cas/login               with a live SSO session: an ST and a redirect to the registered service;
                         without: 302 to `/saml/login?next=/cas/login?...` (`force_authn=true` with renew);
                         `gateway=true`: back to the service without a ticket; without `service`: a page
                         with a CSRF-protected logout form.
/cas/serviceValidate     CAS 2.0 (user only); /cas/proxyValidate also takes proxy tickets
/cas/p3/serviceValidate  CAS 3.0 (user + the attributes the service's policy releases); /cas/p3/proxyValidate
/cas/proxy               a PT from a PGT (`pgt`, `targetService`)
/cas/logout              ends the session, back-channel logout to each service that validated a ticket,
                         redirect to `service` only if registered (GET as CAS apps link to it; POST
                         from our own form, CSRF-checked); a session from a national IdP then goes
                         through /saml/logout, so the IdP ends its session too

Every validation endpoint answers XML, or JSON with `format=JSON`. A service
outside the registry gets a 403 page, never a redirect. Outgoing calls (proxy
callbacks, back-channel logout) happen after the transaction commits.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import replace
from datetime import datetime
from html import escape
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Engine
from werkzeug.exceptions import MethodNotAllowed
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from relais.db import writer

from ..attribute_source import AttributeSource
from ..config import SsoConfig
from ..connections import alone, writing
from ..cookies import clear_session_cookie, session_id
from ..pages import page, redirect
from ..rules.ent_attributes import release
from ..rules.renew_stamps import ForgedStamp, logged_in_after, renew_stamp
from ..rules.service_registry import ServiceRegistry, safe_url
from ..sessions import Session, close_session, get_session, touch_due, touch_session
from ..sp.store import session_link
from .back_channel_logout import BackChannelLogout
from .callbacks import get_ok
from .responses import render_json, render_proxy_json, render_proxy_xml, render_xml
from .tickets import (
    CasError,
    Validation,
    check_pgt_url,
    issue_proxy_ticket,
    issue_service_ticket,
    new_pgt,
    store_pgt,
    validate,
)

log = logging.getLogger(__name__)

_VALIDATE = {  # endpoint -> (accept proxy tickets, release attributes)
    "serviceValidate": (False, False), "proxyValidate": (True, False),
    "p3_serviceValidate": (False, True), "p3_proxyValidate": (True, True),
}


class CasHttp:
    """The /cas/ endpoints of one SSO instance (several instances over one database share sessions and tickets)."""

    def __init__(self, *, engine: Engine, config: SsoConfig, registry: ServiceRegistry, attributes: AttributeSource,
                 tenant: str, secret: bytes, clock: Callable[[], datetime], back_channel: BackChannelLogout,
                 http_timeout: float) -> None:
        self.engine = engine
        self.tenant = tenant
        self.config = config
        self.registry = registry
        self.attributes = attributes
        self._secret = secret
        self.clock = clock
        self.back_channel = back_channel
        self.http_timeout = http_timeout
        self.url_map = Map([
            Rule("/cas/login", endpoint="login"),
            Rule("/cas/logout", endpoint="logout"),
            Rule("/cas/serviceValidate", endpoint="serviceValidate"),
            Rule("/cas/proxyValidate", endpoint="proxyValidate"),
            Rule("/cas/p3/serviceValidate", endpoint="p3_serviceValidate"),
            Rule("/cas/p3/proxyValidate", endpoint="p3_proxyValidate"),
            Rule("/cas/proxy", endpoint="proxy"),
        ], strict_slashes=False)

    def handle(self, request: Request) -> Response:
        """Entry point for /cas/* (and any path no other side takes: a 404)."""
        endpoint, _ = self.url_map.bind_to_environ(request.environ).match()
        if endpoint in _VALIDATE:
            return self.validate(request, *_VALIDATE[endpoint])
        return getattr(self, endpoint)(request)

    # -- /cas/login -------------------------------------------------------------------

    def login(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(["GET", "HEAD"])
        service = request.args.get("service")
        renew = _true(request.args.get("renew"))
        gateway = _true(request.args.get("gateway")) and not renew  # renew wins (CAS 3.0, 2.1.1)
        if service is not None and self.registry.find(service) is None:
            log.warning("CAS login refused: service %s is not in the registry", safe_url(service))
            return page("Service inconnu", "Cette application n'est pas autorisée à utiliser l'authentification "
                         "de l'ENT. Aucune redirection n'a été faite.", status=403)
        now = self.clock()
        with writer(self.engine).connect() as conn:
            with alone(conn):  # the session read; then its use recorded (when due) and the ticket, together
                session = get_session(conn, session_id(request, self.config), now, lifetimes=self.config.lifetimes,
                                      touch=False)
            fresh = session is not None and self._fresh(request.args.get("auth_after"), session)
            if session is not None and (fresh or not renew):
                due = touch_due(session, now)
                with writing(conn, statements=due + (service is not None)):
                    if due:
                        touch_session(conn, session, now)
                    if service is None:
                        return self._logged_in_page(session)
                    ticket = issue_service_ticket(conn, session, service, renewed=fresh, now=now,
                                                  lifetimes=self.config.lifetimes)
                return redirect(_with_params(service, {"ticket": ticket}))
        if gateway and service is not None:
            return redirect(service)
        params = {"service": service} if service is not None else {}
        if renew:
            params["renew"] = "true"
            params["auth_after"] = renew_stamp(now, self._secret)
        next_path = "/cas/login" + (f"?{urlencode(params)}" if params else "")
        saml = {"next": next_path, **({"force_authn": "true"} if renew else {})}
        return redirect(f"/saml/login?{urlencode(saml)}")

    def _fresh(self, token: str | None, session: Session) -> bool:
        """Whether the session's login comes after the renew stamp the login went out with."""
        try:
            return logged_in_after(token, session.created_at, self._secret)
        except ForgedStamp:
            log.warning("CAS login: renew proof refused (bad signature)")
            return False

    def _logged_in_page(self, session: Session) -> Response:
        form = (f'<form method="post" action="/cas/logout"><input type="hidden" name="csrf_token" '
                f'value="{escape(session.csrf_token)}"><button type="submit">Se déconnecter</button></form>')
        return page("Connecté", f"Vous êtes connecté à l'ENT ({session.person_jointure}).", extra=form)

    # -- validation -------------------------------------------------------------------

    def validate(self, request: Request, accept_proxy_tickets: bool, with_attributes: bool) -> Response:
        args = request.args
        as_json = (args.get("format") or "").upper() == "JSON"
        now = self.clock()
        pgt_url = args.get("pgtUrl")
        try:
            if pgt_url:  # checked before the ticket is touched
                proxying = self.registry.find(args.get("service") or "")
                if proxying is not None:
                    try:
                        check_pgt_url(pgt_url, proxying, self.registry, allow_http=self.config.allow_http_callbacks)
                    except CasError as exc:
                        log.warning("CAS validation refused: %s (%s)", exc.code, exc.reason)
                        raise
        except CasError as error:
            return _validation_response(None, error, as_json, with_attributes)
        with writer(self.engine).begin() as conn:
            try:
                validation, registered = validate(
                    conn, args.get("ticket"), args.get("service"), registry=self.registry, now=now,
                    accept_proxy_tickets=accept_proxy_tickets, tenant=self.tenant, renew=_true(args.get("renew")))
            except CasError as error:
                refused: CasError | None = error  # committed below: a refused ticket stays consumed
            else:
                refused = None
        if refused is not None:
            return _validation_response(None, refused, as_json, with_attributes)
        if with_attributes and registered.attributes:
            attributes = self.attributes.for_person(validation.user) or {}
            validation = replace(validation, attributes=release(attributes, registered.attributes))
        if pgt_url:
            pgt, iou = new_pgt()
            if get_ok(pgt_url, {"pgtId": pgt, "pgtIou": iou}, timeout=self.http_timeout):
                with writer(self.engine).begin() as conn:
                    store_pgt(conn, pgt, pgt_url, validation, now=now, lifetimes=self.config.lifetimes)
                validation = replace(validation, pgt_iou=iou)
            else:
                log.warning("PGT not issued: the proxy callback of service %s did not answer 200", registered.id)
        return _validation_response(validation, None, as_json, with_attributes)

    # -- /cas/proxy -------------------------------------------------------------------

    def proxy(self, request: Request) -> Response:
        as_json = (request.args.get("format") or "").upper() == "JSON"
        ticket: str | None = None
        error: CasError | None = None
        try:
            with writer(self.engine).begin() as conn:
                ticket = issue_proxy_ticket(conn, request.args.get("pgt"), request.args.get("targetService"),
                                            registry=self.registry, now=self.clock(), lifetimes=self.config.lifetimes)
        except CasError as exc:
            error = exc
        if as_json:
            return Response(render_proxy_json(ticket, error), mimetype="application/json")
        return Response(render_proxy_xml(ticket, error), content_type="application/xml; charset=utf-8")

    # -- /cas/logout ------------------------------------------------------------------

    def logout(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD", "POST"):
            raise MethodNotAllowed(["GET", "POST"])
        sid = session_id(request, self.config)
        now = self.clock()
        with writer(self.engine).begin() as conn:
            if request.method == "POST":  # our own logout form: CSRF-checked
                session = get_session(conn, sid, now, lifetimes=self.config.lifetimes, touch=False)
                if session is None or not session.check_csrf(request.form.get("csrf_token")):
                    log.warning("CAS logout form refused: missing or wrong CSRF token")
                    return page("Requête refusée", "Le formulaire a expiré ; rechargez la page.", status=403)
            federated = sid is not None and bool(self.config.saml) and session_link(conn, sid) is not None
            closed = close_session(conn, sid, now, tenant=self.tenant, reason="user")
        if closed is not None:
            self.back_channel.notify(closed, now)
        service = request.args.get("service") or request.args.get("url")
        if service and self.registry.find(service) is None:
            log.warning("CAS logout: not redirecting to %s, not in the registry", safe_url(service))
            service = None
        if federated:
            # The session came from a national IdP: ours is over, now the IdP's (the SP's single logout,
            # which finds the IdP's session through the cookie, clears it, and ends at FrEduUrlRetour).
            return redirect("/saml/logout" + (f"?{urlencode({'service': service})}" if service else ""))
        if service:
            response = redirect(service)
        else:
            response = page("Déconnecté", "Vous êtes déconnecté de l'ENT. Fermez le navigateur pour terminer.")
        clear_session_cookie(response, self.config)
        return response


def _validation_response(validation: Validation | None, error: CasError | None, as_json: bool,
                         with_attributes: bool) -> Response:
    if as_json:
        return Response(render_json(validation, error, with_attributes=with_attributes),
                        mimetype="application/json")
    return Response(render_xml(validation, error, with_attributes=with_attributes),
                    content_type="application/xml; charset=utf-8")


def _true(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


def _with_params(url: str, params: dict[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)
