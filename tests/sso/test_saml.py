"""The SAML SP's ground: signatures and messages judged by tools we did not write, configuration, IdP metadata
(signed, expiring, refreshed from a URL, kept in the database), and the command line."""

from __future__ import annotations

import base64
import json
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml
from click.testing import CliRunner
from lxml import etree
from onelogin.saml2.xml_utils import OneLogin_Saml2_XML
from werkzeug.wrappers import Request, Response

from services.sso.config import ConfigError
from services.sso.saml.bindings import encode, inflate_b64
from services.sso.saml.keys import Certificate
from services.sso.saml.metadata import parse_duration
from services.sso.saml.signatures import sign_enveloped
from services.sso.saml.xml import BINDING_POST, MD, Refused, new_id, serialize
from services.sso.sp.config import parse_saml
from services.sso.sp.messages import authn_request, logout_request, sp_metadata
from services.sso.sp.trusted_idps import IdpSource, parse_idp_metadata
from tests.saml_peers import XMLSEC1, Serving, idp_metadata_xml, key_pair

NOW = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)


def saml_section(tmp_path: Path, keys=("sp-2025",), **extra) -> dict:
    entries = []
    for name in keys:
        key, cert = key_pair(name).write(tmp_path / "keys", name)
        entries.append({"id": name, "key_file": str(key), "cert_file": str(cert)})
    metadata = tmp_path / "idp.xml"
    if not metadata.exists():
        metadata.write_bytes(idp_metadata_xml("https://idp.test/metadata", key_pair("idp-signing"),
                                              sso="https://idp.test/sso", slo="https://idp.test/slo"))
    return {"keys": entries, "requested_attributes": ["FrEduCtId", "FrEduVecteur"],
            "idps": [{"id": "educonnect", "kind": "educonnect", "metadata_file": str(metadata)}], **extra}


def settings(tmp_path, **kw):
    return parse_saml(saml_section(tmp_path, **kw), where="t", base_url="https://ent.example.org")


def xmlsec1_verifies(document: bytes, cert_pem: bytes, folder: Path, id_attr: str) -> bool:
    """The xmlsec1 command-line tool's verdict on an enveloped signature."""
    doc, cert = folder / "doc.xml", folder / "cert.pem"
    doc.write_bytes(document)
    cert.write_bytes(cert_pem)
    result = subprocess.run([XMLSEC1, "--verify", "--pubkey-cert-pem", str(cert), "--id-attr:ID", id_attr, str(doc)],
                            capture_output=True, text=True, timeout=30)
    return result.returncode == 0


# -- signatures and messages, judged by others --------------------------------------------------

def test_lxml_and_xmlsec_sign_and_verify_together_as_xmlsec1_sees_it(tmp_path):
    """lxml and xmlsec share one libxml2 (pinned as a pair): a signature we make, xmlsec1 verifies."""
    s = settings(tmp_path)
    message = authn_request(request_id=new_id(), now=NOW, destination="https://idp.test/sso", settings=s,
                            force_authn=True)
    sign_enveloped(message, s.signing_key, after=message[0])
    signed = serialize(message)
    assert xmlsec1_verifies(signed, s.signing_key.certificate.pem, tmp_path, "AuthnRequest")
    tampered = signed.replace(b'ForceAuthn="true"', b'ForceAuthn="false"')
    assert not xmlsec1_verifies(tampered, s.signing_key.certificate.pem, tmp_path, "AuthnRequest")


def test_our_messages_follow_the_saml_schemas(tmp_path):
    """python3-saml's copies of the OASIS XSDs judge our metadata, AuthnRequest and LogoutRequest."""
    s = settings(tmp_path)
    for document, schema in (
            (sp_metadata(s), "saml-schema-metadata-2.0.xsd"),
            (serialize(authn_request(request_id=new_id(), now=NOW, destination="https://idp.test/sso", settings=s,
                                     force_authn=False)), "saml-schema-protocol-2.0.xsd"),
            (serialize(logout_request(request_id=new_id(), now=NOW, destination="https://idp.test/slo", settings=s,
                                      name_id="n", name_id_format=None, name_qualifier=None, sp_name_qualifier="x",
                                      session_index="s1", lifetime=timedelta(minutes=5))),
             "saml-schema-protocol-2.0.xsd")):
        result = OneLogin_Saml2_XML.validate_xml(document, schema)
        assert not isinstance(result, str), (schema, result)


