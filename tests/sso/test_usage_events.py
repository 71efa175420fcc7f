"""The events the usage statistics count (sso.login.succeeded, sso.cas.ticket.validated, sso.saml.response.sent),
written by real logins: a pysaml2 national IdP, our SAML SP matching against the real directory (filled by the
real AAF importer), CAS tickets validated over HTTP, a pysaml2 platform answered by our SAML IdP. Each event has
exactly its declared fields, passes its contract, and carries the session's profile, structure (UAI) and level,
never a URL, a ticket, a name or an e-mail address."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import orjson
import requests
from sqlalchemy import select

from relais.bus import contracts
from relais.bus.tables import outbox
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from services.sso.sp.config import parse_saml
from services.sso.sp.messages import sp_metadata
from services.sso.tables import session as session_t
from tests import aaf_builder as aaf
from tests.saml_peers import AFFILIATION, FRED_CT_ID, Browser, PysamlIdp, SpWorld, key_pair
from tests.sso.test_saml_idp import IdpWorld

UAI, OTHER_UAI = "0750001A", "0750002B"
MEF = "10010012110"
USAGE_FIELDS = {"profile", "structure", "level"}
PUPIL = ("nid-pupil", {AFFILIATION: ["eleve2d"], "FrEduCtRefId": ["{AAF}01|X|1001"], FRED_CT_ID: ["fe-pupil"],
                       "urn:oid:2.5.4.4": ["NOM1001"]})


def import_directory(engine, folder: Path) -> None:
    """Pupil 1001 (with a MEF) in S1 and 2001 in S2; R1 and R2, homonyms, relatives of 1001; teacher T1 in S1."""
    runs = [("EtabEducNat", [aaf.school("S1", UAI), aaf.school("S2", OTHER_UAI)]),
            ("PersRelEleve", [aaf.relative("R1"), aaf.relative("R2")]),
            ("Eleve", [aaf.pupil("1001", structure="S1", klass="6A", relatives=["R1", "R2"], ENTEleveMEF=MEF),
                       aaf.pupil("2001", structure="S2", klass="3C")]),
            ("PersEducNat", [aaf.add("PersEducNat", "T1", ENTPersonJointure="T1", sn="Prof", givenName="Anne",
                                     mail="Anne.Prof@ac-test.fr", ENTPersonStructRattach="S1",
                                     ENTPersonProfils="National_ENS")])]
    for n, (family, records) in enumerate(runs):
        path = aaf.write(folder, f"P_Complet_2026090{n}_{family}_0000.xml", *records)
        assert DirectoryImporter(engine, "test", ImportOptions()).run([path]).ok


def ticket_of(response) -> str:
    return parse_qs(urlsplit(response.url).query)["ticket"][0]


def validate_ticket(world: SpWorld, ticket: str) -> requests.Response:
    r = requests.get(world.url + "/cas/serviceValidate", params={"ticket": ticket, "service": world.app_url + "home"},
                     timeout=10)
    assert r.status_code == 200
    return r


def events(engine, type_: str) -> list[dict]:
    with engine.connect() as conn:
        return [orjson.loads(b) for (b,) in conn.execute(select(outbox.c.body).where(outbox.c.type == type_))]


def checked(event: dict, fields: set[str]) -> dict:
    """The payload of an event that passes its contract and has exactly `fields`, none of them a URL."""
    contracts.validate_event(event)
    payload = event["payload"]
    assert set(payload) == fields, payload
    assert "http" not in json.dumps(payload) and "ST-" not in json.dumps(payload)
    return payload


def test_a_pupil_s_login_and_cas_validations_carry_profile_structure_and_level(engine, tmp_path):
    """On SQLite and PostgreSQL (the validation reads the session's facts in its UPDATE … RETURNING)."""
    world = SpWorld(engine, tmp_path, directory=False)
    import_directory(engine, tmp_path)
    try:
        world.idp.user = PUPIL
        browser = Browser()
        r = browser.go(world.cas_login_url())
        assert r.text == "app page", r.text
        (login,) = events(world.engine, "sso.login.succeeded")
        facts = {"profile": "National_ELV", "structure": UAI, "level": MEF}
        assert checked(login, {"session", "person", "auth_source"} | USAGE_FIELDS) == {
            "session": login["payload"]["session"], "person": "1001", "auth_source": "educonnect", **facts}
        with world.engine.connect() as conn:
            ref = conn.execute(select(session_t.c.ref)).scalar_one()
        assert login["payload"]["session"] == ref  # the public reference, not the cookie's session id
        assert browser.cookies.get("relais_sso") not in json.dumps(login)

        assert "<cas:user>1001</cas:user>" in validate_ticket(world, ticket_of(r)).text
        (validated,) = events(world.engine, "sso.cas.ticket.validated")
        assert checked(validated, {"session", "person", "service"} | USAGE_FIELDS) == {
            "session": ref, "person": "1001", "service": "app", **facts}

        # the session's next app: a second validation, a second event; a ticket presented again: none
        r = browser.go(world.cas_login_url())
        ticket = ticket_of(r)
        validate_ticket(world, ticket)
        assert "INVALID_TICKET" in validate_ticket(world, ticket).text
        assert [e["payload"] for e in events(world.engine, "sso.cas.ticket.validated")] == [validated["payload"]] * 2
    finally:
        world.stop()


def test_a_parent_s_structure_is_the_vector_s_and_a_chosen_account_keeps_its_facts(sqlite_engine, tmp_path):
    """R1 and R2 (homonyms) have no structure of their own: the UAI is the one their EduConnect vector names;
    the user chooses R2, and the session gets R2's facts (kept with the pending choice)."""
    world = SpWorld(sqlite_engine, tmp_path, directory=False)
    import_directory(sqlite_engine, tmp_path)
    try:
        world.idp.user = ("nid-parent", {AFFILIATION: ["resp2d"], "FrEduVecteur": ["2|DUPRE|Helene|R1001|0750001A"]})
        browser = Browser()
        page = browser.go(world.cas_login_url())
        assert "Choisissez votre compte" in page.text
        assert not events(world.engine, "sso.login.succeeded")
        r = browser.submit(page, account="R2")
        assert r.text == "app page", r.text
        (login,) = events(world.engine, "sso.login.succeeded")
        payload = checked(login, {"session", "person", "auth_source"} | USAGE_FIELDS)
        assert (payload["person"], payload["structure"], payload["level"]) == ("R2", UAI, None)
        assert payload["profile"] == "National_TUT"
        validate_ticket(world, ticket_of(r))
        (validated,) = events(world.engine, "sso.cas.ticket.validated")
        assert checked(validated, {"session", "person", "service"} | USAGE_FIELDS) == {
            "session": payload["session"], "person": "R2", "service": "app", "profile": "National_TUT",
            "structure": UAI, "level": None}
    finally:
        world.stop()


def test_a_teacher_s_structure_is_the_uai_of_their_attachment(sqlite_engine, tmp_path):
    world = SpWorld(sqlite_engine, tmp_path, directory=False, idp_settings={"kind": "agents", "label": "Personnels"})
    import_directory(sqlite_engine, tmp_path)
    try:
        world.idp.user = ("agent-1", {"urn:oid:0.9.2342.19200300.100.1.3": ["Anne.Prof@ac-test.fr"]})
        r = Browser().go(world.cas_login_url())
        assert r.text == "app page", r.text
        (login,) = events(world.engine, "sso.login.succeeded")
        payload = checked(login, {"session", "person", "auth_source"} | USAGE_FIELDS)
        assert (payload["person"], payload["profile"], payload["structure"], payload["level"]) == (
            "T1", "National_ENS", UAI, None)
    finally:
        world.stop()


def test_a_saml_response_to_a_platform_is_published_with_the_session_s_facts(sqlite_engine, tmp_path):
    """Platform (pysaml2 SP) -> our IdP -> our SP -> a pysaml2 national IdP -> our SP -> our IdP -> platform."""
    national = PysamlIdp(tmp_path)
    sp_key, sp_cert = key_pair("sp-2025").write(tmp_path / "keys", "sp-2025")
    saml = {"keys": [{"id": "sp-2025", "key_file": str(sp_key), "cert_file": str(sp_cert)}],
            "requested_attributes": ["FrEduCtPersonAffiliation", "FrEduCtId", "FrEduCtRefId"],
            "idps": [{"id": "educonnect", "kind": "educonnect", "label": "ÉduConnect",
                      "metadata_url": f"{national.base}/idp/metadata"}]}
    world = IdpWorld(sqlite_engine, tmp_path, {"maths": ({}, {"attributes": ["GARPersonProfils"]})}, saml=saml,
                     directory=False)
    import_directory(sqlite_engine, tmp_path)
    try:
        national.trust_sp(sp_metadata(parse_saml(world.config.saml, where="t", base_url=world.url)))
        national.user = PUPIL
        maths = world.platforms["maths"]
        url, _ = maths.login_url(relay_state="chain")
        browser = world.browser()
        r = browser.go(url, max_forms=8)
        assert r.text.startswith("platform: welcome"), (r.text, maths.errors)
        (login,) = [e["payload"] for e in events(world.engine, "sso.login.succeeded")]
        (sent,) = events(world.engine, "sso.saml.response.sent")
        assert checked(sent, {"session", "person", "platform"} | USAGE_FIELDS) == {
            "session": login["session"], "person": "1001", "platform": "maths", "profile": "National_ELV",
            "structure": UAI, "level": MEF}

        # IdP-initiated, on the same session: one more; a passive request without a session is answered with
        # an error status, and writes nothing
        r = browser.go(f"{world.url}/idp/launch/maths")
        assert r.text.startswith("platform: welcome"), (r.text, maths.errors)
        assert len(events(world.engine, "sso.saml.response.sent")) == 2
        url, _ = maths.login_url(is_passive="true")
        r = world.browser().go(url)
        assert r.status_code == 403 and "StatusNoPassive" in maths.errors[-1]
        assert len(events(world.engine, "sso.saml.response.sent")) == 2
    finally:
        world.stop()
        national.stop()


def test_a_session_opened_without_facts_sends_nulls(sqlite_engine, tmp_path):
    """A session opened before the facts existed (or for a person the directory says nothing of): null facts,
    and the events still pass their contracts."""
    world = IdpWorld(sqlite_engine, tmp_path, {"maths": ({}, {})}, directory=False)
    import_directory(sqlite_engine, tmp_path)
    try:
        r = world.browser(world.login("1001")).go(f"{world.url}/idp/launch/maths")
        assert r.text.startswith("platform: welcome"), r.text
        (sent,) = events(world.engine, "sso.saml.response.sent")
        payload = checked(sent, {"session", "person", "platform"} | USAGE_FIELDS)
        assert {k: payload[k] for k in USAGE_FIELDS} == dict.fromkeys(USAGE_FIELDS)
    finally:
        world.stop()
