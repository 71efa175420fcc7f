"""The console's web pages: werkzeug routing, Jinja2 templates, and the security every page gets.

| path | what | who |
|---|---|---|
| `GET /` | home: sign-in link, or who you are and what you may open | anyone |
| `GET /login`, `GET /callback/` | sign-in through Relais's SSO (CAS 3, `p3/serviceValidate`) | anyone |
| `POST /callback/` | the SSO's back-channel logout: the sessions opened with the ticket it names end | the SSO |
| `POST /logout` | sign out here and at the SSO | signed in |
| `GET /health` | what `relais status` knows (`?live=1`: refreshed every 30 s) | administrator |
| `GET /imports` | the directory's last import: files, counts, rejected records | administrator |
| `GET`/`POST /directory` | search by name, INE or jointure (POST: no name in URLs) | admin, manager, DPO |
| `GET /people/<ref>` | a person: schools, classes, relatives, resources and causes | same, in one's UAIs |
| `POST /people/<ref>/grant`, `/revoke` | a manual grant or revocation | resource manager of the UAI |
| `GET /resources` | the catalogue: licences held and seats per school (a manager: theirs) | admin, manager |
| `GET /rules`, `POST /rules/preview`, `/rules/save` | the rules: a change previewed, then saved | administrator |
| `GET /usage` (`?period=YYYY-MM&structure=UAI`) | usage: licences, active users, charts | admin, collectivité |
| `GET /usage/licences.svg`, `/usage/active-users.svg`, `/usage/usage.csv` | its charts; its CSV (logged) | same |
| `GET /sso` | the SSO: services, platforms, clients and what each receives; open sessions | administrator |
| `GET /vault` | contract end: transfers (failures: admin), the vault's access log (admin, DPO) | admin, coll., DPO |
| `GET /audit` | the audit log | administrator, DPO |
| `GET /language/<fr|en>` | the language of the pages (a cookie) | anyone |
| `GET /healthz`, `/readyz` | probes (relais/ops) | |

Every answer carries a strict Content-Security-Policy (no script, no inline style, forms only to the
console and the SSO), `X-Frame-Options: DENY`, `Referrer-Policy: no-referrer`, `Cache-Control: no-store`.
Every form carries the session's CSRF token; a POST without it is refused (403) and logged. The session is
a sealed cookie (HttpOnly, SameSite=Lax, Secure unless configured off for local http) that ends after
`RELAIS_CONSOLE_SESSION_MINUTES` unused or `RELAIS_CONSOLE_SESSION_MAX_HOURS` after sign-in. URLs never
hold personal data: a person is `/people/<sealed reference>`, a search is POSTed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from babel.numbers import format_decimal, format_percent
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from relais.i18n import DEFAULT_LANGUAGE, Translator, languages, translator
from relais.ops.health import database_check
from relais.ops.server import OpsApp, mount

from ..handlers import desk as uc
from ..handlers.desk import Desk
from ..rules import roles
from ..rules.sealing import (
    PREVIEW,
    REFERENCE,
    SESSION,
    STATE,
    digest,
    new_token,
    same,
    seal,
    session_alive,
    unseal,
)
from ..settings import ConsoleSettings

log = logging.getLogger(__name__)

PACKAGE = Path(__file__).resolve().parent.parent
SESSION_COOKIE, STATE_COOKIE, LANG_COOKIE = "relais_console", "relais_console_state", "relais_console_lang"
STATE_TTL_S = 600
PREVIEW_TTL_S = 1800  # a preview vouches for its text this long
LIVE_S = 30  # the Health page's refresh, when asked for
ROLE_LABELS = {roles.ADMINISTRATOR: "Administrator", roles.RESOURCE_MANAGER: "Resource manager",
               roles.DPO: "Data-protection officer", roles.COLLECTIVITE: "Collectivité (read-only)"}

URLS = Map([
    Rule("/", endpoint="home"),
    Rule("/static/console.css", endpoint="css"),
    Rule("/language/<lang>", endpoint="language"),
    Rule("/login", endpoint="login"),
    Rule("/callback/", endpoint="callback", methods=["GET", "POST"]),
    Rule("/logout", endpoint="logout", methods=["POST"]),
    Rule("/health", endpoint="health"),
    Rule("/imports", endpoint="imports"),
    Rule("/directory", endpoint="directory", methods=["GET", "POST"]),
    Rule("/people/<ref>", endpoint="person"),
    Rule("/people/<ref>/<any(grant, revoke):action>", endpoint="change", methods=["POST"]),
    Rule("/resources", endpoint="resources"),
    Rule("/rules", endpoint="rules"),
    Rule("/rules/preview", endpoint="rules_preview", methods=["POST"]),
    Rule("/rules/save", endpoint="rules_save", methods=["POST"]),
    Rule("/usage", endpoint="usage"),
    Rule("/usage/licences.svg", endpoint="usage_chart", defaults={"chart": "licences"}),
    Rule("/usage/active-users.svg", endpoint="usage_chart", defaults={"chart": "active-users"}),
    Rule("/usage/usage.csv", endpoint="usage_csv"),
    Rule("/sso", endpoint="sso"),
    Rule("/vault", endpoint="vault"),
    Rule("/audit", endpoint="audit"),
])
# An SVG chart is an image of ours (matplotlib's, no script): its styles are inline attributes.
SVG_CSP = "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'"


class Page:
    """One request's context: its language, its session, and how to answer it."""

    def __init__(self, console: ConsoleApp, request: Request):
        self.console, self.request = console, request
        self.now = int(console.clock())
        self.lang = console.language_of(request)
        self._: Translator = translator(self.lang)
        self.session: dict[str, Any] | None = console.session_of(request, self.now)
        self.who = _identity(self.session) if self.session else None
        self.address = request.remote_addr

    def render(self, template: str, status: int = 200, **context: Any) -> Response:
        flash = self.session.pop("flash", None) if self.session else None
        body = self.console.templates.get_template(template).render(
            _=self._, lang=self.lang, who=self.who, csrf=self.session["csrf"] if self.session else "",
            may=lambda action: self.who is not None and roles.may(self.who, action), flash=flash,
            role_names={r: self._(label) for r, label in ROLE_LABELS.items()}, **context)
        return Response(body, status=status, mimetype="text/html")

    def ref(self, jointure: str) -> str:
        return seal(jointure, self.console.settings.secret, REFERENCE, self.now)

    def flash(self, kind: str, text: str) -> None:
        if self.session is not None:
            self.session["flash"] = [kind, text]


