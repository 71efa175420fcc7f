"""Stand-ins for a national IdP on this machine, for the demo and the benchmark (never for production).

- `write_key_pair`: a self-signed RSA 2048 certificate and its key, as PEM files.
- `LocalIdp`: an identity provider built with pysaml2 (an implementation we did not write), in-process,
  answering our AuthnRequests as EduConnect does: a signed assertion (RSA-SHA256) whose attributes carry
  EduConnect's names and OIDs (`EDUCONNECT` below: FrEduCtPersonAffiliation, FrEduCtId, FrEduVecteur,
  FrEduUrlRetour...). It checks the signature of our AuthnRequests with our published metadata. It does not
  encrypt: pysaml2 encrypts only with 3DES, which the SP refuses (the benchmark covers encrypted assertions).
  pysaml2 signs through the `xmlsec1` program (scripts/ensure-services.sh installs it).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

EDUCONNECT_OID = "urn:oid:1.3.6.1.4.1.20326.10.999.1."
EDUCONNECT = {  # EduConnect attribute name -> the name it is sent under
    "FrEduUrlRetour": EDUCONNECT_OID + "5", "FrEduCtPersonAffiliation": EDUCONNECT_OID + "7",
    "FrEduCtId": EDUCONNECT_OID + "57", "sn": "urn:oid:2.5.4.4", "givenName": "urn:oid:2.5.4.42",
    "FrEduVecteur": "FrEduVecteur", "FrEduCtRefId": "FrEduCtRefId",
}
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"


def write_key_pair(folder: Path, name: str, *, days: int = 30) -> tuple[Path, Path]:
    """A self-signed RSA 2048 certificate and its key as `name.key` and `name.crt` in `folder`."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    from cryptography.x509.oid import NameOID

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(days=1))
            .not_valid_after(now + timedelta(days=days)).sign(key, hashes.SHA256()))
    folder.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = folder / f"{name}.key", folder / f"{name}.crt"
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return key_path, cert_path


class LocalIdp:
    """A pysaml2 IdP answering in-process: `answer(redirect_url, user)` -> (ACS URL, form fields to POST)."""

    def __init__(self, folder: Path, *, base_url: str, xmlsec_binary: str = "/usr/bin/xmlsec1") -> None:
        self.folder = folder
        self.base_url = base_url.rstrip("/")
        self.entity_id = f"{self.base_url}/idp"
        self.key_file, self.cert_file = write_key_pair(folder, "local-idp")
        self.server = self._server(xmlsec_binary)

    def _server(self, xmlsec_binary: str):
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.config import IdPConfig
        from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_TRANSIENT
        from saml2.server import Server

        config = IdPConfig()
        config.load({
            "entityid": self.entity_id,
            "service": {"idp": {
                "endpoints": {"single_sign_on_service": [(f"{self.base_url}/sso", BINDING_HTTP_REDIRECT)],
                              "single_logout_service": [(f"{self.base_url}/slo", BINDING_HTTP_REDIRECT)]},
                "name_id_format": [NAMEID_FORMAT_TRANSIENT],
                "want_authn_requests_signed": True,
                "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                       "name_form": NAME_FORMAT_URI}},
            }},
            "key_file": str(self.key_file), "cert_file": str(self.cert_file),
            "metadata": {"inline": []},  # the SP's comes later (trust_sp)
            "xmlsec_binary": xmlsec_binary,
            "allow_unknown_attributes": True,
        })
        return Server(config=config)

    def trust_sp(self, sp_metadata: bytes) -> None:
        """Trust this SP: its metadata as the SP publishes it (its keys, ACS, requested attributes)."""
        self.server.metadata.load("inline", sp_metadata.decode())

    def metadata(self) -> bytes:
        from saml2.metadata import entity_descriptor

        return str(entity_descriptor(self.server.config)).encode()

    def answer(self, redirect_url: str, attributes: dict[str, list[str]]) -> tuple[str, dict[str, str]]:
        """Read our AuthnRequest (HTTP-Redirect, its signature checked) and log in a user with these
        EduConnect attributes (by name): the signed Response as the browser would POST it to the ACS."""
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
        from saml2.saml import NAMEID_FORMAT_TRANSIENT, NameID

        query = {k: v[0] for k, v in parse_qs(urlsplit(redirect_url).query).items()}
        request = self.server.parse_authn_request(query["SAMLRequest"], BINDING_HTTP_REDIRECT,
                                                  relay_state=query.get("RelayState"), sigalg=query.get("SigAlg"),
                                                  signature=query.get("Signature")).message
        sp_entity = request.issuer.text
        identity = {EDUCONNECT.get(name, name): values for name, values in attributes.items()}
        name_id = NameID(text=f"_{uuid.uuid4().hex}", format=NAMEID_FORMAT_TRANSIENT, sp_name_qualifier=sp_entity)
        response = self.server.create_authn_response(
            identity, request.id, request.assertion_consumer_service_url, sp_entity, name_id=name_id,
            authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"},
            sign_assertion=True, sign_response=False, sign_alg=RSA_SHA256, digest_alg=SHA256)
        info = self.server.apply_binding(BINDING_HTTP_POST, str(response), request.assertion_consumer_service_url,
                                         relay_state=query.get("RelayState", ""), response=True)
        return request.assertion_consumer_service_url, _form_fields(info["data"])


def _form_fields(page: str) -> dict[str, str]:
    """The hidden fields of pysaml2's auto-posting form."""
    from lxml import html

    # lxml-stubs says fromstring returns an _Element; lxml.html's is an HtmlElement, which has .forms
    form = html.fromstring(page).forms[0]  # type: ignore[attr-defined]
    return {i.get("name"): i.get("value") or "" for i in form.inputs if i.get("name")}
