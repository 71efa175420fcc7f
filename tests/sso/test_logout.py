"""/cas/logout for a session that came from a national IdP: our session ends there, then the user goes through
the SAML SP's single logout so the IdP (a pysaml2 IdP over real HTTP) ends its own session too."""

from __future__ import annotations

from urllib.parse import parse_qs, quote, urlsplit

import pytest
from cas import CASClientV3
from sqlalchemy import select

from relais.bus import contracts
from relais.db import writer
from services.sso.sessions import open_session
from services.sso.tables import saml_request as request_t
from services.sso.tables import saml_session
from tests.saml_peers import AFFILIATION, FRED_CT_ID, URL_RETOUR, Browser, SpWorld


@pytest.fixture
def world(sqlite_engine, tmp_path):
    w = SpWorld(sqlite_engine, tmp_path)
    yield w
    w.stop()


def logged_in(world, browser: Browser, *, return_url: str | None) -> str:
    """A pupil logged in through the IdP and into the CAS app, whose ticket is validated; returns the cookie."""
    attributes = {AFFILIATION: ["eleve2d"], "FrEduCtRefId": ["{AAF}01|X|1001"], FRED_CT_ID: ["fe-1"]}
    if return_url:
        attributes[URL_RETOUR] = [return_url]
    world.idp.user = ("nid-pupil", attributes)
    r = browser.go(world.cas_login_url())
    assert r.text == "app page", r.text
    ticket = parse_qs(urlsplit(r.url).query)["ticket"][0]
    assert CASClientV3(service_url=world.app_url + "home", server_url=world.url + "/cas/").verify_ticket(ticket)[0]
    world.apps.logouts.clear()
    return browser.cookies["relais_sso"]


def alive(world, cookie: str) -> bool:
    r = Browser().get(world.cas_login_url(), headers={"Cookie": f"relais_sso={cookie}"}, allow_redirects=False,
                      timeout=10)
    return "ticket=ST-" in r.headers.get("Location", "")


def hops(world, browser: Browser) -> list[tuple[str, str]]:
    names = {urlsplit(world.url).port: "sp", urlsplit(world.idp.base).port: "idp",
             urlsplit(world.apps.url).port: "app"}
    return [(names[urlsplit(u).port], urlsplit(u).path) for u in browser.trail]


def test_cas_logout_of_a_federated_session_tells_the_idp_and_ends_at_fredu_url_retour(world):
    browser = Browser()
    cookie = logged_in(world, browser, return_url=f"{world.idp.base}/retour")
    r = browser.go(world.url + "/cas/logout")
    assert hops(world, browser) == [("sp", "/cas/logout"), ("sp", "/saml/logout"), ("idp", "/idp/slo/redirect"),
                                    ("sp", "/saml/slo"), ("idp", "/retour")]
    assert r.status_code == 404  # the IdP's return page does not exist in this test: the user got there
    (kind, request), = world.idp.logout_requests
    assert kind == "request" and request.name_id.text == "nid-pupil" and request.session_index
    assert not alive(world, cookie) and "relais_sso" not in browser.cookies
    assert [path for path, _ in world.apps.logouts] == ["/app/home"]  # told once, not twice
    (event,) = world.events("sso.logout")
    contracts.validate_event(event)
    assert event["payload"]["reason"] == "user" and event["payload"]["services"] == 1
    with world.engine.connect() as conn:
        assert conn.execute(select(saml_session)).first() is None
        logout = conn.execute(select(request_t).where(request_t.c.kind == "logout")).mappings().one()
    assert logout["answered_at"] is not None  # the IdP's LogoutResponse came back and was checked


def test_the_app_asking_to_come_back_lands_there_when_the_idp_gives_no_return_url(world):
    browser = Browser()
    logged_in(world, browser, return_url=None)
    r = browser.go(world.url + "/cas/logout?service=" + quote(world.app_url + "bye", safe=""))
    assert hops(world, browser) == [("sp", "/cas/logout"), ("sp", "/saml/logout"), ("idp", "/idp/slo/redirect"),
                                    ("sp", "/saml/slo"), ("app", "/app/bye")]
    assert r.text == "app page"
    assert len(world.idp.logout_requests) == 1


def test_a_service_outside_the_registry_is_not_followed_even_through_the_sp(world):
    browser = Browser()
    logged_in(world, browser, return_url=None)
    r = browser.go(world.url + "/cas/logout?service=" + quote("https://evil.example/", safe=""))
    assert hops(world, browser)[1] == ("sp", "/saml/logout") and "evil" not in " ".join(browser.trail[1:])
    assert r.status_code == 200 and "Déconnecté" in r.text
    # nor when someone sends the user to /saml/logout with it directly
    logged_in(world, browser, return_url=None)
    r = browser.go(world.url + "/saml/logout?service=" + quote("https://evil.example/", safe=""))
    assert "evil" not in " ".join(browser.trail[1:]) and "Déconnecté" in r.text


def test_our_session_is_over_before_the_browser_reaches_the_idp(world):
    """A browser that stops at the first redirect is logged out of the ENT all the same."""
    browser = Browser()
    cookie = logged_in(world, browser, return_url=None)
    r = browser.get(world.url + "/cas/logout", allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == "/saml/logout"
    assert not alive(world, cookie)
    assert [path for path, _ in world.apps.logouts] == ["/app/home"]
    assert world.idp.logout_requests == []


def test_the_logout_form_goes_through_the_idp_too_and_wants_its_csrf_token(world):
    browser = Browser()
    cookie = logged_in(world, browser, return_url=None)
    page = browser.get(world.url + "/cas/login", timeout=10)  # the "logged in" page, with its logout form
    assert "Se déconnecter" in page.text
    r = browser.post(world.url + "/cas/logout", data={"csrf_token": "forged"}, allow_redirects=False, timeout=10)
    assert r.status_code == 403 and alive(world, cookie) and world.idp.logout_requests == []
    r = browser.submit(page)  # POST /cas/logout, then redirects followed as a browser does
    assert [urlsplit(u.url).path for u in (*r.history, r)] == ["/cas/logout", "/saml/logout", "/idp/slo/redirect",
                                                              "/saml/slo"]
    assert [kind for kind, _ in world.idp.logout_requests] == ["request"]
    assert r.status_code == 200 and "Déconnecté" in r.text and not alive(world, cookie)


def test_a_session_not_from_a_national_idp_logs_out_as_before(world):
    with writer(world.engine).begin() as conn:
        session = open_session(conn, person_jointure="1001", auth_source="local", national_id=None, attributes={},
                               now=world.clock(), tenant="test")
    browser = Browser()
    browser.cookies.set("relais_sso", session.id)
    r = browser.get(world.url + "/cas/logout?service=" + quote(world.app_url + "bye", safe=""),
                    allow_redirects=False, timeout=10)
    assert r.status_code == 302 and r.headers["Location"] == world.app_url + "bye"
    assert not alive(world, session.id) and world.idp.logout_requests == []
