"""SAML peers for tests: key pairs, a pysaml2 identity provider over real HTTP, a form-posting browser,
and hand-made responses signed by python3-saml (for attacks a real IdP would never produce).

Nothing here is Relais code judging itself: the IdP is pysaml2 (signing and
encrypting through the xmlsec1 binary), the forger signs with python3-saml.
Usable by any SAML test (SP or IdP side).
"""

from __future__ import annotations

import base64
import contextlib
import datetime as dt
import functools
import threading
import uuid
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin

import requests
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree, html
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

XMLSEC1 = "/usr/bin/xmlsec1"


# -- keys ---------------------------------------------------------------------------------------

@dataclass(frozen=True)
class KeyFiles:
    key_pem: bytes
    cert_pem: bytes

    def write(self, folder: Path, name: str) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        key, cert = folder / f"{name}.key", folder / f"{name}.crt"
        key.write_bytes(self.key_pem)
        cert.write_bytes(self.cert_pem)
        return key, cert

    @property
    def cert_base64(self) -> str:
        return "".join(line for line in self.cert_pem.decode().splitlines() if "CERTIFICATE" not in line)


@functools.lru_cache(maxsize=32)
def key_pair(name: str, *, days: int = 365, not_before_days: int = 1) -> KeyFiles:
    """A self-signed RSA 2048 certificate and its key (cached per name for the test session)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(days=not_before_days))
            .not_valid_after(now + dt.timedelta(days=days)).sign(key, hashes.SHA256()))
    return KeyFiles(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                                      serialization.NoEncryption()),
                    cert.public_bytes(serialization.Encoding.PEM))


# -- HTTP ---------------------------------------------------------------------------------------

class Serving:
    """A WSGI app on a real socket, in a thread."""

    def __init__(self, app):
        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)  # a short poll: shutting down takes 0.05 s, not 0.5 s
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.thread.join(5)


class Browser(requests.Session):
    """A browser without JavaScript: follows redirects and submits the auto-posting SAML forms itself."""

    def go(self, url: str, *, max_forms: int = 6, **kwargs) -> requests.Response:
        """GET url, then follow redirects and SAML forms; `self.trail` lists every URL requested."""
        self.trail: list[str] = []
        response = self.get(url, timeout=15, **kwargs)
        for _ in range(max_forms):
            self.trail += [h.url for h in response.history] + [response.url]
            form = saml_form(response)
            if form is None:
                return response
            action, fields = form
            response = self.post(urljoin(response.url, action), data=fields, timeout=15)
        return response

    def submit(self, response: requests.Response, **fields) -> requests.Response:
        """Submit the first form of a page, with some fields set (like a user filling it in)."""
        page = html.fromstring(response.content)
        form = page.forms[0]
        data = {i.get("name"): i.get("value") or "" for i in form.inputs if i.get("name") and
                (i.get("type") not in ("radio", "checkbox"))}
        data.update(fields)
        return self.post(urljoin(response.url, form.action), data=data, timeout=15)


def saml_form(response: requests.Response) -> tuple[str, dict[str, str]] | None:
    """The (action, fields) of a page's auto-posting SAML form, or None."""
    if "text/html" not in response.headers.get("Content-Type", "") or not response.content:
        return None
    page = html.fromstring(response.content)
    for form in page.forms:
        fields = {i.get("name"): i.get("value") or "" for i in form.inputs if i.get("name")}
        if "SAMLResponse" in fields or "SAMLRequest" in fields:
            return form.action, fields
    return None


# -- a pysaml2 identity provider ---------------------------------------------------------------