def test_metadata_publishes_every_key_for_rollover_and_is_signed(tmp_path):
    section = saml_section(tmp_path, keys=("sp-2025", "sp-2026"))
    section["keys"][1]["signing"] = False  # published for encryption first, signs later
    section["contact_email"] = "dsi@ac-test.fr"
    s = parse_saml(section, where="t", base_url="https://ent.example.org")
    document = sp_metadata(s)
    assert xmlsec1_verifies(document, key_pair("sp-2025").cert_pem, tmp_path, "EntityDescriptor")
    root = etree.fromstring(document)
    uses = [(kd.get("use"), kd.findtext(".//{http://www.w3.org/2000/09/xmldsig#}KeyName"))
            for kd in root.iter(f"{MD}KeyDescriptor")]
    assert uses == [("signing", "sp-2025"), ("encryption", "sp-2025"), ("encryption", "sp-2026")]
    acs = root.find(f".//{MD}AssertionConsumerService")
    assert acs.get("Location") == "https://ent.example.org/saml/acs" and acs.get("Binding") == BINDING_POST
    requested = {a.get("Name"): a.get("FriendlyName") for a in root.iter(f"{MD}RequestedAttribute")}
    assert requested == {"urn:oid:1.3.6.1.4.1.20326.10.999.1.57": "FrEduCtId", "FrEduVecteur": None}
    assert root.get("entityID") == "https://ent.example.org/saml/metadata"


def test_redirect_and_post_bindings_carry_signed_requests(tmp_path):
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    s = settings(tmp_path)
    message = authn_request(request_id="_r1", now=NOW, destination="https://idp.test/sso", settings=s,
                            force_authn=False)
    out = encode(message, binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect",
                 location="https://idp.test/sso?tenant=x", param="SAMLRequest", key=s.signing_key)
    query = urlsplit(out.url).query
    params = parse_qs(query)
    assert out.url.startswith("https://idp.test/sso?tenant=x&SAMLRequest=") and out.form is None
    assert b'ID="_r1"' in inflate_b64(params["SAMLRequest"][0], "x")
    # python3-saml checks the query signature the way IdPs do
    signed_query = query.split("&Signature=")[0].replace("tenant=x&", "")
    assert OneLogin_Saml2_Utils.validate_binary_sign(signed_query, base64.b64decode(params["Signature"][0]),
                                                     s.signing_key.certificate.pem.decode())
    posted = encode(authn_request(request_id="_r2", now=NOW, destination="https://idp.test/sso", settings=s,
                                  force_authn=False),
                    binding=BINDING_POST, location="https://idp.test/sso", param="SAMLRequest", key=s.signing_key)
    xml = base64.b64decode(posted.form["SAMLRequest"])
    assert OneLogin_Saml2_Utils.validate_sign(xml, s.signing_key.certificate.pem.decode(), raise_exceptions=True,
                                              xpath="/samlp:AuthnRequest/ds:Signature")


# -- configuration ----------------------------------------------------------------------------

def test_every_problem_of_the_saml_section_is_listed_with_where(tmp_path):
    section = saml_section(tmp_path)
    key_file = tmp_path / "keys" / "sp-2025.key"
    other_cert = key_pair("other").write(tmp_path / "keys", "other")[1]
    section.update(clock_skew=-1, typo=True, signing_key="nope", requested_attributes=["FrEduNope"])
    section["keys"].append({"id": "bad", "key_file": str(key_file), "cert_file": str(other_cert), "colour": "red"})
    section["keys"].append({"id": "Bad Id"})
    section["idps"].append({"id": "agents", "kind": "staff", "metadata_url": "ftp://x", "metadata_file": "/nope",
                            "refresh_interval": 5, "return_url_hosts": ["https://x/"]})
    section["idps"].append({"id": "plain", "kind": "agents", "metadata_url": "http://idp.example/md"})
    with pytest.raises(ConfigError) as err:
        parse_saml(section, where="sso.yaml", base_url="https://ent.example.org")
    text = str(err.value)
    for expected in ("sso.yaml: saml: unknown key 'typo'", "saml.clock_skew", "saml.signing_key: 'nope'",
                     "requested_attributes: 'FrEduNope'", "keys[1] (bad): unknown key 'colour'",
                     "keys[1] (bad): key_file", "do not belong together", "keys[2] (Bad Id): id",
                     "idps[1] (agents): kind", "idps[1] (agents): exactly one of metadata_url, metadata_file",
                     "idps[1] (agents): metadata_url", "idps[1] (agents): refresh_interval",
                     "idps[1] (agents): return_url_hosts", "idps[2] (plain): metadata_url: plain http needs"):
        assert expected in text, expected
    assert parse_saml({}, where="x", base_url="https://e") is None


