"""The CAS server, end to end over real HTTP: the production server in a thread, python-cas as the client.

Sessions are opened the way the SAML SP opens them after a national login
(`sessions.open_session`), then the browser carries the cookie. The directory
behind the attributes is the real one, filled by the real AAF importer.
"""

from __future__ import annotations

import json
import logging
import threading
from datetime import UTC, datetime, timedelta
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import requests
from cas import CASClientV2, CASClientV3, CASError
from lxml import etree
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from relais.bus import contracts
from relais.bus.tables import outbox
from relais.db import make_engine, writer
from relais.ops.server import WsgiServer
from services.directory.api import Directory
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from services.sso import sessions
from services.sso.app import SsoApp
from services.sso.config import ConfigError, load_config, parse_config
from services.sso.rules.service_registry import ServiceRegistry
from tests import aaf_builder as aaf

UAI = "0750001A"
SECRET = b"s" * 40
CAS_NS = {"cas": "http://www.yale.edu/tp/cas"}


class Clock:
    """The servers' time; tests move it forward to expire tickets."""

    def __init__(self):
        self.offset = timedelta()

    def __call__(self):
        return datetime.now(UTC) + self.offset


class Serving:
    """A WSGI app on a real socket, served as `relais serve` serves HTTP (relais/ops/server.py)."""

    def __init__(self, app):
        self.server = WsgiServer(app, "127.0.0.1", 0, what="a test's WSGI app", where="tests")
        self.url = f"http://127.0.0.1:{self.server.port}"

    def stop(self):
        self.server.stop()


class SamlStandIn:
    """The SSO application with a stand-in answering under /saml/ in place of the SAML SP:
    `handler(request, path, app)` returns the response."""

    def __init__(self, app: SsoApp, handler):
        self.app = app
        self.handler = handler

    def __call__(self, environ, start_response):
        if not environ.get("PATH_INFO", "").startswith("/saml/"):
            return self.app(environ, start_response)
        request = Request(environ)
        return self.handler(request, request.path, self.app)(environ, start_response)


class Apps:
    """The CAS client applications' side: receives back-channel logouts and proxy callbacks."""

    def __init__(self):
        self.logouts: list[tuple[str, str]] = []  # (path, logoutRequest)
        self.pgts: dict[str, str] = {}  # pgtIou -> pgtId
        self.serving = Serving(self)

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.path.startswith("/a/nopgt"):
            response = Response("gone", status=404)  # a proxy callback that does not answer 200
        elif request.path.startswith("/a/pgt"):
            if request.args.get("pgtIou"):
                self.pgts[request.args["pgtIou"]] = request.args["pgtId"]
            response = Response("ok")
        elif request.method == "POST" and "logoutRequest" in request.form:
            self.logouts.append((request.path, request.form["logoutRequest"]))
            response = Response("ok")
        else:
            response = Response("app page")
        return response(environ, start_response)


def sso_config(apps_url: str, **extra):
    return parse_config({
        "base_url": "http://127.0.0.1", "allow_http_callbacks": True,
        "cookie": {"secure": False},
        "lifetimes": {"service_ticket": 10},
        "services": [
            {"id": "app-a", "prefix": f"{apps_url}/a/", "proxy": True,
             "attributes": ["uid", "ENTPersonProfils", "ENTPersonStructRattachUAI", "ENTEleveClasses",
                            "ENTEleveMEF", "sn", "givenName", "ENTEleveParents"]},
            {"id": "app-b", "url": f"{apps_url}/b/"},
        ], **extra}, "test")


def import_directory(engine, tmp_path):
    runs = [("EtabEducNat", [aaf.school("S1", UAI)]),
            ("PersRelEleve", [aaf.relative("R1")]),
            ("Eleve", [aaf.pupil("1001", structure="S1", klass="6A", relatives=["R1"], ENTEleveMEF="10010012110")])]
    for n, (family, records) in enumerate(runs):
        path = aaf.write(tmp_path, f"P_Complet_2026090{n}_{family}_0000.xml", *records)
        assert DirectoryImporter(engine, "test", ImportOptions()).run([path]).ok


