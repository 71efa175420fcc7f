"""Our SAML SP against an identity provider we did not write (pysaml2), over real HTTP, through to CAS.

The browser is a requests.Session that follows redirects and posts the SAML
forms itself; the CAS ticket at the end is validated by python-cas.
"""

from __future__ import annotations

import base64
import logging
from urllib.parse import parse_qs, quote, urlsplit

import pytest
from cas import CASClientV3
from sqlalchemy import select

from relais.bus import contracts
from services.sso.tables import saml_session
from services.sso.tables import session as session_t
from tests.saml_peers import AFFILIATION, FRED_CT_ID, URL_RETOUR, Browser, SpWorld, saml_form

PUPIL = ("nid-pupil", {AFFILIATION: ["eleve2d"], "FrEduCtRefId": ["{AAF}01|X|1001"], FRED_CT_ID: ["fe-pupil"],
                       "urn:oid:2.5.4.4": ["NOM1001"], URL_RETOUR: ["https://educonnect.invalid/retour"]})


@pytest.fixture
def world(sqlite_engine, tmp_path):
    w = SpWorld(sqlite_engine, tmp_path)
    yield w
    w.stop()


def ticket_of(response) -> str:
    return parse_qs(urlsplit(response.url).query)["ticket"][0]


def cas_validate(world, ticket: str):
    return CASClientV3(service_url=world.app_url + "home", server_url=world.url + "/cas/").verify_ticket(ticket)


def test_a_pupil_logs_in_through_a_pysaml2_idp_and_reaches_a_cas_app(engine, tmp_path):
    world = SpWorld(engine, tmp_path)
    try:
        world.idp.user = PUPIL
        browser = Browser()
        r = browser.go(world.cas_login_url())
        assert r.status_code == 200 and r.text == "app page", r.text
        hops = [(urlsplit(u).port, urlsplit(u).path) for u in browser.trail]
        sp, idp, app = (urlsplit(u).port for u in (world.url, world.idp.base, world.apps.url))
        assert hops == [(sp, "/cas/login"), (sp, "/saml/login"), (idp, "/idp/sso/redirect"), (sp, "/saml/acs"),
                        (sp, "/cas/login"), (app, "/app/home")]
        user, attributes, _ = cas_validate(world, ticket_of(r))
        assert user == "1001" and attributes["ENTPersonProfils"] == "National_ELV"

        (event,) = world.events("sso.login.succeeded")
        contracts.validate_event(event)
        assert event["payload"]["person"] == "1001" and event["payload"]["auth_source"] == "educonnect"
        with world.engine.connect() as conn:
            row = conn.execute(select(session_t.c.national_id, session_t.c.attributes)).one()
            link = conn.execute(select(saml_session)).mappings().one()
        assert row.national_id == "fe-pupil"  # FrEduCtId, not the transient NameID
        assert '"FrEduCtPersonAffiliation": ["eleve2d"]' in row.attributes  # OIDs read back as names
        assert link["name_id"] == "nid-pupil" and link["idp"] == "educonnect" and link["session_index"]

        # the SSO session serves the next app without another national login
        r = browser.get(world.cas_login_url(), allow_redirects=False, timeout=10)
        assert r.status_code == 302 and "ticket=ST-" in r.headers["Location"]
    finally:
        world.stop()


def test_the_sp_metadata_is_what_pysaml2_trusts(world):
    """pysaml2 read our metadata (published keys, ACS, SLO) and verified our signed AuthnRequest with it."""
    from saml2.mdstore import MetadataStore

    body = Browser().get(world.url + "/saml/metadata", timeout=10)
    assert body.headers["Content-Type"] == "application/samlmetadata+xml"
    store = MetadataStore(attrc=None, config=world.idp.server.config)
    store.load("inline", body.text)
    sp = store.service_providers()
    assert sp == [world.entity_id]
    acs = store.assertion_consumer_service(world.entity_id, "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST")
    assert [a["location"] for a in acs] == [world.acs]
    assert len(store.certs(world.entity_id, "spsso", "signing")) == 1


