"""Single logout with a pysaml2 IdP, both ways: our session ends, the CAS apps are told, the IdP is told
(or tells us), and EduConnect's FrEduUrlRetour is where the user lands afterwards."""

from __future__ import annotations

import logging
from urllib.parse import parse_qs, urlsplit

import pytest
from cas import CASClientV3
from sqlalchemy import select

from relais.bus import contracts
from services.sso.tables import saml_session
from tests.saml_peers import AFFILIATION, FRED_CT_ID, URL_RETOUR, Browser, SpWorld, idp_metadata_xml


def pupil(return_url: str) -> tuple[str, dict]:
    return ("nid-pupil", {AFFILIATION: ["eleve2d"], "FrEduCtRefId": ["{AAF}01|X|1001"], FRED_CT_ID: ["fe-1"],
                          URL_RETOUR: [return_url]})


@pytest.fixture
def world(sqlite_engine, tmp_path):
    w = SpWorld(sqlite_engine, tmp_path)
    yield w
    w.stop()


def logged_in(world, browser: Browser, return_url: str | None = None) -> str:
    """Log in through the IdP and into the CAS app (whose ticket is validated); returns the session cookie."""
    world.idp.user = pupil(return_url or f"{world.idp.base}/retour")
    r = browser.go(world.cas_login_url())
    assert r.text == "app page", r.text
    ticket = parse_qs(urlsplit(r.url).query)["ticket"][0]
    assert CASClientV3(service_url=world.app_url + "home", server_url=world.url + "/cas/").verify_ticket(ticket)[0]
    return browser.cookies["relais_sso"]


def session_alive(world, cookie: str) -> bool:
    r = Browser().get(world.cas_login_url(), headers={"Cookie": f"relais_sso={cookie}"}, allow_redirects=False,
                      timeout=10)
    return "ticket=ST-" in r.headers.get("Location", "")


def test_sp_initiated_logout_reaches_the_idp_and_ends_at_fredu_url_retour(world):
    browser = Browser()
    cookie = logged_in(world, browser)
    world.apps.logouts.clear()
    r = browser.go(world.url + "/saml/logout")
    paths = [(urlsplit(u).port, urlsplit(u).path) for u in browser.trail]
    sp, idp = urlsplit(world.url).port, urlsplit(world.idp.base).port
    assert paths == [(sp, "/saml/logout"), (idp, "/idp/slo/redirect"), (sp, "/saml/slo"), (idp, "/retour")]
    assert r.status_code == 404  # the IdP's return page does not exist in this test: we got there
    kind, request = world.idp.logout_requests[0]
    assert kind == "request" and request.name_id.text == "nid-pupil" and request.session_index
    assert not session_alive(world, cookie)
    assert [path for path, _ in world.apps.logouts] == ["/app/home"]  # CAS back-channel logout
    (event,) = world.events("sso.logout")
    contracts.validate_event(event)
    assert event["payload"]["reason"] == "user" and event["payload"]["services"] == 1
    with world.engine.connect() as conn:
        assert conn.execute(select(saml_session)).first() is None


def test_a_return_url_elsewhere_than_the_idp_is_not_followed(world, caplog):
    caplog.set_level(logging.WARNING)
    browser = Browser()
    logged_in(world, browser, return_url="https://evil.example/phish")
    r = browser.go(world.url + "/saml/logout")
    assert r.status_code == 200 and "Déconnecté" in r.text and urlsplit(r.url).path == "/saml/slo"
    assert any("FrEduUrlRetour of IdP educonnect ignored" in rec.getMessage() for rec in caplog.records)


def test_idp_initiated_logout_ends_the_session_tells_the_apps_and_answers_the_idp(world):
    browser = Browser()
    cookie = logged_in(world, browser)
    world.apps.logouts.clear()
    url = world.idp.logout_url("nid-pupil", world.url + "/saml/slo")
    r = browser.go(url)
    assert r.status_code == 200 and r.text == "IdP: logout answered"
    kind, answer = world.idp.logout_requests[-1]
    assert kind == "response" and answer.response.status.status_code.value.endswith(":Success")
    assert not session_alive(world, cookie)
    assert "relais_sso" not in browser.cookies  # cleared on the way back to the IdP
    assert [path for path, _ in world.apps.logouts] == ["/app/home"]
    (event,) = world.events("sso.logout")
    assert event["payload"]["reason"] == "idp"

    # the same request again: a replay, refused; a request for someone without a session: answered, nothing ends
    r = Browser().get(url, timeout=10)
    assert r.status_code == 400 and "Déconnexion refusée" in r.text
    r = Browser().go(world.idp.logout_url("nobody", world.url + "/saml/slo"))
    assert r.text == "IdP: logout answered"