class World:
    def __init__(self, engine, tmp_path, apps: Apps, instances: int = 1, saml_handler=None):
        self.engine = engine
        self.apps = apps
        self.clock = Clock()
        self.config = sso_config(apps.serving.url)
        self.a = f"{apps.serving.url}/a/home"
        self.b = f"{apps.serving.url}/b/"
        self.pgt_url = f"{apps.serving.url}/a/pgt"
        self.instances = []
        self.servers = []
        for _ in range(instances):
            # each instance has its own engine (as separate processes would) on the same database
            own = make_engine(engine.url.render_as_string(hide_password=False))
            app = SsoApp(own, self.config, directory=Directory(own, "test"), tenant="test", secret=SECRET,
                         clock=self.clock, http_timeout=3)
            self.instances.append(app)
            self.servers.append(Serving(app if saml_handler is None else SamlStandIn(app, saml_handler)))
        self.url = self.servers[0].url

    def stop(self):
        for s in self.servers:
            s.stop()
        for app in self.instances:
            app.close()
            app.engine.dispose()

    def login(self, jointure="1001", auth_source="educonnect") -> str:
        """What the SAML SP does after a national login: open the session; returns the cookie value."""
        with writer(self.engine).begin() as conn:
            s = sessions.open_session(conn, person_jointure=jointure, auth_source=auth_source, national_id="n-1",
                                      attributes={"FrEduCtId": ["x"]}, now=self.clock(), tenant="test")
        return s.id

    def get(self, path, sid=None, base=None, **params):
        headers = {"Cookie": f"relais_sso={sid}"} if sid else {}
        return requests.get((base or self.url) + path, params=params, headers=headers, allow_redirects=False,
                            timeout=10)

    def ticket_for(self, service, sid, base=None, **params) -> str:
        r = self.get("/cas/login", sid, base=base, service=service, **params)
        assert r.status_code == 302, r.text
        location = r.headers["Location"]
        assert location.startswith(service)
        return parse_qs(urlsplit(location).query)["ticket"][0]

    def client(self, version, service, base=None, **kw):
        cls = {2: CASClientV2, 3: CASClientV3}[version]
        return cls(service_url=service, server_url=(base or self.url) + "/cas/", **kw)

    def validate_raw(self, path, ticket, service, base=None, **params):
        r = requests.get((base or self.url) + path, params={"ticket": ticket, "service": service, **params},
                         timeout=10)
        assert r.status_code == 200
        return r

    def events(self, type_):
        with self.engine.connect() as conn:
            return [orjson.loads(b) for (b,) in conn.execute(select(outbox.c.body).where(outbox.c.type == type_))]


def failure_code(response) -> str | None:
    node = etree.fromstring(response.content, parser=etree.XMLParser(resolve_entities=False, no_network=True))
    found = node.xpath("//cas:authenticationFailure/@code", namespaces=CAS_NS)
    return found[0] if found else None


@pytest.fixture(scope="module")
def apps():
    a = Apps()
    yield a
    a.serving.stop()


@pytest.fixture
def world(sqlite_engine, tmp_path, apps):
    import_directory(sqlite_engine, tmp_path)
    w = World(sqlite_engine, tmp_path, apps)
    yield w
    w.stop()


# -- protocol, through a CAS client library we did not write ---------------------------------

