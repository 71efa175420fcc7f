"""The SSO service's HTTP face (werkzeug WSGI), in one place: CAS under /cas/, SAML under /saml/.

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
outside the registry gets a 403 page, never a redirect. The protocol is in
cas.py, sessions in sessions.py; this module reads requests, runs each use case
in one database transaction, and writes responses. Outgoing calls (proxy
callbacks, back-channel logout) happen after the transaction commits.

The SAML identity provider towards resource platforms (saml_idp.py) is mounted the same way
for every path under /idp/.

The SAML service provider plugs in as `saml_handler(request, path, app) -> Response`
for every path under /saml/ (see saml_sp.py): after a successful login it opens
the session (`sessions.open_session(..., lifetimes=app.config.lifetimes, tenant=app.tenant)`),
sets the cookie (`cookies.set_session_cookie(response, session.id, app.config)`) and
redirects to `next`, which it must accept only when it is a local path starting with `/cas/`.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime
from html import escape
from typing import Generic, TypeVar
from urllib.parse import urlencode, urlsplit

from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.serving import WSGIRequestHandler
from werkzeug.wrappers import Request, Response

from relais.db import writer
from relais.ops.health import database_check
from relais.ops.server import PROBES, OpsApp

from . import cas, http_client
from .attributes import AttributeSource, release
from .config import SsoConfig
from .cookies import clear_session_cookie, session_id
from .registry import ServiceRegistry
from .saml_store import session_link
from .sessions import ClosedSession, Session, close_session, get_session

log = logging.getLogger(__name__)

T = TypeVar("T")

SamlHandler = Callable[[Request, str, "SsoApp"], Response]  # also the SAML IdP's handler for /idp/*


class PerApp(Generic[T]):
    """One object per `SsoApp`, made by `build(app)` when a first request needs it, and gone with its app.

    The SAML faces keep their provider this way: making one reads the
    configuration (and metadata), so it happens once, under a lock. A `build`
    that returns None (that part is not configured) keeps nothing, and is
    asked again next time.
    """

    def __init__(self, build: Callable[[SsoApp], T | None]) -> None:
        self._build = build
        self._made: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def __call__(self, app: SsoApp) -> T | None:
        made = self._made.get(app)
        if made is not None:
            return made
        with self._lock:
            made = self._made.get(app)
            if made is None:
                made = self._build(app)
                if made is not None:
                    self._made[app] = made
        return made

_VALIDATE = {  # endpoint -> (accept proxy tickets, release attributes)
    "serviceValidate": (False, False), "proxyValidate": (True, False),
    "p3_serviceValidate": (False, True), "p3_proxyValidate": (True, True),
}


class SsoApp:
    """The WSGI application. Several instances over one database share sessions and tickets."""

    def __init__(self, engine: Engine, config: SsoConfig, *, directory, tenant: str, secret: bytes,
                 saml_handler: SamlHandler | None = None, clock: Callable[[], datetime] | None = None,
                 http_timeout: float = 5.0, idp_handler: SamlHandler | None = None) -> None:
        if len(secret) < 32:
            raise ValueError("the deployment secret must be at least 32 bytes")
        self.engine = engine
        self.config = config
        self.registry = ServiceRegistry(config.services)
        self.directory = directory
        self.attributes = AttributeSource(directory, uai_ttl=300)  # structures' UAIs kept 5 minutes
        self.tenant = tenant
        self._secret = secret
        self.saml_handler = saml_handler
        self.idp_handler = idp_handler
        self.clock = clock or (lambda: datetime.now(UTC))
        self.http_timeout = http_timeout
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sso-slo")
        # /healthz and /readyz for load balancers in front of this port; /metrics stays on the ops port.
        self.ops = OpsApp("sso", {"database": database_check(engine.url.render_as_string(hide_password=False))})
        self.url_map = Map([
            Rule("/cas/login", endpoint="login"),
            Rule("/cas/logout", endpoint="logout"),
            Rule("/cas/serviceValidate", endpoint="serviceValidate"),
            Rule("/cas/proxyValidate", endpoint="proxyValidate"),
            Rule("/cas/p3/serviceValidate", endpoint="p3_serviceValidate"),
            Rule("/cas/p3/proxyValidate", endpoint="p3_proxyValidate"),
            Rule("/cas/proxy", endpoint="proxy"),
        ], strict_slashes=False)

    # -- WSGI -------------------------------------------------------------------------

    def __call__(self, environ, start_response):
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
            if self.saml_handler is None:
                raise NotFound("SAML login is not configured")
            return self.saml_handler(request, request.path, self)
        if request.path.startswith("/idp/"):
            if self.idp_handler is None:
                raise NotFound("the SAML identity provider is not configured")
            return self.idp_handler(request, request.path, self)
        endpoint, _ = self.url_map.bind_to_environ(request.environ).match()
        if endpoint in _VALIDATE:
            return self.validate(request, *_VALIDATE[endpoint])
        return getattr(self, endpoint)(request)

    @property
    def secret(self) -> bytes:
        """The deployment secret (CAS renew stamps, the SAML IdP's pseudonymous NameIDs). Never log it."""
        return self._secret

    def close(self) -> None:
        self._pool.shutdown(wait=True)

    # -- /cas/login -------------------------------------------------------------------

    def login(self, request: Request) -> Response:
        if request.method not in ("GET", "HEAD"):
            raise MethodNotAllowed(["GET", "HEAD"])
        service = request.args.get("service")
        renew = _true(request.args.get("renew"))
        gateway = _true(request.args.get("gateway")) and not renew  # renew wins (CAS 3.0, 2.1.1)
        if service is not None and self.registry.find(service) is None:
            log.warning("CAS login refused: service %s is not in the registry", cas.safe_url(service))
            return page("Service inconnu", "Cette application n'est pas autorisée à utiliser l'authentification "
                         "de l'ENT. Aucune redirection n'a été faite.", status=403)
        now = self.clock()
        with writer(self.engine).begin() as conn:
            session = get_session(conn, session_id(request, self.config), now, lifetimes=self.config.lifetimes)
            fresh = session is not None and self._fresh_since(request.args.get("auth_after"), session)
            if session is not None and (fresh or not renew):
                if service is None:
                    return self._logged_in_page(session)
                ticket = cas.issue_service_ticket(conn, session, service, renewed=fresh, now=now,
                                                  lifetimes=self.config.lifetimes)
                return _redirect(_with_params(service, {"ticket": ticket}))
        if gateway and service is not None:
            return _redirect(service)
        params = {"service": service} if service is not None else {}
        if renew:
            params["renew"] = "true"
            params["auth_after"] = self._auth_after(now)
        next_path = "/cas/login" + (f"?{urlencode(params)}" if params else "")
        saml = {"next": next_path, **({"force_authn": "true"} if renew else {})}
        return _redirect(f"/saml/login?{urlencode(saml)}")

    def _auth_after(self, now: datetime) -> str:
        """A signed moment: a session authenticated after it satisfies renew=true."""
        stamp = str(int(now.timestamp() * 1000))  # milliseconds: a login in the same second is not "after"
        return f"{stamp}.{self._sign(stamp)}"

    def _fresh_since(self, token: str | None, session: Session) -> bool:
        if not token or "." not in token:
            return False
        stamp, mac = token.split(".", 1)
        if not stamp.isdigit() or not hmac.compare_digest(mac, self._sign(stamp)):
            log.warning("CAS login: renew proof refused (bad signature)")
            return False
        return session.created_at.timestamp() * 1000 >= int(stamp)

    def _sign(self, value: str) -> str:
        return hmac.new(self._secret, b"cas-renew:" + value.encode(), hashlib.sha256).hexdigest()[:32]

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
                registered = self.registry.find(args.get("service") or "")
                if registered is not None:
                    try:
                        cas.check_pgt_url(pgt_url, registered, self.registry,
                                          allow_http=self.config.allow_http_callbacks)
                    except cas.CasError as exc:
                        log.warning("CAS validation refused: %s (%s)", exc.code, exc.reason)
                        raise
        except cas.CasError as error:
            return _validation_response(None, error, as_json, with_attributes)
        with writer(self.engine).begin() as conn:
            try:
                validation, registered = cas.validate(
                    conn, args.get("ticket"), args.get("service"), registry=self.registry, now=now,
                    accept_proxy_tickets=accept_proxy_tickets, renew=_true(args.get("renew")))
            except cas.CasError as error:
                refused = error  # committed below: a refused ticket stays consumed
            else:
                refused = None
        if refused is not None:
            return _validation_response(None, refused, as_json, with_attributes)
        if with_attributes and registered.attributes:
            attributes = self.attributes.for_person(validation.user) or {}
            validation = replace(validation, attributes=release(attributes, registered.attributes))
        if pgt_url:
            pgt, iou = cas.new_pgt()
            if http_client.get_ok(pgt_url, {"pgtId": pgt, "pgtIou": iou}, timeout=self.http_timeout):
                with writer(self.engine).begin() as conn:
                    cas.store_pgt(conn, pgt, pgt_url, validation, now=now, lifetimes=self.config.lifetimes)
                validation = replace(validation, pgt_iou=iou)
            else:
                log.warning("PGT not issued: the proxy callback of service %s did not answer 200", registered.id)
        return _validation_response(validation, None, as_json, with_attributes)

    # -- /cas/proxy -------------------------------------------------------------------

    def proxy(self, request: Request) -> Response:
        as_json = (request.args.get("format") or "").upper() == "JSON"
        ticket, error = None, None
        try:
            with writer(self.engine).begin() as conn:
                ticket = cas.issue_proxy_ticket(conn, request.args.get("pgt"), request.args.get("targetService"),
                                                registry=self.registry, now=self.clock(),
                                                lifetimes=self.config.lifetimes)
        except cas.CasError as exc:
            error = exc
        if as_json:
            return Response(cas.render_proxy_json(ticket, error), mimetype="application/json")
        return Response(cas.render_proxy_xml(ticket, error), content_type="application/xml; charset=utf-8")

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
            federated = (sid is not None and self.saml_handler is not None and bool(self.config.saml)
                         and session_link(conn, sid) is not None)
            closed = close_session(conn, sid, now, tenant=self.tenant, reason="user")
        if closed is not None:
            self.notify_services(closed, now)
        service = request.args.get("service") or request.args.get("url")
        if service and self.registry.find(service) is None:
            log.warning("CAS logout: not redirecting to %s, not in the registry", cas.safe_url(service))
            service = None
        if federated:
            # The session came from a national IdP: ours is over, now the IdP's (the SP's single logout,
            # which finds the IdP's session through the cookie, clears it, and ends at FrEduUrlRetour).
            return _redirect("/saml/logout" + (f"?{urlencode({'service': service})}" if service else ""))
        if service:
            response = _redirect(service)
        else:
            response = page("Déconnecté", "Vous êtes déconnecté de l'ENT. Fermez le navigateur pour terminer.")
        clear_session_cookie(response, self.config)
        return response

    def notify_services(self, closed: ClosedSession, now: datetime) -> dict[str, int | None]:
        """Back-channel single logout: POST a SAML LogoutRequest to each service that validated a ticket.

        Calls run in parallel, each with a short timeout; returns "id URL" -> HTTP status (None: unreachable).
        """
        jobs = {}
        for service, ticket in closed.services:
            registered = self.registry.find(service)
            if registered is None or not registered.logout:
                continue
            jobs[f"{registered.id} {cas.safe_url(service)}"] = self._pool.submit(
                http_client.post_form, service, {"logoutRequest": cas.logout_request(ticket, now)},
                timeout=self.http_timeout)
        results = {name: job.result() for name, job in jobs.items()}
        for name, status in results.items():
            log.info("back-channel logout of session %s to %s: %s", closed.ref, name, status)
        return results


class QuietRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, logging paths without their query string (tickets travel there)."""

    def log_request(self, code="-", size="-"):
        self.log("info", '"%s %s" %s', self.command, self.path.split("?", 1)[0], getattr(code, "value", code))


def _validation_response(validation, error, as_json: bool, with_attributes: bool) -> Response:
    if as_json:
        return Response(cas.render_json(validation, error, with_attributes=with_attributes),
                        mimetype="application/json")
    return Response(cas.render_xml(validation, error, with_attributes=with_attributes),
                    content_type="application/xml; charset=utf-8")


def _true(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1", "yes")


def _with_params(url: str, params: dict[str, str]) -> str:
    return url + ("&" if urlsplit(url).query else "?") + urlencode(params)


def _redirect(location: str) -> Response:
    return Response(status=302, headers={"Location": location})


def page(title: str, message: str, *, status: int = 200, extra: str = "") -> Response:
    """A plain French page (the SSO's messages to people), framing and scripts refused; `extra` is HTML."""
    body = (f"<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title></head>"
            f"<body><h1>{escape(title)}</h1><p>{escape(message)}</p>{extra}</body></html>")
    return Response(body, status=status, mimetype="text/html", headers={
        "X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'none'; form-action 'self'"})


def make_app(engine: Engine, config: SsoConfig, *, directory, tenant: str, secret: bytes,
             saml_handler: SamlHandler | None = None) -> SsoApp:
    """The application, with the SAML SP mounted when saml_sp.py provides `handle`, and the SAML IdP."""
    if saml_handler is None:
        try:
            from . import saml_sp
        except ImportError:
            saml_sp = None
        saml_handler = getattr(saml_sp, "handle", None)
    from . import saml_idp

    return SsoApp(engine, config, directory=directory, tenant=tenant, secret=secret, saml_handler=saml_handler,
                  idp_handler=saml_idp.handle)