def test_an_expired_sp_certificate_is_a_problem(tmp_path):
    old = key_pair("expired", days=-1, not_before_days=30)
    key, cert = old.write(tmp_path, "expired")
    section = saml_section(tmp_path)
    section["keys"] = [{"id": "old", "key_file": str(key), "cert_file": str(cert)}]
    with pytest.raises(ConfigError, match=r"keys\[0\] \(old\): cert_file .* expired"):
        parse_saml(section, where="t", base_url="https://e")


# -- IdP metadata ------------------------------------------------------------------------------

def signed_metadata(signer, **kw) -> bytes:
    document = idp_metadata_xml("https://idp.test/metadata", key_pair("idp-signing"), sso="https://idp.test/sso",
                                **kw)
    root = etree.fromstring(document)
    sign_enveloped(root, signer)
    return etree.tostring(root)


def test_idp_metadata_read_and_checked(tmp_path):
    s = settings(tmp_path)  # its signing key stands in for a federation's metadata signing key
    signer = s.signing_key
    document = signed_metadata(signer, valid_until=NOW + timedelta(days=2), cache_duration="PT6H")
    md = parse_idp_metadata(document, where="m.xml", now=NOW, trusted=[signer.certificate])
    assert md.entity_id == "https://idp.test/metadata" and md.signature_checked
    assert md.signing_certificates == (Certificate.from_pem(key_pair("idp-signing").cert_pem),)
    assert md.cache_duration == timedelta(hours=6) and md.endpoint("sso").location == "https://idp.test/sso"
    assert md.endpoint("slo") is None and md.hosts == {"idp.test"}

    failures = {
        "metadata-signature": lambda: parse_idp_metadata(document.replace(b"idp.test/sso", b"evil.test/sso"),
                                                         where="m", now=NOW, trusted=[signer.certificate]),
        "metadata-expired": lambda: parse_idp_metadata(document, where="m", now=NOW + timedelta(days=3)),
        "metadata-unusable": lambda: parse_idp_metadata(document, where="m", now=NOW, entity_id="https://other"),
    }
    for reason, attempt in failures.items():
        with pytest.raises(Refused) as err:
            attempt()
        assert err.value.reason == reason and "m" in err.value.detail
    unsigned = idp_metadata_xml("https://idp.test/metadata", key_pair("idp-signing"), sso="https://idp.test/sso")
    with pytest.raises(Refused, match="not signed"):
        parse_idp_metadata(unsigned, where="m", now=NOW, trusted=[signer.certificate])
    hostile = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY e "boom">]>'
               + unsigned.replace(b"<md:IDPSSO", b"&e;<md:IDPSSO"))
    with pytest.raises(Refused, match="DTD"):
        parse_idp_metadata(hostile, where="m", now=NOW)
    aggregate = (b'<md:EntitiesDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata">' + unsigned
                 + unsigned.replace(b"https://idp.test/metadata", b"https://idp2.test/metadata")
                 + b"</md:EntitiesDescriptor>")
    with pytest.raises(Refused, match="set entity_id"):
        parse_idp_metadata(aggregate, where="m", now=NOW)
    assert parse_idp_metadata(aggregate, where="m", now=NOW, entity_id="https://idp2.test/metadata").entity_id == \
        "https://idp2.test/metadata"
    assert parse_duration("P1DT2H") == timedelta(days=1, hours=2) and parse_duration("nonsense") is None


class MetadataServer:
    """An IdP's metadata URL whose document (or status) the test changes."""

    def __init__(self, document: bytes):
        self.document = document
        self.status = 200
        self.hits = 0
        self.serving = Serving(self)
        self.url = f"{self.serving.url}/md"

    def __call__(self, environ, start_response):
        Request(environ)
        self.hits += 1
        return Response(self.document, status=self.status, mimetype="application/xml")(environ, start_response)