def test_cas3_and_cas2_validation_by_python_cas_with_released_attributes(world):
    sid = world.login()
    user, attributes, pgtiou = world.client(3, world.a).verify_ticket(world.ticket_for(world.a, sid))
    assert user == "1001" and pgtiou is None
    assert attributes["ENTPersonStructRattachUAI"] == UAI
    assert attributes["ENTEleveClasses"] == "S1$6A"
    assert attributes["ENTEleveMEF"] == "10010012110"
    assert attributes["ENTPersonProfils"] == "National_ELV"
    assert attributes["sn"] == "Nom1001" and attributes["givenName"] == "Élodie"
    assert attributes["ENTEleveParents"] == "R1"
    assert attributes["isFromNewLogin"] == "false"
    assert "ENTEleveINE" not in attributes and "ENTPersonDateNaissance" not in attributes  # not in A's policy

    user2, attributes2, _ = world.client(2, world.a).verify_ticket(world.ticket_for(world.a, sid))
    assert user2 == "1001" and attributes2 is None  # CAS 2.0: no attributes

    # B's policy releases nothing beyond the user, even on CAS 3.
    user3, attributes3, _ = world.client(3, world.b).verify_ticket(world.ticket_for(world.b, sid))
    assert user3 == "1001"
    assert set(attributes3) == {"authenticationDate", "isFromNewLogin", "longTermAuthenticationRequestTokenUsed"}

    # JSON format
    r = world.validate_raw("/cas/p3/serviceValidate", world.ticket_for(world.a, sid), world.a, format="JSON")
    body = r.json()["serviceResponse"]["authenticationSuccess"]
    assert body["user"] == "1001" and body["attributes"]["ENTPersonStructRattachUAI"] == [UAI]
    bad = world.validate_raw("/cas/p3/serviceValidate", "ST-nope", world.a, format="JSON").json()
    assert bad["serviceResponse"]["authenticationFailure"]["code"] == "INVALID_TICKET"

    for event in world.events("sso.login.succeeded"):
        contracts.validate_event(event)
    assert world.events("sso.login.succeeded")[0]["payload"]["person"] == "1001"


def test_ticket_reuse_is_refused_and_logged_without_the_ticket(world, caplog):
    caplog.set_level(logging.INFO)
    sid = world.login()
    ticket = world.ticket_for(world.a, sid)
    assert world.client(3, world.a).verify_ticket(ticket)[0] == "1001"
    assert world.client(3, world.a).verify_ticket(ticket)[0] is None
    r = world.validate_raw("/cas/serviceValidate", ticket, world.a)
    assert failure_code(r) == "INVALID_TICKET" and "already used" in r.text
    refusals = [rec.getMessage() for rec in caplog.records if "refused" in rec.getMessage()]
    assert any("already used" in m for m in refusals)
    assert not any(ticket in rec.getMessage() or ticket[3:] in rec.getMessage() for rec in caplog.records)
    assert not any(sid in rec.getMessage() for rec in caplog.records)


def test_expired_ticket_is_refused(world):
    sid = world.login()
    ticket = world.ticket_for(world.a, sid)
    world.clock.offset = timedelta(seconds=11)  # service_ticket lifetime: 10 s
    r = world.validate_raw("/cas/serviceValidate", ticket, world.a)
    assert failure_code(r) == "INVALID_TICKET" and "expired" in r.text


def test_ticket_of_service_a_presented_by_service_b_is_refused_and_burnt(world):
    sid = world.login()
    ticket = world.ticket_for(world.a, sid)
    r = world.validate_raw("/cas/serviceValidate", ticket, world.b)
    assert failure_code(r) == "INVALID_SERVICE"
    assert failure_code(world.validate_raw("/cas/serviceValidate", ticket, world.a)) == "INVALID_TICKET"