class ConsoleApp:
    """The console's WSGI application over `desk` (its use cases) and `settings`."""

    def __init__(self, desk: Desk, settings: ConsoleSettings, clock: Callable[[], float] = time.time):
        self.desk, self.settings, self.clock = desk, settings, clock
        self.templates = Environment(loader=FileSystemLoader(PACKAGE / "templates"),
                                     autoescape=select_autoescape(default=True), auto_reload=False)
        self.languages = languages()
        self.csp = ("default-src 'none'; style-src 'self'; img-src 'self'; "
                    f"form-action 'self' {settings.cas_origin}; frame-ancestors 'none'; base-uri 'none'")

    # -- sessions and languages ------------------------------------------------------------------

    def language_of(self, request: Request) -> str:
        chosen = request.cookies.get(LANG_COOKIE)
        if chosen in self.languages:
            return chosen
        return request.accept_languages.best_match(self.languages, default=DEFAULT_LANGUAGE) or DEFAULT_LANGUAGE

    def session_of(self, request: Request, now: int) -> dict[str, Any] | None:
        data = unseal(request.cookies.get(SESSION_COOKIE), self.settings.secret, SESSION, now,
                      self.settings.max_s)
        if not isinstance(data, dict) or not session_alive(data, now, self.settings.idle_s, self.settings.max_s):
            return None
        if not self.desk.session_open(str(data.get("sid") or "")):  # signed out, here or at the SSO
            return None
        return data

    def _cookie(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(name, value, max_age=max_age, path="/", secure=self.settings.cookie_secure,
                            httponly=True, samesite="Lax")

    # -- WSGI ------------------------------------------------------------------------------------

    def __call__(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        page = Page(self, request)
        try:
            endpoint, args = URLS.bind_to_environ(environ).match()
            response = getattr(self, f"on_{endpoint}")(page, **args)
        except _SignInNeeded:
            response = redirect("/login", 303)
        except HTTPException as exc:
            response = page.render("error.html", status=exc.code or 500, code=exc.code,
                                   message=page._("This page does not exist.") if isinstance(exc, NotFound)
                                   else page._("This request cannot be answered."))
        except uc.Forbidden:
            response = self.forbidden(page)
        except Exception:  # noqa: BLE001 - one failed request must not take the server down
            log.exception("console request failed: %s %s", request.method, request.path)
            response = page.render("error.html", status=500, code=500,
                                   message=page._("Something went wrong on our side; it is in the logs."))
        if page.session is not None and page.who is not None:
            page.session["seen"] = page.now
            self._cookie(response, SESSION_COOKIE, seal(page.session, self.settings.secret, SESSION, page.now),
                         self.settings.max_s)
        headers = response.headers
        headers["Content-Security-Policy"] = SVG_CSP if response.mimetype == "image/svg+xml" else self.csp
        headers["X-Frame-Options"] = "DENY"
        headers["X-Content-Type-Options"] = "nosniff"
        headers["Referrer-Policy"] = "no-referrer"
        headers.setdefault("Cache-Control", "no-store")
        return response(environ, start_response)

    def forbidden(self, page: Page) -> Response:
        return page.render("error.html", status=403, code=403,
                           message=page._("You may not open this page: it is outside your role or your schools. "
                                          "The refusal is in the audit log."))

    @staticmethod
    def _signed_in(page: Page, what: str) -> roles.Identity:
        if page.who is None:
            raise _SignInNeeded()
        return page.who

    def _csrf(self, page: Page, what: str) -> None:
        if page.session is None or not same(page.session.get("csrf"), page.request.form.get("csrf")):
            self.desk.refused(page.who, f"{what} (CSRF)", page.address)
            raise uc.Forbidden(what)

    # -- pages -----------------------------------------------------------------------------------

    def on_css(self, page: Page) -> Response:
        response = Response((PACKAGE / "static" / "console.css").read_bytes(), mimetype="text/css")
        response.headers["Cache-Control"] = "max-age=3600"
        return response

    def on_home(self, page: Page) -> Response:
        return page.render("home.html")

    def on_language(self, page: Page, lang: str) -> Response:
        if lang not in self.languages:
            raise NotFound()
        response = redirect("/", 303)
        self._cookie(response, LANG_COOKIE, lang, 365 * 86400)
        return response

    def on_login(self, page: Page) -> Response:
        state = new_token()
        service = f"{self.settings.service_url}?{urlencode({'state': state})}"
        response = redirect(f"{self.settings.cas_url}/login?{urlencode({'service': service})}", 303)
        self._cookie(response, STATE_COOKIE, seal(state, self.settings.secret, STATE, page.now), STATE_TTL_S)
        return response

    def on_callback(self, page: Page) -> Response:
        if page.request.method == "POST":  # the SSO's back-channel logout: no session, no form of ours
            closed = self.desk.single_logout(page.request.form.get("logoutRequest", "").encode(), page.address)
            return Response(f"{closed}\n", mimetype="text/plain")
        state, ticket = page.request.args.get("state", ""), page.request.args.get("ticket", "")
        expected = unseal(page.request.cookies.get(STATE_COOKIE), self.settings.secret, STATE, page.now,
                          STATE_TTL_S)
        if not ticket or not same(expected, state):
            self.desk.refused(None, "sign-in (state)", page.address)
            return page.render("error.html", status=403, code=403, message=page._(
                "This sign-in did not start here, or took too long. Please sign in again."), retry=True)
        service = f"{self.settings.service_url}?{urlencode({'state': state})}"
        try:
            who = self.desk.sign_in(service, ticket, page.address)
        except uc.SignInRefused as exc:
            message = page._("You are signed in to Relais, but you have no role in the console. "
                             "Ask your administrator.") if exc.reason == "role" else page._(
                "The SSO did not confirm your sign-in. Please sign in again.")
            return page.render("error.html", status=403, code=403, message=message, retry=exc.reason != "role")
        page.session = {"u": who.user, "n": who.name, "r": sorted(who.roles), "s": sorted(who.uais),
                        "iat": page.now, "seen": page.now, "csrf": new_token(),
                        "sid": self.desk.open_session(who, ticket, self.settings.max_s)}
        page.who = who
        response = redirect("/", 303)
        response.delete_cookie(STATE_COOKIE, path="/", secure=self.settings.cookie_secure, httponly=True,
                               samesite="Lax")
        return response

    def on_logout(self, page: Page) -> Response:
        self._csrf(page, "sign-out")
        if page.who is not None and page.session is not None:
            self.desk.sign_out(page.who, str(page.session.get("sid") or ""), page.address)
        response = redirect(f"{self.settings.cas_url}/logout", 303)
        response.delete_cookie(SESSION_COOKIE, path="/", secure=self.settings.cookie_secure, httponly=True,
                               samesite="Lax")
        page.session = page.who = None
        return response

    def on_health(self, page: Page) -> Response:
        who = self._signed_in(page, "health")
        live = LIVE_S if page.request.args.get("live") == "1" else 0  # a refresh without script, stopped by a link
        return page.render("health.html", report=self.desk.health(who, page.address), live=live)

    def on_imports(self, page: Page) -> Response:
        who = self._signed_in(page, "imports")
        return page.render("imports.html", report=self.desk.imports(who, page.address))

    def on_directory(self, page: Page) -> Response:
        who = self._signed_in(page, "directory")
        if page.request.method == "GET":
            if not roles.may(who, "directory"):
                self.desk.refused(who, "directory", page.address)
                raise uc.Forbidden("directory")
            return page.render("directory.html", text="", results=None)
        self._csrf(page, "search")
        text = page.request.form.get("q", "").strip()[:200]
        results = self.desk.search(who, text, page.address) if text else []
        for r in results:
            r["ref"] = page.ref(r.pop("jointure"))
        return page.render("directory.html", text=text, results=results)

    def _jointure(self, page: Page, ref: str) -> str:
        jointure = unseal(ref, self.settings.secret, REFERENCE, page.now, self.settings.max_s)
        if not isinstance(jointure, str):
            raise NotFound()
        return jointure

    def on_person(self, page: Page, ref: str) -> Response:
        who = self._signed_in(page, "person")
        try:
            person = self.desk.person(who, self._jointure(page, ref), page.address)
        except uc.NotFound:
            raise NotFound() from None
        for r in person["relatives"] + person["children"]:
            r["ref"] = page.ref(r["jointure"])
        return page.render("person.html", person=person, ref=ref)

    def on_change(self, page: Page, ref: str, action: str) -> Response:
        who = self._signed_in(page, action)
        self._csrf(page, action)
        jointure = self._jointure(page, ref)
        form = page.request.form
        try:
            self.desk.change_grant(who, action, jointure, form.get("resource", ""), form.get("uai", ""),
                                   page.address)
            page.flash("ok", page._("The resource is granted.") if action == "grant"
                       else page._("The resource is taken back."))
        except uc.Rejected as exc:
            page.flash("error", page._("Provisioning refused:") + f" {exc}")
        return redirect(f"/people/{ref}", 303)

    def on_resources(self, page: Page) -> Response:
        who = self._signed_in(page, "resources")
        return page.render("resources.html", resources=self.desk.resources(who, page.address))

    def on_rules(self, page: Page) -> Response:
        who = self._signed_in(page, "rules")
        return page.render("rules.html", text=self.desk.rules(who, page.address), error=None)

    def on_rules_preview(self, page: Page) -> Response:
        who = self._signed_in(page, "rules")
        self._csrf(page, "rules-preview")
        text = page.request.form.get("rules", "")
        try:
            preview = self.desk.preview_rules(who, text, page.address, names=page.request.form.get("names") == "1")
        except uc.Rejected as exc:
            return page.render("rules.html", status=422, text=text, error=str(exc))
        token = seal(digest(text), self.settings.secret, PREVIEW, page.now)
        return page.render("rules-preview.html", text=text, preview=preview, token=token)

    def on_rules_save(self, page: Page) -> Response:
        who = self._signed_in(page, "rules")
        self._csrf(page, "rules-save")
        text = page.request.form.get("rules", "")
        vouched = unseal(page.request.form.get("preview"), self.settings.secret, PREVIEW, page.now, PREVIEW_TTL_S)
        if not same(vouched, digest(text)):
            self.desk.refused(who, "rules-save (no preview)", page.address)
            return page.render("rules.html", status=409, text=text, error=page._(
                "Nothing was saved: preview this exact text first (or the preview is older than 30 minutes)."))
        try:
            self.desk.save_rules(who, text, page.address)
        except uc.Rejected as exc:
            return page.render("rules.html", status=422, text=text, error=str(exc))
        page.flash("ok", page._("The rules are saved and every account re-evaluated."))
        return redirect("/rules", 303)

    def _usage_args(self, page: Page) -> tuple[str, str | None]:
        args = page.request.args
        structure = args.get("structure", "").strip().upper()
        if structure and not (structure.isascii() and structure.isalnum() and len(structure) <= 8):
            raise NotFound()  # not a UAI
        return args.get("period", "")[:7], structure or None

    def on_usage(self, page: Page) -> Response:
        who = self._signed_in(page, "usage")
        period, structure = self._usage_args(page)
        try:
            found = self.desk.usage(who, period or None, structure, page.address)
        except uc.NotFound:
            raise NotFound() from None
        query = urlencode({k: v for k, v in (("period", found["period"]), ("structure", structure)) if v})
        return page.render("usage.html", usage=found, query=query,
                           number=lambda v: format_decimal(v, locale=page.lang),
                           percent=lambda v: format_percent(v, locale=page.lang))

    def on_usage_chart(self, page: Page, chart: str) -> Response:
        who = self._signed_in(page, "usage")
        period, structure = self._usage_args(page)
        try:
            svg = self.desk.usage_chart(who, chart, period, structure, page.lang, page.address)
        except uc.NotFound:
            raise NotFound() from None
        return Response(svg, mimetype="image/svg+xml")

    def on_usage_csv(self, page: Page) -> Response:
        who = self._signed_in(page, "usage")
        period, structure = self._usage_args(page)
        try:
            text = self.desk.usage_csv(who, period, structure, page.address)
        except uc.NotFound:
            raise NotFound() from None
        name = f"usage-{period}{'-' + structure if structure else ''}.csv"
        return Response(text, mimetype="text/csv", headers={"Content-Disposition": f'attachment; filename="{name}"'})

    def on_sso(self, page: Page) -> Response:
        who = self._signed_in(page, "sso")
        return page.render("sso.html", sso=self.desk.sso(who, page.address))

    def on_vault(self, page: Page) -> Response:
        who = self._signed_in(page, "vault")
        return page.render("vault.html", vault=self.desk.vault(who, page.address),
                           size=lambda n: format_decimal(round(n / 1_000_000, 1), locale=page.lang))

    def on_audit(self, page: Page) -> Response:
        who = self._signed_in(page, "audit")
        return page.render("audit.html", entries=self.desk.audit_log(who, page.address))


class _SignInNeeded(Exception):
    """A page that needs a session, asked without one: answered by a redirect to the sign-in."""


def _identity(session: dict[str, Any]) -> roles.Identity | None:
    try:
        return roles.Identity(user=str(session["u"]), name=str(session["n"]), roles=frozenset(session["r"]),
                              uais=frozenset(session["s"]))
    except (KeyError, TypeError):
        return None


def make_app(engine: Engine, desk: Desk, settings: ConsoleSettings) -> Callable:
    """The console with its probes (/healthz, /readyz: the database answers)."""
    ops = OpsApp("console", {"database": database_check(engine.url.render_as_string(hide_password=False))})
    return mount(ConsoleApp(desk, settings), ops)