def test_metadata_from_a_url_is_refreshed_on_schedule_and_kept_in_the_database(tmp_path, engine):
    first = idp_metadata_xml("https://idp.test/metadata", key_pair("idp-signing"), sso="https://idp.test/sso",
                             valid_until=datetime.now(UTC) + timedelta(days=10))
    server = MetadataServer(first)
    try:
        section = saml_section(tmp_path)
        section["idps"] = [{"id": "educonnect", "kind": "educonnect", "metadata_url": server.url,
                            "refresh_interval": 600}]
        s = parse_saml(section, where="t", base_url="https://e")
        source = IdpSource(s.idps[0], engine=engine)
        now = datetime.now(UTC)
        assert source.refresh(now) and server.hits == 1
        assert not source.due(now + timedelta(seconds=599)) and source.due(now + timedelta(seconds=600))
        assert source.refresh(now + timedelta(seconds=10)) and server.hits == 1  # not due: no fetch

        # rollover at the IdP: a second signing key appears at the next refresh
        server.document = idp_metadata_xml("https://idp.test/metadata",
                                           [key_pair("idp-signing"), key_pair("idp-signing-2")],
                                           sso="https://idp.test/sso")
        assert source.refresh(now + timedelta(seconds=600))
        assert len(source.current(now).signing_certificates) == 2

        # the IdP's server fails: the metadata in force stays, and a retry comes sooner
        server.status = 503
        assert source.refresh(now + timedelta(seconds=1200))
        assert len(source.current(now).signing_certificates) == 2 and "HTTP 503" in source.last_error
        assert source.due(now + timedelta(seconds=1200 + 300))

        # a new instance starting while the server is down uses the copy kept in the database
        fresh = IdpSource(s.idps[0], engine=engine)
        assert fresh.refresh(now)
        assert len(fresh.current(now).signing_certificates) == 2
        # without a database copy it has nothing, and says so
        alone = IdpSource(s.idps[0])
        assert not alone.refresh(now)
        with pytest.raises(Refused, match="no usable metadata .*HTTP 503"):
            alone.current(now)
    finally:
        server.serving.stop()


def test_metadata_expiring_in_memory_stops_logins_through_that_idp(tmp_path):
    path = tmp_path / "idp.xml"
    path.write_bytes(idp_metadata_xml("https://idp.test/metadata", key_pair("idp-signing"),
                                      sso="https://idp.test/sso", valid_until=NOW + timedelta(hours=1)))
    section = saml_section(tmp_path)
    s = parse_saml(section, where="t", base_url="https://e")
    source = IdpSource(s.idps[0])
    assert source.refresh(NOW)
    assert source.due(NOW + timedelta(minutes=30))  # half the remaining validity
    with pytest.raises(Refused) as err:
        source.current(NOW + timedelta(hours=2))
    assert err.value.reason == "idp-unavailable" and "expired" in err.value.detail


# -- command line ------------------------------------------------------------------------------

def test_cli_metadata_and_check_config(tmp_path):
    from app.cli import main

    section = saml_section(tmp_path)
    config = tmp_path / "sso.yaml"
    config.write_text(yaml.safe_dump({"base_url": "https://ent.example.org", "saml": section}))
    runner = CliRunner()
    out = runner.invoke(main, ["sso", "metadata", "--config", str(config)])
    assert out.exit_code == 0, out.output
    assert b'entityID="https://ent.example.org/saml/metadata"' in out.stdout_bytes
    assert xmlsec1_verifies(out.stdout_bytes.strip(), key_pair("sp-2025").cert_pem, tmp_path, "EntityDescriptor")

    ok = runner.invoke(main, ["sso", "check-config", str(config), "--json"])
    assert ok.exit_code == 0, ok.output
    report = json.loads(ok.stdout)
    assert report["saml"]["keys"][0]["signs_requests"] is True
    (idp,) = report["saml"]["idps"]
    assert idp["entity_id"] == "https://idp.test/metadata" and idp["error"] is None and idp["single_logout"]

    section["idps"][0]["metadata_certificates"] = [str(tmp_path / "keys" / "sp-2025.crt")]  # unsigned metadata
    section["keys"][0]["key_file"] = str(tmp_path / "missing.key")
    config.write_text(yaml.safe_dump({"base_url": "https://ent.example.org", "saml": section}))
    ko = runner.invoke(main, ["sso", "check-config", str(config), "--json"])
    assert ko.exit_code == 1
    problems = json.loads(ko.stdout)["problems"]
    assert any("saml.keys[0] (sp-2025): key_file" in p and "missing.key" in p for p in problems)
    section["keys"][0]["key_file"] = str(tmp_path / "keys" / "sp-2025.key")
    config.write_text(yaml.safe_dump({"base_url": "https://ent.example.org", "saml": section}))
    ko = runner.invoke(main, ["sso", "check-config", str(config)])
    assert ko.exit_code == 1 and "saml.idps (educonnect)" in ko.output and "not signed" in ko.output
