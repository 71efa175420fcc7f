"""Attacks on the assertion consumer service, each refused with its reason (logged, audited, no session).

Responses are made by hand and signed with python3-saml's signer using the
trusted IdP's key (what a genuine IdP would send), then tampered with the way
published attacks do: XML signature wrapping (Somorovsky et al., "On Breaking
SAML", 2012: moved, duplicated and nested assertions, signatures pointing
elsewhere), comments inside signed text (CVE-2017-11427 and kin), unsigned or
foreign-signed assertions, stale or early ones, wrong audience, recipient,
destination or issuer, replays (also across two instances on one database),
and answers to requests that were never made.
"""

from __future__ import annotations

import copy
import logging
import re
import subprocess
import threading
from datetime import timedelta

import pytest
from lxml import etree

from tests.saml_peers import SAML_NS, SAMLP_NS, XMLSEC1, Browser, SpWorld, b64, key_pair, sign

A = f"{{{SAML_NS}}}"
P = f"{{{SAMLP_NS}}}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"


@pytest.fixture
def world(sqlite_engine, tmp_path):
    w = SpWorld(sqlite_engine, tmp_path, idp="forged")
    yield w
    w.stop()


@pytest.fixture
def browser():
    return Browser()


def refusal(world, browser, response_xml, caplog, base=None) -> str:
    """Post a response; it must be refused without a session: returns the logged reason."""
    caplog.clear()
    before = len(world.events("sso.login.succeeded"))
    r = world.post(browser, response_xml, base=base)
    assert r.status_code in (400, 401, 403), (r.status_code, r.headers.get("Location"))
    assert "relais_sso=" not in r.headers.get("Set-Cookie", "")
    assert len(world.events("sso.login.succeeded")) == before
    lines = [rec.getMessage() for rec in caplog.records if "SAML login refused" in rec.getMessage()]
    assert len(lines) == 1, lines
    assert "Référence de l'incident" in r.text.replace("&#x27;", "'")
    return re.search(r"refused: (\S+) \(", lines[0]).group(1)


def accepted(world, browser, response_xml, base=None):
    r = world.post(browser, response_xml, base=base)
    assert r.status_code == 302 and r.headers["Location"].startswith("/cas/login"), r.text
    assert "relais_sso=" in r.headers["Set-Cookie"]
    return r


def tree(xml: bytes) -> etree._Element:
    return etree.fromstring(xml)


def assertion_of(root):
    return root.find(f"{A}Assertion")


@pytest.fixture(autouse=True)
def _log_level(caplog):
    caplog.set_level(logging.INFO)


# -- the baseline, and what a signature is over -------------------------------------------------

def test_a_genuine_response_is_accepted_then_never_again(world, browser, caplog):
    rid = world.start(browser)
    genuine = world.forge(rid)
    accepted(world, browser, genuine)
    assert refusal(world, browser, genuine, caplog) == "replay"
    (event,) = [e for e in world.events("sso.login.failed") if e["payload"]["reason"] == "replay"]
    assert "incident" in event["payload"]["detail"]


def test_unsigned_and_foreign_signed_and_tampered_assertions(world, browser, caplog):
    assert refusal(world, browser, world.forge(world.start(browser), part=None), caplog) == "unsigned"
    attacker = key_pair("attacker")
    assert refusal(world, browser, world.forge(world.start(browser), keys=attacker), caplog) == "signature-invalid"
    # the attacker's certificate inside the signature's KeyInfo is not a key we trust
    signed = world.forge(world.start(browser), keys=attacker)
    assert attacker.cert_base64[:40] in signed.decode().replace("\n", "")
    # tampering after signing: another account's reference
    rid = world.start(browser)
    tampered = world.forge(rid).replace(b"{AAF}01|X|1001", b"{AAF}01|X|1002")
    assert refusal(world, browser, tampered, caplog) == "signature-invalid"
    both_wrong = world.forge(world.start(browser), part="response", keys=attacker)
    assert refusal(world, browser, both_wrong, caplog) == "signature-invalid"