@pytest.mark.parametrize("service", [
    "https://evil.example/",
    "{apps}/c/",                      # same host, path not registered
    "{apps}/a-evil/",                 # prefix must end at a slash
    "{apps}/b/x",                     # exact URL entry: other paths refused
    "http://127.0.0.1@evil.example/a/",
    "{apps}/a/../admin",
    "{apps}/a/#frag",
    "javascript:alert(1)//{apps}/a/",
])
def test_services_outside_the_registry_are_refused_without_redirect(world, service, caplog):
    service = service.format(apps=world.apps.serving.url)
    sid = world.login()
    r = world.get("/cas/login", sid, service=service)
    assert r.status_code == 403 and "Location" not in r.headers
    r = world.get("/cas/login", None, service=service, gateway="true")
    assert r.status_code == 403 and "Location" not in r.headers
    assert failure_code(world.validate_raw("/cas/serviceValidate", "ST-x", service)) == "INVALID_SERVICE"
    r = world.get("/cas/logout", sid, service=service)
    assert r.status_code == 200 and "Location" not in r.headers
    assert any("not in the registry" in rec.getMessage() for rec in caplog.records)


def test_without_session_login_goes_to_saml_and_gateway_returns_without_ticket(world):
    r = world.get("/cas/login", None, service=world.a)
    assert r.status_code == 302
    target = urlsplit(r.headers["Location"])
    assert target.path == "/saml/login"
    nxt = parse_qs(target.query)["next"][0]
    assert nxt.startswith("/cas/login?") and parse_qs(urlsplit(nxt).query)["service"] == [world.a]
    r = world.get("/cas/login", None, service=world.a, gateway="true")
    assert r.status_code == 302 and r.headers["Location"] == world.a
    assert world.get("/saml/login", None).status_code == 404  # no SAML SP mounted in this test


def test_a_login_handler_under_saml_opens_the_session_and_the_browser_comes_back(sqlite_engine, tmp_path, apps):
    """The contract between CAS and the SAML SP's login, exercised by a handler that opens a session as it would.

    (The real SAML SP and its tests are in sp/http.py / test_saml.py; this one has no SAML in it.)
    """
    from services.sso.cookies import set_session_cookie

    def login_handler(request, path, app):
        nxt = request.args.get("next", "")
        assert path == "/saml/login" and nxt.startswith("/cas/") and not nxt.startswith("//")
        with writer(app.engine).begin() as conn:
            s = sessions.open_session(conn, person_jointure="1001", auth_source="educonnect", national_id="n",
                                      attributes={}, now=app.clock(), tenant=app.tenant,
                                      lifetimes=app.config.lifetimes)
        response = Response(status=302, headers={"Location": nxt})
        set_session_cookie(response, s.id, app.config)
        return response

    import_directory(sqlite_engine, tmp_path)
    world = World(sqlite_engine, tmp_path, apps, saml_handler=login_handler)
    try:
        browser = requests.Session()
        r = browser.get(world.url + "/cas/login", params={"service": world.a}, timeout=10)  # follows redirects
        assert r.status_code == 200 and r.text == "app page"
        hops = [urlsplit(h.headers["Location"]).path for h in r.history]
        assert hops == ["/saml/login", "/cas/login", "/a/home"]
        cookie = r.history[1].headers["Set-Cookie"]
        assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
        ticket = parse_qs(urlsplit(r.url).query)["ticket"][0]
        assert world.client(3, world.a).verify_ticket(ticket)[0] == "1001"
        # the cookie now carries the session: the next app gets a ticket without another national login
        r = browser.get(world.url + "/cas/login", params={"service": world.b}, allow_redirects=False, timeout=10)
        assert r.status_code == 302 and r.headers["Location"].startswith(world.b + "?ticket=ST-")
    finally:
        world.stop()


def test_renew_forces_a_fresh_national_login(world):
    old = world.login()
    r = world.get("/cas/login", old, service=world.a, renew="true")
    assert r.status_code == 302
    target = urlsplit(r.headers["Location"])
    query = parse_qs(target.query)
    assert target.path == "/saml/login" and query["force_authn"] == ["true"]
    nxt = query["next"][0]
    # an old ticket cannot satisfy renew=true at validation
    stale = world.ticket_for(world.a, old)
    assert failure_code(world.validate_raw("/cas/serviceValidate", stale, world.a, renew="true")) == "INVALID_TICKET"
    # the national login happens (a new session), then the browser follows `next`
    world.clock.offset = timedelta(seconds=2)
    fresh = world.login()
    r = world.get(nxt, fresh)
    assert r.status_code == 302 and r.headers["Location"].startswith(world.a)
    ticket = parse_qs(urlsplit(r.headers["Location"]).query)["ticket"][0]
    user, attributes, _ = world.client(3, world.a, renew=True).verify_ticket(ticket)
    assert user == "1001" and attributes["isFromNewLogin"] == "true"
    # a forged proof is not accepted: renew again goes to the IdP
    forged = nxt.split("&auth_after=")[0] + "&auth_after=1.deadbeef"
    assert urlsplit(world.get(forged, fresh).headers["Location"]).path == "/saml/login"