class PysamlIdp:
    """An identity provider built with pysaml2, served over HTTP; tests set `user` before a login.

    `user`: (name_id, identity) where identity maps attribute names (urn:oid:… or plain) to value lists.
    `options`: keyword arguments for pysaml2's create_authn_response (sign_response, encrypt_assertion…).
    """

    def __init__(self, folder: Path, sp_metadata: bytes | None = None, *, name: str = "idp",
                 sign_alg: str = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
                 digest_alg: str = "http://www.w3.org/2001/04/xmlenc#sha256", sso_bindings=("redirect", "post")):
        self.keys = key_pair(f"{name}-signing")
        self.key_file, self.cert_file = self.keys.write(folder, f"{name}-signing")
        self.serving = Serving(self)
        self.base = self.serving.url
        self.entity_id = f"{self.base}/idp/metadata"
        self.user: tuple[str, dict[str, list[str]]] | None = None
        self.options: dict = {"sign_assertion": True, "sign_response": False}
        self.sign_alg = sign_alg  # pysaml2's default is still RSA-SHA1
        self.digest_alg = digest_alg
        # pysaml2 always encrypts assertions with 3DES-CBC; EduConnect uses AES: the peer is told which one
        self.cipher = "http://www.w3.org/2001/04/xmlenc#aes256-cbc"
        self.logout_requests: list = []
        self.server = None
        self.sp_metadata: bytes | None = None
        self.sessions: dict[str, tuple[str, str]] = {}  # name_id -> (sp entity, session index)
        self.sso_bindings = sso_bindings  # which SSO endpoints the metadata publishes
        if sp_metadata is not None:
            self.trust_sp(sp_metadata)

    def trust_sp(self, sp_metadata: bytes) -> None:
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
        from saml2.config import IdPConfig
        from saml2.saml import NAME_FORMAT_URI, NAMEID_FORMAT_PERSISTENT, NAMEID_FORMAT_TRANSIENT
        from saml2.server import Server

        self.sp_metadata = sp_metadata
        config = IdPConfig()
        config.load({
            "entityid": self.entity_id,
            "service": {"idp": {
                "endpoints": {
                    "single_sign_on_service": [e for e in ((f"{self.base}/idp/sso/redirect", BINDING_HTTP_REDIRECT),
                                                           (f"{self.base}/idp/sso/post", BINDING_HTTP_POST))
                                               if e[0].rsplit("/", 1)[1] in self.sso_bindings],
                    "single_logout_service": [(f"{self.base}/idp/slo/redirect", BINDING_HTTP_REDIRECT)],
                },
                "name_id_format": [NAMEID_FORMAT_TRANSIENT, NAMEID_FORMAT_PERSISTENT],
                "want_authn_requests_signed": True,
                "policy": {"default": {"lifetime": {"minutes": 5}, "attribute_restrictions": None,
                                       "name_form": NAME_FORMAT_URI}},
            }},
            "key_file": str(self.key_file), "cert_file": str(self.cert_file),
            "encryption_keypairs": [{"key_file": str(self.key_file), "cert_file": str(self.cert_file)}],
            "metadata": {"inline": [sp_metadata.decode()]},
            "xmlsec_binary": XMLSEC1,
            "allow_unknown_attributes": True,
        })
        self.server = Server(config=config)

    def metadata(self) -> bytes:
        from saml2.metadata import entity_descriptor

        return str(entity_descriptor(self.server.config)).encode()

    def stop(self) -> None:
        self.serving.stop()

    # WSGI
    def __call__(self, environ, start_response):
        request = Request(environ)
        try:
            response = self.dispatch(request)
        except Exception as exc:  # an IdP error page, with the reason, for the test to see
            response = Response(f"IdP error: {type(exc).__name__}: {exc}", status=500)
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

        if request.path == "/idp/metadata":
            return Response(self.metadata(), mimetype="application/samlmetadata+xml")
        if request.path.startswith("/idp/sso/"):
            binding = BINDING_HTTP_REDIRECT if request.method == "GET" else BINDING_HTTP_POST
            source = request.args if request.method == "GET" else request.form
            # pysaml2 checks the signature (want_authn_requests_signed), over the query for the redirect binding
            parsed = self.server.parse_authn_request(source["SAMLRequest"], binding,
                                                     relay_state=source.get("RelayState"),
                                                     sigalg=source.get("SigAlg"), signature=source.get("Signature"))
            return self.answer(parsed.message)
        if request.path.startswith("/idp/slo/"):
            return self.logout_endpoint(request)
        return Response("not found", status=404)

    def _check_redirect_signature(self, request: Request) -> None:
        """pysaml2 verifies POST signatures while parsing; redirect ones are checked here, with its own code."""
        from saml2.sigver import verify_redirect_signature

        args = {k: request.args[k] for k in ("SAMLRequest", "SAMLResponse", "RelayState", "SigAlg", "Signature")
                if k in request.args}
        certs = self.server.metadata.certs(self._sp_entity(), "spsso", "signing")
        if "Signature" not in args or not any(verify_redirect_signature(args, self.server.sec.sec_backend, cert=c[1])
                                              for c in certs):
            raise ValueError("redirect-binding signature missing or invalid")

    def _sp_entity(self) -> str:
        return next(iter(self.server.metadata.service_providers()))

    def answer(self, authn_request) -> Response:
        from saml2 import BINDING_HTTP_POST
        from saml2.saml import NAMEID_FORMAT_TRANSIENT, NameID

        if self.user is None:
            return Response("no user logged in at the IdP", status=401)
        name_id_value, identity = self.user
        sp_entity = authn_request.issuer.text
        acs = authn_request.assertion_consumer_service_url
        name_id = NameID(text=name_id_value, format=NAMEID_FORMAT_TRANSIENT, sp_name_qualifier=sp_entity)
        options = dict(self.options)
        if options.get("encrypt_assertion"):
            options.setdefault("encrypt_cert_assertion", self._sp_encryption_cert(sp_entity))
        session_index = uuid.uuid4().hex
        with self._cipher():
            response = self.server.create_authn_response(
                identity, authn_request.id, acs, sp_entity, name_id=name_id,
                authn={"class_ref": "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport",
                       "authn_instant": None}, session_not_on_or_after=None,
                **{"sign_alg": self.sign_alg, "digest_alg": self.digest_alg, **options})
        self.sessions[name_id_value] = (sp_entity, session_index)
        info = self.server.apply_binding(BINDING_HTTP_POST, str(response), acs, relay_state="", response=True)
        return Response(info["data"], mimetype="text/html")

    @contextlib.contextmanager
    def _cipher(self):
        """pysaml2 has no setting for the assertion cipher: swap it in around one response."""
        import saml2.entity
        from saml2.sigver import pre_encryption_part

        session_key = {"http://www.w3.org/2001/04/xmlenc#tripledes-cbc": "des-192",
                       "http://www.w3.org/2001/04/xmlenc#aes128-cbc": "aes-128",
                       "http://www.w3.org/2001/04/xmlenc#aes256-cbc": "aes-256"}[self.cipher]
        saved = saml2.entity.pre_encryption_part
        sec = self.server.sec
        saml2.entity.pre_encryption_part = functools.partial(pre_encryption_part, msg_enc=self.cipher)
        sec.encrypt_assertion = functools.partial(type(sec).encrypt_assertion, sec, key_type=session_key)
        try:
            yield
        finally:
            saml2.entity.pre_encryption_part = saved
            del sec.encrypt_assertion

    def _sp_encryption_cert(self, sp_entity: str) -> str:
        certs = self.server.metadata.certs(sp_entity, "spsso", "encryption")
        return "-----BEGIN CERTIFICATE-----\n" + certs[-1][1] + "\n-----END CERTIFICATE-----\n"

    # single logout
    def logout_endpoint(self, request: Request) -> Response:
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

        binding = BINDING_HTTP_REDIRECT if request.method == "GET" else BINDING_HTTP_POST
        source = request.args if request.method == "GET" else request.form
        if binding == BINDING_HTTP_REDIRECT:
            self._check_redirect_signature(request)
        if "SAMLResponse" in source:  # the answer to a logout we started
            parsed = self.server.parse_logout_request_response(source["SAMLResponse"], binding)
            self.logout_requests.append(("response", parsed))
            return Response("IdP: logout answered", status=200)
        parsed = self.server.parse_logout_request(source["SAMLRequest"], binding, relay_state=source.get("RelayState"),
                                                  sigalg=source.get("SigAlg"), signature=source.get("Signature"))
        request_msg = parsed.message
        self.logout_requests.append(("request", request_msg))
        self.sessions.pop(request_msg.name_id.text, None)
        sp_entity = request_msg.issuer.text
        destinations = self.server.metadata.single_logout_service(sp_entity, BINDING_HTTP_REDIRECT, "spsso")
        destination = destinations[0]["location"]
        answer = self.server.create_logout_response(request_msg, [BINDING_HTTP_REDIRECT], status=None, sign=False)
        info = self.server.apply_binding(BINDING_HTTP_REDIRECT, str(answer), destination,
                                         relay_state=source.get("RelayState", ""), response=True, sign=True,
                                         sigalg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
        return Response(status=302, headers={"Location": dict(info["headers"])["Location"]})

    def logout_url(self, name_id_value: str, sp_slo_url: str, *, session_index: str | None = None) -> str:
        """An IdP-initiated LogoutRequest to the SP (HTTP-Redirect binding, signed)."""
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.saml import NAMEID_FORMAT_TRANSIENT, NameID

        sp_entity = self._sp_entity()
        name_id = NameID(text=name_id_value, format=NAMEID_FORMAT_TRANSIENT, sp_name_qualifier=sp_entity)
        _id, request = self.server.create_logout_request(
            sp_slo_url, sp_entity, name_id=name_id, session_indexes=[session_index] if session_index else None,
            sign=False)
        info = self.server.apply_binding(BINDING_HTTP_REDIRECT, str(request), sp_slo_url, relay_state="r1",
                                         sign=True, sigalg="http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
        return dict(info["headers"])["Location"]


# -- hand-made responses (for attacks), signed by python3-saml ----------------------------------

SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML_NS = "urn:oasis:names:tc:SAML:2.0:assertion"


def instant(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def forged_response(*, issuer: str, destination: str, in_response_to: str | None, audience: str, recipient: str,
                    name_id: str = "nid-1", attributes: dict[str, list[str]] | None = None,
                    now: dt.datetime | None = None, lifetime: dt.timedelta = dt.timedelta(minutes=5),
                    not_before: dt.datetime | None = None, assertion_id: str | None = None,
                    authn_instant: dt.datetime | None = None, response_id: str | None = None) -> str:
    """A SAML Response with one assertion, as an IdP would write it (unsigned; sign with `sign`)."""
    now = now or dt.datetime.now(dt.UTC)
    irt = f' InResponseTo="{in_response_to}"' if in_response_to else ""
    attrs = "".join(
        f'<saml:Attribute Name="{n}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">'
        + "".join(f"<saml:AttributeValue>{v}</saml:AttributeValue>" for v in vs) + "</saml:Attribute>"
        for n, vs in (attributes or {}).items())
    return _assemble(issuer, destination, irt, now, lifetime, not_before, assertion_id, authn_instant, response_id,
                     name_id, recipient, audience, attrs)


def _assemble(issuer, destination, irt, now, lifetime, not_before, assertion_id, authn_instant, response_id,
              name_id, recipient, audience, attrs) -> str:
    return (
        f'<samlp:Response xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="{response_id or "_r" + uuid.uuid4().hex}"'
        f' Version="2.0" IssueInstant="{instant(now)}" Destination="{destination}"{irt}>'
        f"<saml:Issuer>{issuer}</saml:Issuer>"
        '<samlp:Status><samlp:StatusCode Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status>'
        f'<saml:Assertion ID="{assertion_id or "_a" + uuid.uuid4().hex}" Version="2.0" IssueInstant="{instant(now)}">'
        f"<saml:Issuer>{issuer}</saml:Issuer>"
        f'<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient">{name_id}'
        "</saml:NameID>"
        '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
        f'<saml:SubjectConfirmationData{irt} NotOnOrAfter="{instant(now + lifetime)}" Recipient="{recipient}"/>'
        "</saml:SubjectConfirmation></saml:Subject>"
        f'<saml:Conditions NotBefore="{instant(not_before or now - dt.timedelta(seconds=30))}" '
        f'NotOnOrAfter="{instant(now + lifetime)}">'
        f"<saml:AudienceRestriction><saml:Audience>{audience}</saml:Audience></saml:AudienceRestriction>"
        "</saml:Conditions>"
        f'<saml:AuthnStatement AuthnInstant="{instant(authn_instant or now)}" SessionIndex="_s{uuid.uuid4().hex}">'
        "<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:"
        "PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"
        f"<saml:AttributeStatement>{attrs}</saml:AttributeStatement>"
        "</saml:Assertion></samlp:Response>")


def sign(xml: str | bytes, keys: KeyFiles, *, part: str = "assertion") -> bytes:
    """Sign the assertion, the response, or both (assertion first) with python3-saml's signer."""
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    root = etree.fromstring(xml.encode() if isinstance(xml, str) else xml)
    if part in ("assertion", "both"):
        # signed as a document of its own: add_sign looks for //saml:Issuer from the document's root
        assertion = root.find(f"{{{SAML_NS}}}Assertion")
        signed = etree.fromstring(OneLogin_Saml2_Utils.add_sign(etree.tostring(assertion), keys.key_pem.decode(),
                                                                keys.cert_pem.decode()))
        root.replace(assertion, signed)
    if part in ("response", "both"):
        root = etree.fromstring(OneLogin_Saml2_Utils.add_sign(root, keys.key_pem.decode(), keys.cert_pem.decode()))
    return etree.tostring(root)


def b64(xml: bytes | str) -> str:
    return base64.b64encode(xml.encode() if isinstance(xml, str) else xml).decode()


def idp_metadata_xml(entity_id: str, signing: KeyFiles | list[KeyFiles], *, sso: str, slo: str | None = None,
                     valid_until: dt.datetime | None = None, cache_duration: str | None = None) -> bytes:
    """A minimal IdP metadata document (for tests that forge responses instead of running pysaml2)."""
    keys = signing if isinstance(signing, list) else [signing]
    kds = "".join('<md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>'
                  f"{k.cert_base64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>" for k in keys)
    attrs = (f' validUntil="{instant(valid_until)}"' if valid_until else "") + (
        f' cacheDuration="{cache_duration}"' if cache_duration else "")
    slo_xml = (f'<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
               f'Location="{slo}"/>') if slo else ""
    return (f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{entity_id}" ID="_m{uuid.uuid4().hex}"{attrs}>'
            '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f"{kds}{slo_xml}"
            '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
            f'Location="{sso}"/></md:IDPSSODescriptor></md:EntityDescriptor>').encode()


# -- an SP under test: directory, SSO app (with its SAML SP), CAS apps, and an IdP ---------------

UAI = "0750001A"
EDUCONNECT = "urn:oid:1.3.6.1.4.1.20326.10.999.1."
AFFILIATION, FRED_CT_ID, URL_RETOUR = EDUCONNECT + "7", EDUCONNECT + "57", EDUCONNECT + "5"


def import_sample_directory(engine, folder: Path) -> None:
    """Two schools; pupils 1001 and 1002 (siblings) of parent R1; R2 a homonym of R1, also 1001's relative;
    teacher T1 (anne.prof@ac-test.fr)."""
    from services.directory.importing.options import ImportOptions
    from services.directory.importing.run import DirectoryImporter
    from tests import aaf_builder as aaf

    runs = [("EtabEducNat", [aaf.school("S1", UAI), aaf.school("S2", "0750002B")]),
            ("PersRelEleve", [aaf.relative("R1"), aaf.relative("R2"), aaf.relative("R3", "Martin", "Luc")]),
            ("Eleve", [aaf.pupil("1001", structure="S1", klass="6A", relatives=["R1", "R2"]),
                       aaf.pupil("1002", structure="S1", klass="4B", relatives=["R1"]),
                       aaf.pupil("2001", structure="S2", klass="3C", relatives=["R3"])]),
            ("PersEducNat", [aaf.add("PersEducNat", "T1", ENTPersonJointure="T1", sn="Prof", givenName="Anne",
                                     mail="Anne.Prof@ac-test.fr", ENTPersonStructRattach="S1")])]
    for n, (family, records) in enumerate(runs):
        path = aaf.write(folder, f"P_Complet_2026090{n}_{family}_0000.xml", *records)
        report = DirectoryImporter(engine, "test", ImportOptions()).run([path])
        assert report.ok, report


class Clock:
    """The SSO servers' time; tests move it to expire or anticipate assertions."""

    def __init__(self):
        self.offset = dt.timedelta()

    def __call__(self):
        return dt.datetime.now(dt.UTC) + self.offset


class CasApps:
    """The ENT's CAS applications: a page, and a recorder of back-channel logout requests."""

    def __init__(self):
        self.logouts: list[tuple[str, str]] = []
        self.serving = Serving(self)
        self.url = self.serving.url

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.method == "POST" and "logoutRequest" in request.form:
            self.logouts.append((request.path, request.form["logoutRequest"]))
        return Response("app page")(environ, start_response)


class _Late:
    """A WSGI app set after its server started (the SP's URL is part of its own configuration)."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class SpWorld:
    """The SSO service with its SAML SP on real sockets, `instances` of it on one database, and an IdP:
    `idp="pysaml2"` (a PysamlIdp) or `idp="forged"` (metadata only; tests forge the responses).

    `saml` entries override the `saml:` section; `idp_settings` entries the IdP's entry in it.
    `services`: more CAS services for the registry (the operator console's, in tests/console).
    """

    def __init__(self, engine, folder: Path, *, idp: str = "pysaml2", instances: int = 1, saml: dict | None = None,
                 idp_settings: dict | None = None, sp_keys: tuple[str, ...] = ("sp-2025",), directory: bool = True,
                 idp_options: dict | None = None, services: list[dict] | None = None):
        from relais.db import make_engine
        from relais.ops.server import WsgiServer
        from services.directory.api import Directory
        from services.sso.app import SsoApp
        from services.sso.config import parse_config
        from services.sso.sp.config import parse_saml
        from services.sso.sp.messages import sp_metadata

        if directory:
            import_sample_directory(engine, folder)
        self.engine = engine
        self.folder = folder
        self.clock = Clock()
        self.apps = CasApps()
        self.app_url = f"{self.apps.url}/app/"
        self._late = [_Late() for _ in range(instances)]
        # the SSO served as `relais serve sso` serves it (relais/ops/server.py)
        self.servers = [WsgiServer(late, "127.0.0.1", 0, what="the sso", where="tests") for late in self._late]
        self.urls = [f"http://127.0.0.1:{s.port}" for s in self.servers]
        # every instance serves the same deployment: one public base URL (the first), as behind a load balancer
        self.url = self.urls[0]
        self.idp_keys = key_pair("idp-signing")
        if idp == "pysaml2":
            self.idp = PysamlIdp(folder, **(idp_options or {}))
            metadata_source = {"metadata_url": f"{self.idp.base}/idp/metadata"}
            self.idp_entity_id = self.idp.entity_id
        else:
            self.idp = None
            self.idp_entity_id = "https://idp.test/metadata"
            path = folder / "idp-metadata.xml"
            path.write_bytes(idp_metadata_xml(self.idp_entity_id, self.idp_keys, sso="https://idp.test/sso",
                                              slo="https://idp.test/slo"))
            metadata_source = {"metadata_file": str(path)}
        keys = []
        for name in sp_keys:
            key, cert = key_pair(name).write(folder / "keys", name)
            keys.append({"id": name, "key_file": str(key), "cert_file": str(cert)})
        # pysaml2, like EduConnect, releases only the attributes our metadata requests
        requested = ["FrEduCtPersonAffiliation", "FrEduCtId", "FrEduCtRefId", "FrEduVecteur", "FrEduUrlRetour", "sn",
                     "givenName", "mail"]
        self.saml_section = {"keys": keys, "requested_attributes": requested,
                             "idps": [{"id": "educonnect", "kind": "educonnect", "label": "ÉduConnect",
                                       **metadata_source, **(idp_settings or {})}], **(saml or {})}
        self.config = parse_config({
            "base_url": self.url, "cookie": {"secure": False}, "allow_http_callbacks": True,
            "services": [{"id": "app", "prefix": self.app_url, "attributes": ["uid", "ENTPersonProfils"]},
                         *(services or ())],
            "saml": self.saml_section}, "test")
        self.settings = parse_saml(self.config.saml, where="test", base_url=self.url)
        if self.idp is not None:
            self.idp.trust_sp(sp_metadata(self.settings))
        self.instances = []
        for late in self._late:
            own = make_engine(engine.url.render_as_string(hide_password=False))
            app = SsoApp(own, self.config, directory=Directory(own, "test"), tenant="test", secret=b"s" * 40,
                         clock=self.clock, http_timeout=3)
            late.app = app
            self.instances.append(app)
        self.acs = f"{self.url}/saml/acs"
        self.entity_id = self.settings.entity_id

    def sp(self, n: int = 0):
        return self.instances[n].sp.provider()

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        for app in self.instances:
            app.close()
            app.engine.dispose()
        self.apps.serving.stop()
        if self.idp is not None:
            self.idp.stop()

    def cas_login_url(self) -> str:
        from urllib.parse import quote

        return f"{self.url}/cas/login?service={quote(self.app_url + 'home', safe='')}"

    def start(self, browser: Browser, base: str | None = None, **params) -> str:
        """Start a login at /saml/login (without following it); returns the AuthnRequest's ID."""
        from urllib.parse import parse_qs, urlsplit

        from services.sso.saml.bindings import inflate_b64

        r = browser.get(f"{base or self.url}/saml/login", params=params, allow_redirects=False, timeout=10)
        assert r.status_code == 302, r.text
        query = parse_qs(urlsplit(r.headers["Location"]).query)
        request = etree.fromstring(inflate_b64(query["SAMLRequest"][0], "SAMLRequest"))
        return request.get("ID")

    def forge(self, request_id: str | None, *, keys: KeyFiles | None = None, part: str = "assertion",
              **overrides) -> bytes:
        """A response to `request_id`, signed (unless keys is False-y and part is None) as the trusted IdP."""
        fields = {"issuer": self.idp_entity_id, "destination": self.acs, "in_response_to": request_id,
                  "audience": self.entity_id, "recipient": self.acs, "now": self.clock(),
                  "attributes": {AFFILIATION: ["eleve2d"], "FrEduCtRefId": ["{AAF}01|X|1001"], FRED_CT_ID: ["fe-1"]}}
        fields.update(overrides)
        xml = forged_response(**fields)
        return sign(xml, keys or self.idp_keys, part=part) if part else xml.encode()

    def post(self, browser: Browser, response_xml: bytes | str, base: str | None = None) -> requests.Response:
        return browser.post(f"{base or self.url}/saml/acs", data={"SAMLResponse": b64(response_xml)},
                            allow_redirects=False, timeout=10)

    def events(self, type_: str) -> list[dict]:
        import orjson
        from sqlalchemy import select

        from relais.bus.tables import outbox

        with self.engine.connect() as conn:
            return [orjson.loads(b) for (b,) in conn.execute(select(outbox.c.body).where(outbox.c.type == type_))]