def test_comments_inside_signed_text_are_refused(world, browser, caplog, tmp_path):
    """`1001<!---->2`: exclusive c14n ignores the comment, so the signature still verifies (xmlsec1 says so);
    a reader stopping at the first text node would see 1001. We refuse comments outright."""
    for target in (b"{AAF}01|X|10012", b"nid-1"):
        rid = world.start(browser)
        genuine = world.forge(rid, name_id="nid-1", attributes={
            "urn:oid:1.3.6.1.4.1.20326.10.999.1.7": ["eleve2d"], "FrEduCtRefId": ["{AAF}01|X|10012"]})
        attacked = genuine.replace(target, target[:-1] + b"<!---->" + target[-1:], 1)
        assert attacked != genuine
        signed_part = etree.fromstring(attacked).find(f"{A}Assertion")  # checked on its own by xmlsec1
        (tmp_path / "a.xml").write_bytes(etree.tostring(signed_part))
        (tmp_path / "idp.pem").write_bytes(world.idp_keys.cert_pem)
        verdict = subprocess.run([XMLSEC1, "--verify", "--pubkey-cert-pem", str(tmp_path / "idp.pem"),
                                  "--id-attr:ID", "Assertion", str(tmp_path / "a.xml")], capture_output=True, text=True)
        assert verdict.returncode == 0, verdict.stderr  # the attack is real: the signature holds
        assert refusal(world, browser, attacked, caplog) == "xml-comment"


# -- XML signature wrapping ----------------------------------------------------------------------

def forged_assertion(world, original: etree._Element, jointure: str = "1002") -> etree._Element:
    """An unsigned copy of an assertion naming another account."""
    forged = copy.deepcopy(original)
    for sig in forged.findall(f"{DS}Signature"):
        forged.remove(sig)
    for value in forged.iter(f"{A}AttributeValue"):
        if value.text and value.text.startswith("{AAF}"):
            value.text = f"{{AAF}}01|X|{jointure}"
    return forged


def wrapping_variants(world, rid):
    """(name, xml) of the classic wrapping attacks, built from a genuinely signed response."""
    out = []
    genuine = tree(world.forge(rid))
    original = assertion_of(genuine)

    # 1. signed assertion moved into Extensions, a forged one (same ID) where the reader looks
    root = copy.deepcopy(genuine)
    signed = assertion_of(root)
    extensions = etree.Element(f"{P}Extensions")
    root.insert(1, extensions)
    root.replace(signed, forged_assertion(world, original))
    extensions.append(signed)
    out.append(("moved-signed-assertion-same-id", root))

    # 2. the same with a fresh ID on the forged assertion
    root = copy.deepcopy(out[0][1])
    assertion_of(root).set("ID", "_forged")
    out.append(("moved-signed-assertion-new-id", root))

    # 3./4. an extra unsigned assertion before, then after, the signed one
    for where in ("before", "after"):
        root = copy.deepcopy(genuine)
        signed = assertion_of(root)
        forged = forged_assertion(world, original)
        forged.set("ID", "_extra")
        (signed.addprevious if where == "before" else signed.addnext)(forged)
        out.append((f"extra-assertion-{where}", root))

    # 5. the signed assertion nested inside the forged one (in its Advice, then in its Signature's Object)
    root = copy.deepcopy(genuine)
    signed = assertion_of(root)
    forged = forged_assertion(world, original)
    forged.set("ID", "_outer")
    advice = etree.SubElement(forged, f"{A}Advice")
    root.replace(signed, forged)
    advice.append(signed)
    out.append(("signed-assertion-in-advice", root))

    root = copy.deepcopy(genuine)
    signed = assertion_of(root)
    forged = forged_assertion(world, original)
    forged.set("ID", "_outer2")
    stolen = copy.deepcopy(signed.find(f"{DS}Signature"))
    etree.SubElement(stolen, f"{DS}Object").append(copy.deepcopy(signed))
    forged.insert(1, stolen)
    root.replace(signed, forged)
    out.append(("signed-assertion-in-signature-object", root))

    # 6. a forged assertion carrying the genuine assertion's signature (which references the genuine ID)
    root = copy.deepcopy(genuine)
    signed = assertion_of(root)
    forged = forged_assertion(world, original)
    forged.set("ID", "_carrier")
    forged.insert(1, copy.deepcopy(signed.find(f"{DS}Signature")))
    root.replace(signed, forged)
    out.append(("signature-referencing-another-id", root))

    # 7. xml:id on a forged assertion, to be found by ID before the genuine one
    root = copy.deepcopy(genuine)
    forged = forged_assertion(world, original)
    forged.set("{http://www.w3.org/XML/1998/namespace}id", original.get("ID"))
    del forged.attrib["ID"]
    assertion_of(root).addprevious(forged)
    out.append(("xml-id-injection", root))
    return out


EXPECTED_WRAPPING = {
    "moved-signed-assertion-same-id": "duplicate-id",
    "moved-signed-assertion-new-id": "assertion-count",
    "extra-assertion-before": "assertion-count",
    "extra-assertion-after": "assertion-count",
    "signed-assertion-in-advice": "assertion-count",
    "signed-assertion-in-signature-object": "assertion-count",
    "signature-referencing-another-id": "signature-reference",
    "xml-id-injection": "duplicate-id",
}