def test_authn_requests_over_the_post_binding_when_the_idp_has_only_that(sqlite_engine, tmp_path):
    world = SpWorld(sqlite_engine, tmp_path, idp_options={"sso_bindings": ("post",)})
    try:
        world.idp.user = PUPIL
        browser = Browser()
        r = browser.go(world.cas_login_url())
        assert r.text == "app page", r.text
        assert any(urlsplit(u).path == "/idp/sso/post" for u in browser.trail)  # pysaml2 checked the XML signature
    finally:
        world.stop()


def test_a_parent_matched_by_vector_with_other_case_and_accents(world):
    world.idp.user = ("nid-parent", {AFFILIATION: ["resp2d"], "FrEduVecteur": ["2|MARTIN|luc|R2001|0750002B"]})
    r = Browser().go(world.cas_login_url())
    assert r.text == "app page"
    assert cas_validate(world, ticket_of(r))[0] == "R3"


def test_several_accounts_the_user_chooses_with_a_form_bound_to_the_browser(world):
    # R1 and R2 are homonyms, both relatives of pupil 1001: the vector matches both
    world.idp.user = ("nid-parent", {AFFILIATION: ["resp2d"], "FrEduVecteur": ["2|DUPRE|Helene|R1001|0750001A"]})
    browser = Browser()
    page = browser.go(world.cas_login_url())
    assert page.status_code == 200 and "Choisissez votre compte" in page.text
    assert "responsable de Élodie" in page.text and 'value="R1"' in page.text and 'value="R2"' in page.text
    assert not world.events("sso.login.succeeded")

    # another browser cannot use this choice, even with the token (login CSRF)
    stranger = Browser()
    r = stranger.submit(page, account="R2")
    assert r.status_code == 400 and "expiré" in r.text
    # a choice outside the candidates is refused; a post from another site too
    assert browser.submit(page, account="1001").status_code == 400
    assert browser.post(world.url + "/saml/choose", data={"account": "R2"}, headers={"Origin": "https://evil.example"},
                        timeout=10).status_code == 403
    r = browser.submit(page, account="R2")
    assert r.text == "app page", r.text
    assert cas_validate(world, ticket_of(r))[0] == "R2"
    assert browser.submit(page, account="R2").status_code == 400  # used up


def test_no_account_a_page_that_says_what_to_do_and_an_audit_event(world, caplog):
    caplog.set_level(logging.INFO)
    world.idp.user = ("nid-x", {AFFILIATION: ["eleve2d"], "FrEduVecteur": ["4|||R9999|0750001A"],
                                "FrEduCtRefId": ["{AAF}01|X|nobody"]})
    r = Browser().go(world.cas_login_url())
    assert r.status_code == 403 and "Compte introuvable" in r.text and "secrétariat" in r.text
    (event,) = world.events("sso.login.failed")
    contracts.validate_event(event)
    assert event["payload"]["reason"] == "no-account" and event["payload"]["auth_source"] == "educonnect"
    assert "R9999" not in event["payload"]["detail"] and "nobody" not in event["payload"]["detail"]
    assert not world.events("sso.login.succeeded")
    assert any("no-account" in rec.getMessage() for rec in caplog.records)


def test_encrypted_assertions_and_sp_key_rollover(sqlite_engine, tmp_path):
    """Two SP keys published at once; pysaml2 encrypts (AES-256-CBC, RSA-OAEP) to the newer one and we decrypt;
    AuthnRequests stay signed with the configured signing key, which pysaml2 verifies."""
    world = SpWorld(sqlite_engine, tmp_path, sp_keys=("sp-2025", "sp-2026"), saml={"signing_key": "sp-2025"},
                    idp_settings={"want_assertions_encrypted": True})
    try:
        world.idp.options = {"sign_assertion": True, "sign_response": True, "encrypt_assertion": True}
        world.idp.user = PUPIL
        browser = Browser()
        r = browser.get(world.cas_login_url(), timeout=10)  # stops at the IdP's auto-posting form
        action, fields = saml_form(r)
        xml = base64.b64decode(fields["SAMLResponse"]).decode()
        assert "EncryptedAssertion" in xml and "aes256-cbc" in xml and "FrEduCtRefId" not in xml
        # pysaml2 encrypted to the last encryption certificate of our metadata: sp-2026's
        assert world.idp._sp_encryption_cert(world.entity_id).encode() == world.settings.keys[1].certificate.pem
        r = browser.post(action, data=fields, timeout=10)
        assert r.text == "app page", r.text
        assert cas_validate(world, ticket_of(r))[0] == "1001"

        # pysaml2's own cipher, 3DES-CBC, is refused (unless allow_legacy_algorithms)
        world.idp.cipher = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
        assert Browser().go(world.cas_login_url()).status_code == 400
        assert world.events("sso.login.failed")[-1]["payload"]["reason"] == "weak-algorithm"
        # an IdP that does not encrypt is refused when encryption is required
        world.idp.options = {"sign_assertion": True}
        r = Browser().go(world.cas_login_url())
        assert r.status_code == 400 and "Connexion refusée" in r.text
        assert world.events("sso.login.failed")[-1]["payload"]["reason"] == "not-encrypted"
    finally:
        world.stop()