def test_idp_initiated_logout_without_the_browser_cookie_still_ends_the_session(world):
    """Third-party cookies are often blocked: the session is found by NameID and SessionIndex, not by cookie."""
    cookie = logged_in(world, Browser())
    with world.engine.connect() as conn:
        index = conn.execute(select(saml_session.c.session_index)).scalar_one()
    other = logged_in(world, Browser())  # a second session of the same person (another device)
    assert Browser().go(world.idp.logout_url("nid-pupil", world.url + "/saml/slo", session_index=index)).text == \
        "IdP: logout answered"
    assert not session_alive(world, cookie) and session_alive(world, other)  # only the session named


def test_unsigned_or_tampered_logout_requests_are_refused(world, caplog):
    caplog.set_level(logging.WARNING)
    cookie = logged_in(world, Browser())
    url = world.idp.logout_url("nid-pupil", world.url + "/saml/slo")
    unsigned = url.split("&SigAlg=")[0]
    r = Browser().get(unsigned, timeout=10)
    assert r.status_code == 400 and session_alive(world, cookie)
    forged_relay = url.replace("RelayState=r1", "RelayState=r2")
    assert Browser().get(forged_relay, timeout=10).status_code == 400 and session_alive(world, cookie)
    reasons = [rec.getMessage() for rec in caplog.records if "logout message refused" in rec.getMessage()]
    assert "unsigned" in reasons[0] and "signature-invalid" in reasons[1]


def test_logout_when_the_idp_has_no_single_logout_goes_straight_to_fredu_url_retour(sqlite_engine, tmp_path):
    world = SpWorld(sqlite_engine, tmp_path, idp="forged")
    try:
        (tmp_path / "idp-metadata.xml").write_bytes(idp_metadata_xml(world.idp_entity_id, world.idp_keys,
                                                                     sso="https://idp.test/sso"))
        browser = Browser()
        rid = world.start(browser)
        world.post(browser, world.forge(rid, attributes={
            AFFILIATION: ["eleve2d"], "FrEduCtRefId": ["{AAF}01|X|1001"], URL_RETOUR: ["https://idp.test/retour"]}))
        cookie = browser.cookies["relais_sso"]
        r = browser.get(world.url + "/saml/logout", allow_redirects=False, timeout=10)
        assert r.status_code == 302 and r.headers["Location"] == "https://idp.test/retour"
        assert not session_alive(world, cookie)
        # our own logout form (POST) wants the session's CSRF token
        rid = world.start(browser)
        world.post(browser, world.forge(rid))
        r = browser.post(world.url + "/saml/logout", data={"csrf_token": "forged"}, allow_redirects=False, timeout=10)
        assert r.status_code == 403 and session_alive(world, browser.cookies["relais_sso"])
    finally:
        world.stop()


def test_purge_removes_expired_requests_and_the_links_of_ended_sessions(world):
    from datetime import timedelta

    from relais.db import writer
    from services.sso.sessions import close_session
    from services.sso.sp import store as saml_store
    from services.sso.tables import saml_request as request_t

    cookie = logged_in(world, Browser())
    with writer(world.engine).begin() as conn:  # a session ended without the IdP (e.g. by an operator): its
        close_session(conn, cookie, world.clock(), tenant="test", reason="admin")  # IdP link lingers
    world.start(Browser())  # a login left at the IdP
    with world.engine.connect() as conn:
        assert conn.execute(select(saml_session)).first() is not None
        assert len(conn.execute(select(request_t)).all()) == 2  # the answered one and the pending one
    with writer(world.engine).begin() as conn:
        assert saml_store.purge(conn, world.clock()) == 1  # the link only: requests are still young
    with writer(world.engine).begin() as conn:
        assert saml_store.purge(conn, world.clock() + timedelta(seconds=601)) == 2
    with world.engine.connect() as conn:
        assert conn.execute(select(request_t)).first() is None