def test_proxy_granting_and_proxy_tickets(world):
    sid = world.login()
    ticket = world.ticket_for(world.a, sid)
    user, _attrs, iou = world.client(3, world.a, proxy_callback=world.pgt_url).verify_ticket(ticket)
    assert user == "1001" and iou and iou.startswith("PGTIOU-")
    pgt = world.apps.pgts[iou]
    assert pgt.startswith("PGT-")

    pt = world.client(2, world.b).get_proxy_ticket(pgt)  # A proxies to B
    assert pt.startswith("PT-")
    # a PT is refused by serviceValidate, accepted by proxyValidate, which lists the proxy chain
    assert failure_code(world.validate_raw("/cas/serviceValidate", pt, world.b)) == "INVALID_TICKET_SPEC"
    pt = world.client(2, world.b).get_proxy_ticket(pgt)
    r = world.validate_raw("/cas/p3/proxyValidate", pt, world.b)
    tree = etree.fromstring(r.content)
    assert tree.xpath("//cas:user/text()", namespaces=CAS_NS) == ["1001"]
    assert tree.xpath("//cas:proxy/text()", namespaces=CAS_NS) == [world.pgt_url]
    assert failure_code(world.validate_raw("/cas/proxyValidate", pt, world.b)) == "INVALID_TICKET"  # single use

    # proxying is per service: B may not get a PGT, and a pgtUrl must belong to the validating service
    t_b = world.ticket_for(world.b, sid)
    r = world.validate_raw("/cas/serviceValidate", t_b, world.b, pgtUrl=world.pgt_url)
    assert failure_code(r) == "UNAUTHORIZED_SERVICE_PROXY"
    r = world.validate_raw("/cas/serviceValidate", world.ticket_for(world.a, sid), world.a,
                           pgtUrl="https://evil.example/pgt")
    assert failure_code(r) == "INVALID_PROXY_CALLBACK"
    # a callback that does not answer 200 gets no PGT, but the validation itself succeeds (CAS 3.0, 2.5.4)
    r = world.validate_raw("/cas/serviceValidate", world.ticket_for(world.a, sid), world.a,
                           pgtUrl=f"{world.apps.serving.url}/a/nopgt")
    assert failure_code(r) is None and b"proxyGrantingTicket" not in r.content
    # a proxy ticket for a service outside the registry is refused; an unknown PGT too
    with pytest.raises(CASError):
        world.client(2, "https://evil.example/").get_proxy_ticket(pgt)
    r = requests.get(world.url + "/cas/proxy", params={"pgt": "PGT-unknown", "targetService": world.b}, timeout=5)
    assert etree.fromstring(r.content).xpath("//cas:proxyFailure/@code", namespaces=CAS_NS) == ["INVALID_TICKET"]