def test_legacy_algorithms_when_an_idp_is_allowed_them(sqlite_engine, tmp_path):
    world = SpWorld(sqlite_engine, tmp_path, idp_settings={"allow_legacy_algorithms": True})
    try:
        world.idp.sign_alg = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        world.idp.digest_alg = "http://www.w3.org/2000/09/xmldsig#sha1"
        world.idp.cipher = "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"
        world.idp.options = {"sign_assertion": True, "encrypt_assertion": True}
        world.idp.user = PUPIL
        assert Browser().go(world.cas_login_url()).text == "app page"
    finally:
        world.stop()


def test_response_signed_instead_of_assertion_and_the_signed_assertion_requirement(sqlite_engine, tmp_path):
    world = SpWorld(sqlite_engine, tmp_path)
    try:
        world.idp.options = {"sign_assertion": False, "sign_response": True}
        world.idp.user = PUPIL
        assert Browser().go(world.cas_login_url()).text == "app page"
    finally:
        world.stop()
    world = SpWorld(sqlite_engine, tmp_path / "2", idp_settings={"want_assertions_signed": True}, directory=False)
    try:
        world.idp.options = {"sign_assertion": False, "sign_response": True}
        world.idp.user = PUPIL
        r = Browser().go(world.cas_login_url())
        assert r.status_code == 400
        assert world.events("sso.login.failed")[-1]["payload"]["reason"] == "assertion-unsigned"
    finally:
        world.stop()


def test_sha1_signatures_are_refused(sqlite_engine, tmp_path):
    world = SpWorld(sqlite_engine, tmp_path)
    try:
        world.idp.sign_alg = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
        world.idp.digest_alg = "http://www.w3.org/2000/09/xmldsig#sha1"
        world.idp.user = PUPIL
        assert Browser().go(world.cas_login_url()).status_code == 400
        assert world.events("sso.login.failed")[-1]["payload"]["reason"] == "weak-algorithm"
    finally:
        world.stop()


def test_force_authn_from_cas_renew_reaches_the_idp(world):
    world.idp.user = PUPIL
    browser = Browser()
    assert browser.go(world.cas_login_url()).text == "app page"
    seen = []
    original = world.idp.answer

    def spy(authn_request):
        seen.append(authn_request.force_authn)
        return original(authn_request)

    world.idp.answer = spy
    r = browser.go(world.cas_login_url() + "&renew=true")
    assert r.text == "app page" and seen == ["true"]
    user, attributes, _ = CASClientV3(service_url=world.app_url + "home", server_url=world.url + "/cas/",
                                      renew=True).verify_ticket(ticket_of(r))
    assert user == "1001" and attributes["isFromNewLogin"] == "true"


def test_a_login_started_on_one_instance_finishes_on_another(engine, tmp_path):
    world = SpWorld(engine, tmp_path, instances=2)
    try:
        world.idp.user = PUPIL
        browser = Browser()
        # the AuthnRequest leaves from instance 2; the IdP answers to the deployment's ACS (instance 1)
        r = browser.get(world.urls[1] + "/saml/login", timeout=10,
                        params={"next": "/cas/login?service=" + quote(world.app_url + "home", safe="")})
        action, fields = saml_form(r)
        assert action.startswith(world.urls[0])
        r = browser.post(action, data=fields, timeout=10)
        assert r.text == "app page", r.text
        assert cas_validate(world, ticket_of(r))[0] == "1001"
    finally:
        world.stop()