def test_assertion_signature_wrapping_variants(world, browser, caplog):
    rid = world.start(browser)
    reasons = {name: refusal(world, browser, etree.tostring(root), caplog)
               for name, root in wrapping_variants(world, rid)}
    assert reasons == EXPECTED_WRAPPING
    accepted(world, browser, world.forge(rid))  # the request was not burnt by the attempts


def test_response_signature_wrapping_variants(world, browser, caplog):
    rid = world.start(browser)
    genuine = tree(world.forge(rid, part="response"))  # only the Response is signed

    # the signed Response wrapped inside a new, unsigned one carrying a forged assertion
    outer = copy.deepcopy(genuine)
    outer.set("ID", "_outer")
    outer.remove(outer.find(f"{DS}Signature"))
    forged = forged_assertion(world, assertion_of(genuine))
    forged.set("ID", "_forged")
    outer.replace(assertion_of(outer), forged)
    extensions = etree.Element(f"{P}Extensions")
    outer.insert(1, extensions)
    extensions.append(copy.deepcopy(genuine))
    assert refusal(world, browser, etree.tostring(outer), caplog) == "assertion-count"

    # the same, keeping the genuine signature on the outer Response (it references the inner one's ID)
    outer2 = copy.deepcopy(outer)
    outer2.insert(1, copy.deepcopy(genuine.find(f"{DS}Signature")))
    assert refusal(world, browser, etree.tostring(outer2), caplog) == "signature-reference"

    # the Response's signature moved onto the (unsigned) assertion: it references the Response
    moved = copy.deepcopy(genuine)
    signature = moved.find(f"{DS}Signature")
    moved.remove(signature)
    assertion_of(moved).insert(1, signature)
    assert refusal(world, browser, etree.tostring(moved), caplog) == "signature-reference"

    # a signature somewhere else than on the Response or the assertion (here in Extensions) is refused
    stray = tree(world.forge(rid))  # assertion signed, Response not
    extensions = etree.Element(f"{P}Extensions")
    stray.insert(1, extensions)
    extensions.append(copy.deepcopy(assertion_of(stray).find(f"{DS}Signature")))
    assert refusal(world, browser, etree.tostring(stray), caplog) == "signature-structure"
    accepted(world, browser, etree.tostring(genuine))


# -- time, audience, recipient, destination, issuer -------------------------------------------------

def test_expired_and_not_yet_valid_with_the_configured_skew(world, browser, caplog):
    rid = world.start(browser)
    response = world.forge(rid)  # valid 5 minutes; the default skew is 120 s
    world.clock.offset = timedelta(minutes=5, seconds=130)
    assert refusal(world, browser, response, caplog) == "expired"
    world.clock.offset = timedelta(minutes=-3)
    assert refusal(world, browser, response, caplog) == "not-yet-valid"
    world.clock.offset = timedelta(minutes=5, seconds=100)  # late, but within the skew
    accepted(world, browser, response)


def test_a_zero_skew_is_honoured(sqlite_engine, tmp_path, browser, caplog):
    world = SpWorld(sqlite_engine, tmp_path, idp="forged", saml={"clock_skew": 0})
    try:
        rid = world.start(browser)
        response = world.forge(rid)
        world.clock.offset = timedelta(minutes=5, seconds=1)
        assert refusal(world, browser, response, caplog) == "expired"
    finally:
        world.stop()


@pytest.mark.parametrize("field,value,reason", [
    ("audience", "https://other-sp.example/metadata", "wrong-audience"),
    ("recipient", "https://evil.example/saml/acs", "wrong-recipient"),
    ("recipient", "https://evil.example/?next={acs}", "wrong-recipient"),  # contains our ACS: not enough
    ("destination", "https://evil.example/saml/acs", "wrong-destination"),
    ("issuer", "https://other-idp.example/metadata", "wrong-issuer"),
])
def test_wrong_audience_recipient_destination_issuer(world, browser, caplog, field, value, reason):
    rid = world.start(browser)
    assert refusal(world, browser, world.forge(rid, **{field: value.format(acs=world.acs)}), caplog) == reason


def test_the_idp_status_and_a_fresh_authentication(world, browser, caplog):
    rid = world.start(browser)
    failed = world.forge(rid).replace(b"status:Success", b"status:Responder")
    assert refusal(world, browser, failed, caplog) == "idp-status"
    # renew (ForceAuthn): an authentication older than the request is refused
    rid = world.start(browser, force_authn="true")
    old = world.forge(rid, authn_instant=world.clock() - timedelta(hours=1))
    assert refusal(world, browser, old, caplog) == "stale-authentication"