def test_logout_sends_back_channel_requests_and_ends_the_session(world):
    world.apps.logouts.clear()
    sid = world.login()
    t_a = world.ticket_for(world.a, sid)
    t_b = world.ticket_for(world.b, sid)
    unvalidated = world.ticket_for(world.a, sid)  # never validated: no session at the app, nothing to say
    assert world.client(3, world.a).verify_ticket(t_a)[0] == "1001"
    assert world.client(2, world.b).verify_ticket(t_b)[0] == "1001"

    r = world.get("/cas/logout", sid, service=world.b)
    assert r.status_code == 302 and r.headers["Location"] == world.b  # registered: redirect allowed
    assert "relais_sso=;" in r.headers["Set-Cookie"] or "Max-Age=0" in r.headers["Set-Cookie"]
    received = {path: body for path, body in world.apps.logouts}
    assert set(received) == {"/a/home", "/b/"}
    assert CASClientV3.verify_logout_request(received["/a/home"], t_a)
    assert CASClientV3.verify_logout_request(received["/b/"], t_b)
    assert not any(CASClientV3.verify_logout_request(body, unvalidated) for body in received.values())

    # the session is over: login goes back to the IdP, its leftover ticket is dead
    assert urlsplit(world.get("/cas/login", sid, service=world.a).headers["Location"]).path == "/saml/login"
    assert failure_code(world.validate_raw("/cas/serviceValidate", unvalidated, world.a)) == "INVALID_TICKET"
    (event,) = world.events("sso.logout")
    contracts.validate_event(event)
    assert event["payload"]["services"] == 2 and event["payload"]["person"] == "1001"


def test_logout_form_needs_its_csrf_token(world):
    sid = world.login()
    page = world.get("/cas/login", sid)
    assert page.status_code == 200
    token = etree.fromstring(page.content, etree.HTMLParser()).xpath("//input[@name='csrf_token']/@value")[0]
    headers = {"Cookie": f"relais_sso={sid}"}
    r = requests.post(world.url + "/cas/logout", data={"csrf_token": "forged"}, headers=headers,
                      allow_redirects=False, timeout=5)
    assert r.status_code == 403
    assert world.get("/cas/login", sid).status_code == 200  # still logged in
    r = requests.post(world.url + "/cas/logout", data={"csrf_token": token}, headers=headers,
                      allow_redirects=False, timeout=5)
    assert r.status_code == 200
    assert world.get("/cas/login", sid).status_code == 302  # logged out
    set_cookie = page.headers.get("Set-Cookie", "")
    assert set_cookie == ""  # the CAS pages never hand out session cookies; the SAML SP does


def test_sessions_and_tickets_are_shared_by_two_instances(engine, tmp_path, apps):
    import_directory(engine, tmp_path)
    world = World(engine, tmp_path, apps, instances=2)
    try:
        one, two = world.servers[0].url, world.servers[1].url
        sid = world.login()
        ticket = world.ticket_for(world.a, sid, base=one)
        user, attributes, _ = world.client(3, world.a, base=two).verify_ticket(ticket)
        assert user == "1001" and attributes["ENTPersonStructRattachUAI"] == UAI
        # the same ticket raced on both instances: exactly one wins
        ticket = world.ticket_for(world.a, sid, base=two)
        results = []
        threads = [threading.Thread(target=lambda b=b: results.append(
            failure_code(world.validate_raw("/cas/serviceValidate", ticket, world.a, base=b)))) for b in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results, key=str) in ([None, "INVALID_TICKET"], ["INVALID_TICKET", None])
        # logout on one instance ends the session on the other
        assert world.get("/cas/logout", sid, base=two).status_code == 200
        r = world.get("/cas/login", sid, base=one, service=world.a)
        assert urlsplit(r.headers["Location"]).path == "/saml/login"
    finally:
        world.stop()


# -- configuration and registry -----------------------------------------------------------