def test_conditions_we_do_not_understand_are_refused(world, browser, caplog):
    rid = world.start(browser)
    xml = world.forge(rid, part=None).replace(
        b"</saml:AudienceRestriction>", b'</saml:AudienceRestriction><saml:Condition xmlns:xsi='
        b'"http://www.w3.org/2001/XMLSchema-instance" xsi:type="x:Delegation"/>')
    assert refusal(world, browser, sign(xml, world.idp_keys), caplog) == "unsupported-condition"


# -- requests that were never made, and replays ----------------------------------------------------

def test_in_response_to_must_name_a_request_of_this_browser(world, browser, caplog):
    rid = world.start(browser)
    other = world.start(browser)
    assert refusal(world, browser, world.forge(None), caplog) == "unsolicited"
    assert refusal(world, browser, world.forge("_never_sent"), caplog) == "unknown-request"
    # the Response answers one request, its assertion another
    mixed = sign(world.forge(rid, part=None).replace(f'InResponseTo="{rid}"'.encode(),
                                                      f'InResponseTo="{other}"'.encode(), 1), world.idp_keys)
    assert refusal(world, browser, mixed, caplog) == "in-response-to-mismatch"
    # a response to a login started in another browser (an attacker's own login, pushed into a victim's browser)
    assert refusal(world, Browser(), world.forge(rid), caplog) == "browser-mismatch"
    # an expired request
    world.clock.offset = timedelta(seconds=601)
    assert refusal(world, browser, world.forge(rid), caplog) == "request-expired"


def test_an_idp_reusing_an_assertion_id_for_another_login_is_a_replay(world, browser, caplog):
    first, second = world.start(browser), world.start(browser)
    accepted(world, browser, world.forge(first, assertion_id="_same"))
    assert refusal(world, browser, world.forge(second, assertion_id="_same"), caplog) == "replay"


def test_replays_across_two_instances_on_one_database(engine, tmp_path, browser, caplog):
    world = SpWorld(engine, tmp_path, idp="forged", instances=2)
    try:
        one, two = world.urls
        rid = world.start(browser, base=two)
        response = world.forge(rid)
        accepted(world, browser, response, base=one)
        assert refusal(world, browser, response, caplog, base=two) == "replay"

        # the same response raced on both instances: exactly one session
        rid = world.start(browser, base=one, force_authn="true")  # (the browser has a session by now)
        response = world.forge(rid)
        results = []

        def post(base):
            results.append(world.post(browser, response, base=base).status_code)

        threads = [threading.Thread(target=post, args=(b,)) for b in (one, two)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [302, 400]
        assert len(world.events("sso.login.succeeded")) == 2
    finally:
        world.stop()


# -- what never parses ------------------------------------------------------------------------------

def test_malformed_and_hostile_documents(world, browser, caplog):
    rid = world.start(browser)
    r = browser.post(world.acs, data={"SAMLResponse": "not base64!"}, allow_redirects=False, timeout=10)
    assert r.status_code == 400
    bomb = ('<?xml version="1.0"?><!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;">]>'
            + world.forge(rid).decode().replace("nid-1", "&b;"))
    assert refusal(world, browser, bomb, caplog) == "dtd-refused"
    xxe = '<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + world.forge(rid).decode()
    assert refusal(world, browser, xxe, caplog) == "dtd-refused"
    assert refusal(world, browser, "<samlp:AuthnRequest xmlns:samlp='urn:oasis:names:tc:SAML:2.0:protocol'/>",
                   caplog) == "malformed"
    r = browser.post(world.acs, data={"SAMLResponse": b64(b"x" * 600_000)}, allow_redirects=False, timeout=10)
    assert r.status_code == 400
    assert any("too-large" in rec.getMessage() for rec in caplog.records)
    r = browser.post(world.acs, data={"SAMLResponse": "A" * 2_000_000}, allow_redirects=False, timeout=10)
    assert r.status_code == 413  # not even read


def test_refusals_are_logged_without_secrets(world, browser, caplog):
    rid = world.start(browser)
    tampered = world.forge(rid, name_id="secret-name-id").replace(b"{AAF}01|X|1001", b"{AAF}01|X|1002")
    refusal(world, browser, tampered, caplog)
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "secret-name-id" not in text and b64(tampered)[:40] not in text and "1002" not in text
    assert browser.cookies.get("relais_sso_saml") not in text