def test_configuration_problems_are_all_reported_with_where(tmp_path):
    path = tmp_path / "sso.yaml"
    path.write_text("base_url: ftp://x\nlifetimes: {service_ticket: 0, nope: 1}\ncookie: {secure: maybe}\n"
                    "services:\n  - {id: a, pattern: '.*'}\n  - {id: b, prefix: 'https://b.example/app'}\n"
                    "  - {id: c, url: 'https://c.example/', attributes: ['bad name']}\n  - {id: c, url: 'https://u@c/'}\n"
                    "typo: 1\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    text = str(err.value)
    for expected in ("base_url", "lifetimes.service_ticket", "lifetimes.nope", "cookie.secure", "services[0] (a)",
                     "services[1] (b)", "services[2] (c): attributes", "services[3] (c): id: duplicate", "typo"):
        assert expected in text, expected
    assert str(path) in text
    (tmp_path / "bad.json").write_text("{nope")
    with pytest.raises(ConfigError, match="not valid JSON"):
        load_config(tmp_path / "bad.json")


# -- sessions, attributes, events, command line ----------------------------------------------

def test_sessions_end_when_idle_or_past_their_lifetime_and_purge_cleans_up(sqlite_engine):
    from services.sso.config import Lifetimes

    life = Lifetimes(session_idle=60, session_max=300)
    t0 = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    with writer(sqlite_engine).begin() as conn:
        s = sessions.open_session(conn, person_jointure="J", auth_source="agents", national_id=None,
                                  attributes={}, now=t0, tenant="t", lifetimes=life)
    with writer(sqlite_engine).begin() as conn:
        for minute in range(1, 5):  # used every 50 s: stays alive until its absolute end
            assert sessions.get_session(conn, s.id, t0 + timedelta(seconds=50 * minute), lifetimes=life)
        assert sessions.get_session(conn, s.id, t0 + timedelta(seconds=301), lifetimes=life) is None
        assert sessions.get_session(conn, s.id + "x", t0, lifetimes=life) is None
        assert sessions.get_session(conn, None, t0, lifetimes=life) is None
    with writer(sqlite_engine).begin() as conn:
        idle = sessions.open_session(conn, person_jointure="K", auth_source="agents", national_id=None,
                                     attributes={}, now=t0, tenant="t", lifetimes=life)
        assert sessions.get_session(conn, idle.id, t0 + timedelta(seconds=61), lifetimes=life) is None
        assert not s.check_csrf(idle.csrf_token) and s.check_csrf(s.csrf_token) and not s.check_csrf(None)
        with pytest.raises(ValueError, match="timezone"):
            sessions.get_session(conn, s.id, datetime(2026, 9, 1, 8, 0))
        assert sessions.purge_expired(conn, t0 + timedelta(seconds=301)) == 2
    with sqlite_engine.connect() as conn:
        rows = conn.execute(select(outbox.c.body).where(outbox.c.type.like("sso.%"))).all()
    assert len(rows) == 2  # two logins; nobody stored the session id in an event
    assert not any(s.id.encode() in r.body for r in rows)


def test_a_parents_children_come_from_the_directory(world):
    from services.sso.attribute_source import AttributeSource

    attrs = AttributeSource(world.instances[0].directory).for_person("R1")
    assert attrs["ENTAuxPersRelEleveEleve"] == ["1001"] and attrs["ENTPersonProfils"] == ["National_TUT"]
    assert AttributeSource(world.instances[0].directory).for_person("nobody") is None


def test_login_failure_event_for_the_saml_side_matches_its_contract(sqlite_engine):
    from services.sso import events

    with writer(sqlite_engine).begin() as conn:
        ev = events.login_failed(conn, auth_source="educonnect", reason="no-account", now=datetime.now(UTC),
                                 tenant="t", detail="no directory account matches")
    contracts.validate_event(ev.to_dict())
    broken = {**ev.to_dict(), "payload": {"auth_source": "educonnect"}}
    with pytest.raises(contracts.ContractError):
        contracts.validate_event(broken)


def test_cli_check_config_and_serve(tmp_path, sqlite_engine):
    import os
    import socket
    import subprocess
    import sys
    import time
    from pathlib import Path

    from click.testing import CliRunner

    from app.cli import main

    good = tmp_path / "sso.yaml"
    good.write_text("base_url: https://ent.example.org\ncookie: {secure: false}\nservices:\n"
                    "  - {id: app, prefix: 'https://app.example.org/', attributes: [uid]}\n")
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"base_url": "https://x", "services": [{"id": "a"}]}))
    runner = CliRunner()
    ok = runner.invoke(main, ["sso", "check-config", str(good), "--json"])
    assert ok.exit_code == 0 and json.loads(ok.stdout)["services"] == ["app"]
    ko = runner.invoke(main, ["sso", "check-config", str(bad), "--json"])
    assert ko.exit_code == 1 and "services[0] (a): exactly one of url, prefix, pattern" in ko.output

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    relais = str(Path(sys.executable).parent / "relais")  # the installed entry point
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        ops_port = s.getsockname()[1]
    env = {**os.environ, "RELAIS_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
           "RELAIS_SSO_SECRET": "x" * 40, "RELAIS_CONSUMERS": "none", "RELAIS_SSO_CONFIG": str(good),
           "RELAIS_HTTP_PORT": str(port), "RELAIS_OPS_PORT": str(ops_port), "RELAIS_OPS_HOST": "127.0.0.1"}
    proc = subprocess.Popen([relais, "serve", "sso"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                r = requests.get(f"http://127.0.0.1:{port}/cas/login", params={"service": "https://evil.example/"},
                                 allow_redirects=False, timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        else:
            pytest.fail(proc.stderr.read1().decode() if proc.poll() is not None else "relais serve sso did not start")
        assert r.status_code == 403 and "Location" not in r.headers
        r = requests.get(f"http://127.0.0.1:{port}/cas/login", params={"service": "https://app.example.org/x"},
                         allow_redirects=False, timeout=2)
        assert r.status_code == 302 and r.headers["Location"].startswith("/saml/login?next=")
    finally:
        proc.terminate()
        proc.wait(10)
    env.pop("RELAIS_SSO_SECRET")
    res = subprocess.run([relais, "serve", "sso"], check=False, env=env, capture_output=True, text=True, timeout=30)
    assert res.returncode == 2 and "RELAIS_SSO_SECRET" in res.stderr


def test_proxy_callbacks_must_be_https_unless_configured_for_tests():
    from services.sso.cas import tickets as cas
    from services.sso.rules.service_registry import RegisteredService

    config = parse_config({"base_url": "https://ent.example", "services": [
        {"id": "a", "prefix": "http://a.example/", "proxy": True},
        {"id": "s", "prefix": "https://a.example/", "proxy": True}]})
    reg = ServiceRegistry(config.services)
    a = RegisteredService("a", (), True, True)
    with pytest.raises(cas.CasError) as err:
        cas.check_pgt_url("http://a.example/pgt", a, reg, allow_http=False)
    assert err.value.code == "INVALID_PROXY_CALLBACK"
    cas.check_pgt_url("http://a.example/pgt", a, reg, allow_http=True)
    with pytest.raises(cas.CasError, match="not registered for service a"):
        cas.check_pgt_url("https://a.example/pgt", a, reg, allow_http=False)  # that URL is service s's
    cas.check_pgt_url("https://a.example/pgt", RegisteredService("s", (), True, True), reg, allow_http=False)


def test_the_session_cookie_flags():
    from werkzeug.wrappers import Response as R

    from services.sso.cookies import clear_session_cookie, set_session_cookie

    config = parse_config({"base_url": "https://ent.example", "cookie": {"name": "sso", "domain": "ent.example"}})
    response = R()
    set_session_cookie(response, "abc", config)
    cookie = response.headers["Set-Cookie"]
    for flag in ("sso=abc", "Secure", "HttpOnly", "SameSite=Lax", "Path=/", "Domain=ent.example",
                 f"Max-Age={config.lifetimes.session_max}"):
        assert flag in cookie, flag
    response = R()
    clear_session_cookie(response, config)
    assert "Max-Age=0" in response.headers["Set-Cookie"] or "Expires=Thu, 01 Jan 1970" in response.headers["Set-Cookie"]
