"""Our SAML identity provider towards resource platforms, judged by service providers we did not write.

Each platform is a pysaml2 service provider (its own keys, generated with
`cryptography`) on a real socket: it reads our metadata, sends AuthnRequests
(signed by pysaml2, over HTTP-Redirect or HTTP-POST) and checks our responses
with the xmlsec1 binary. The browser is a requests.Session that follows
redirects and posts the SAML forms itself. Sessions are opened the way the SAML
SP opens them after a national login (`sessions.open_session`), for persons of
a small directory filled by the real AAF importer; one test goes through the
whole chain with a pysaml2 national IdP.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import zlib
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pytest
import requests
import yaml
from click.testing import CliRunner
from lxml import etree
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from relais.db import make_engine, writer
from relais.ops.server import WsgiServer
from services.directory.api import Directory
from services.sso import sessions
from services.sso.app import SsoApp
from services.sso.config import ConfigError, parse_config
from services.sso.idp.config import parse_idp
from services.sso.sp.config import parse_saml
from services.sso.sp.messages import sp_metadata
from tests.saml_peers import (
    AFFILIATION,
    FRED_CT_ID,
    UAI,
    XMLSEC1,
    Browser,
    Clock,
    PysamlIdp,
    import_sample_directory,
    key_pair,
    saml_form,
)

SECRET = b"territory-deployment-secret-0123456789abcdef"
OTHER_SECRET = b"another-deployment-secret-9876543210fedcba"
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"


def documented_name_id(secret: bytes, entity_id: str, jointure: str) -> str:
    """The README's formula, written out here independently of services.sso.rules.pseudonyms."""
    mac = hmac.new(secret, b"relais:saml-nameid:v1\0" + entity_id.encode() + b"\0" + jointure.encode(),
                   hashlib.sha256).digest()
    return base64.b32encode(mac).decode().rstrip("=").lower()


# -- a resource platform: a pysaml2 service provider ------------------------------------------

class Platform:
    """A resource platform's SAML SP, built with pysaml2, on a real socket.

    `results` collects what its ACS accepted: (NameID, NameID format, attributes, RelayState, InResponseTo);
    `errors` what it refused, with pysaml2's reason.
    """

    def __init__(self, folder: Path, name: str, *, sign_requests: bool = True, encryption: bool = False,
                 second_acs: bool = False, entity_id: str | None = None):
        self.name = name
        self.keys = key_pair(f"platform-{name}")
        self.key_file, self.cert_file = self.keys.write(folder / "platforms", name)
        self.sign_requests = sign_requests
        self.encryption = encryption
        self.server = make_server("127.0.0.1", 0, self, threaded=True)
        self.base = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        self.entity_id = entity_id or f"{self.base}/sp/{name}"
        self.acs = f"{self.base}/sp/acs"
        self.acs_urls = [self.acs] + ([f"{self.base}/sp/acs2"] if second_acs else [])
        self.results: list[dict] = []
        self.errors: list[str] = []
        self.logout_statuses: list[str] = []
        self.outstanding: dict[str, str] = {}
        self.client = None  # a pysaml2 Saml2Client once it trusts our metadata (trust)
        self.metadata_file = folder / "platforms" / f"{name}.xml"
        self.metadata_file.write_bytes(self.metadata())

    def _config(self, idp_metadata: bytes | None):
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT
        from saml2.config import SPConfig

        config = SPConfig()
        config.load({
            "entityid": self.entity_id,
            "service": {"sp": {
                "endpoints": {"assertion_consumer_service": [(u, BINDING_HTTP_POST) for u in self.acs_urls],
                              "single_logout_service": [(f"{self.base}/sp/slo", BINDING_HTTP_REDIRECT)]},
                "authn_requests_signed": self.sign_requests, "logout_requests_signed": True,
                "want_assertions_signed": True,
                "want_response_signed": True, "allow_unsolicited": True, "name_id_format": [PERSISTENT],
            }},
            "key_file": str(self.key_file), "cert_file": str(self.cert_file),
            **({"encryption_keypairs": [{"key_file": str(self.key_file), "cert_file": str(self.cert_file)}]}
               if self.encryption else {}),
            "metadata": {"inline": [idp_metadata.decode()]} if idp_metadata else {},
            "xmlsec_binary": XMLSEC1, "allow_unknown_attributes": True, "accepted_time_diff": 60,
        })
        return config

    def _client(self, idp_metadata: bytes | None):
        from saml2.client import Saml2Client

        return Saml2Client(config=self._config(idp_metadata))

    def metadata(self) -> bytes:
        from saml2.metadata import entity_descriptor

        return str(entity_descriptor(self._config(None))).encode()

    def trust(self, idp_metadata: bytes) -> None:
        self.client = self._client(idp_metadata)

    def login_url(self, *, binding: str = "redirect", sign: bool | None = None, relay_state: str = "",
                  **kwargs) -> tuple[str, dict | None]:
        """(URL, form) of an SP-initiated login: GET the URL (form None) or POST the form to it."""
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

        saml_binding = BINDING_HTTP_REDIRECT if binding == "redirect" else BINDING_HTTP_POST
        sign = self.sign_requests if sign is None else sign
        request_id, info = self.client.prepare_for_authenticate(
            relay_state=relay_state, binding=saml_binding, sign=sign, sigalg=RSA_SHA256 if sign else None,
            digest_alg="http://www.w3.org/2001/04/xmlenc#sha256", **kwargs)
        self.outstanding[request_id] = relay_state
        if saml_binding == BINDING_HTTP_REDIRECT:
            return dict(info["headers"])["Location"], None
        page = requests.models.Response()
        page._content, page.headers["Content-Type"] = info["data"].encode(), "text/html"
        action, fields = saml_form(page)
        return action, fields

    def logout_url(self, name_id, idp_entity_id: str, *, binding: str = "post", sign: bool = True
                   ) -> tuple[str, dict | None]:
        """(URL, form) of an SP-initiated logout of `name_id` (a pysaml2 NameID) at our IdP."""
        from saml2 import BINDING_HTTP_POST, BINDING_HTTP_REDIRECT

        saml_binding = BINDING_HTTP_REDIRECT if binding == "redirect" else BINDING_HTTP_POST
        answers = self.client.do_logout(name_id, [idp_entity_id], reason="", expire=None, sign=sign,
                                        expected_binding=saml_binding, sign_alg=RSA_SHA256 if sign else None,
                                        digest_alg="http://www.w3.org/2001/04/xmlenc#sha256")
        _, info = answers[idp_entity_id]
        if saml_binding == BINDING_HTTP_REDIRECT:
            return dict(info["headers"])["Location"], None
        page = requests.models.Response()
        page._content, page.headers["Content-Type"] = info["data"].encode(), "text/html"
        return saml_form(page)

    def stop(self) -> None:
        self.server.shutdown()

    def _logout_answer(self, request: Request) -> Response:
        """Our IdP's LogoutResponse, over HTTP-Redirect: its query signature checked by pysaml2's code."""
        from saml2 import BINDING_HTTP_REDIRECT
        from saml2.sigver import verify_redirect_signature

        args = {k: request.args[k] for k in ("SAMLResponse", "RelayState", "SigAlg", "Signature") if k in request.args}
        certs = self.client.metadata.certs(next(iter(self.client.metadata.identity_providers())), "idpsso", "signing")
        if not any(verify_redirect_signature(args, self.client.sec.sec_backend, cert=c[1]) for c in certs):
            self.errors.append("LogoutResponse: redirect signature missing or invalid")
            return Response("platform refused the logout response", status=403)
        try:
            parsed = self.client.parse_logout_request_response(request.args["SAMLResponse"], BINDING_HTTP_REDIRECT)
        except Exception as exc:  # pysaml2 raises its Status* errors for a status other than Success
            self.logout_statuses.append(type(exc).__name__)
            return Response("platform: logout not confirmed")
        self.logout_statuses.append(parsed.response.status.status_code.value)
        return Response("platform: logged out")

    def __call__(self, environ, start_response):
        from saml2 import BINDING_HTTP_POST

        request = Request(environ)
        if request.path == "/sp/slo" and "SAMLResponse" in request.args:
            return self._logout_answer(request)(environ, start_response)
        if request.method != "POST" or not request.path.startswith("/sp/acs"):
            return Response("platform page")(environ, start_response)
        try:
            parsed = self.client.parse_authn_request_response(request.form["SAMLResponse"], BINDING_HTTP_POST,
                                                              outstanding=self.outstanding)
        except Exception as exc:  # pysaml2's verdict, for the test to read
            self.errors.append(f"{type(exc).__name__}: {exc}")
            return Response(f"platform refused: {type(exc).__name__}", status=403)(environ, start_response)
        name_id = parsed.assertion.subject.name_id
        self.results.append({"name_id": name_id.text, "format": name_id.format, "ava": parsed.ava, "subject": name_id,
                             "session_index": parsed.assertion.authn_statement[0].session_index,
                             "relay_state": request.form.get("RelayState"), "in_response_to": parsed.in_response_to,
                             "acs": request.path, "raw": base64.b64decode(request.form["SAMLResponse"])})
        return Response(f"platform: welcome {name_id.text}")(environ, start_response)


# -- the SSO service with its IdP --------------------------------------------------------------

class _Late:
    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class IdpWorld:
    """The SSO service (one or more instances on one database) with the `idp:` section, and platforms.

    `platforms`: name -> (Platform options, platform configuration entries).
    """

    def __init__(self, engine, folder: Path, platforms: dict[str, tuple[dict, dict]], *, instances: int = 1,
                 secret: bytes = SECRET, idp: dict | None = None, saml: dict | None = None, directory: bool = True):
        if directory:
            import_sample_directory(engine, folder)
        self.engine = engine
        self.folder = folder
        self.clock = Clock()
        self.platforms = {name: Platform(folder, name, **opts) for name, (opts, _) in platforms.items()}
        self._late = [_Late() for _ in range(instances)]
        # the SSO served as `relais serve sso` serves it (relais/ops/server.py)
        self.servers = [WsgiServer(late, "127.0.0.1", 0, what="the sso", where="tests") for late in self._late]
        self.url = f"http://127.0.0.1:{self.servers[0].port}"
        keys = []
        for name, signing in (("relais-idp-2025", True), ("relais-idp-2026", False)):
            key, cert = key_pair(name).write(folder / "keys", name)
            keys.append({"id": name, "key_file": str(key), "cert_file": str(cert), "signing": signing})
        self.idp_section = {
            "keys": keys, **(idp or {}),
            "platforms": [{"id": name, "label": f"Plateforme {name}", "metadata_file": str(p.metadata_file),
                           **platforms[name][1]} for name, p in self.platforms.items()]}
        document = {"base_url": self.url, "cookie": {"secure": False}, "idp": self.idp_section}
        if saml:
            document["saml"] = saml
        self.config = parse_config(document, "test")
        self.instances = []
        for late in self._late:
            own = make_engine(engine.url.render_as_string(hide_password=False))
            app = SsoApp(own, self.config, directory=Directory(own, "test"), tenant="test", secret=secret,
                         clock=self.clock)
            late.app = app
            self.instances.append(app)
        metadata = requests.get(f"{self.url}/idp/metadata", timeout=10)
        assert metadata.status_code == 200, metadata.text
        self.idp_metadata = metadata.content
        for platform in self.platforms.values():
            platform.trust(self.idp_metadata)

    def stop(self) -> None:
        shutdown([p.server for p in self.platforms.values()])
        for server in self.servers:
            server.stop()
        for app in self.instances:
            app.close()
            app.engine.dispose()

    def login(self, jointure: str = "1001") -> str:
        """What the SAML SP does after a national login: open a session; returns the cookie value."""
        with writer(self.engine).begin() as conn:
            s = sessions.open_session(conn, person_jointure=jointure, auth_source="educonnect", national_id="n-1",
                                      attributes={}, now=self.clock(), tenant="test")
        return s.id

    def browser(self, sid: str | None = None) -> Browser:
        browser = Browser()
        if sid:
            browser.cookies.set("relais_sso", sid)
        return browser


def shutdown(servers) -> None:
    """Stop werkzeug servers together (each takes up to its poll interval to notice)."""
    threads = [threading.Thread(target=server.shutdown) for server in servers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5)


def no_form(response) -> bool:
    return saml_form(response) is None and "<form" not in response.text


@pytest.fixture
def world(sqlite_engine, tmp_path):
    w = IdpWorld(sqlite_engine, tmp_path, {
        "maths": ({}, {"attributes": ["GARPersonProfils", "GARPersonEtab", "GARPersonGroupe",
                                      {"attribute": "sn", "name": "urn:oid:2.5.4.4"}, "ENTEleveClasses"]}),
        "lecture": ({"sign_requests": False}, {}),
    })
    yield w
    w.stop()


# -- metadata ----------------------------------------------------------------------------------

def test_metadata_publishes_every_key_and_both_sso_bindings_and_is_signed(world, tmp_path, monkeypatch):
    from onelogin.saml2.utils import OneLogin_Saml2_Utils

    root = etree.fromstring(world.idp_metadata)
    ns = {"md": "urn:oasis:names:tc:SAML:2.0:metadata", "ds": "http://www.w3.org/2000/09/xmldsig#"}
    assert root.get("entityID") == f"{world.url}/idp/metadata"
    certs = root.xpath("md:IDPSSODescriptor/md:KeyDescriptor[@use='signing']//ds:X509Certificate/text()",
                       namespaces=ns)
    assert certs == [key_pair(n).cert_base64 for n in ("relais-idp-2025", "relais-idp-2026")]  # rollover
    sso = {(e.get("Binding").rsplit(":", 1)[-1], e.get("Location"))
           for e in root.xpath("md:IDPSSODescriptor/md:SingleSignOnService", namespaces=ns)}
    assert sso == {("HTTP-Redirect", f"{world.url}/idp/sso"), ("HTTP-POST", f"{world.url}/idp/sso")}
    # python3-saml, not our code, checks the signature, with the signing key's certificate
    assert OneLogin_Saml2_Utils.validate_metadata_sign(world.idp_metadata,
                                                        key_pair("relais-idp-2025").cert_pem.decode(),
                                                        validatecert=False)
    assert not OneLogin_Saml2_Utils.validate_metadata_sign(world.idp_metadata,
                                                            key_pair("relais-idp-2026").cert_pem.decode(),
                                                            validatecert=False)

    from app.cli import main

    config = tmp_path / "sso.yaml"
    config.write_text(yaml.safe_dump({"base_url": world.url, "idp": world.idp_section}))
    out = CliRunner().invoke(main, ["sso", "idp-metadata", "--config", str(config)])
    assert out.exit_code == 0, out.output
    printed = etree.fromstring(out.stdout_bytes.strip())
    assert printed.get("entityID") == root.get("entityID")
    assert printed.xpath("md:IDPSSODescriptor/md:KeyDescriptor//ds:X509Certificate/text()", namespaces=ns) == certs


# -- SP-initiated SSO --------------------------------------------------------------------------

def test_sp_initiated_login_with_a_session_is_accepted_by_pysaml2(engine, tmp_path):
    world = IdpWorld(engine, tmp_path, {"maths": ({}, {"attributes": [
        "GARPersonProfils", "GARPersonEtab", "GARPersonGroupe", {"attribute": "sn", "name": "urn:oid:2.5.4.4"}]})})
    try:
        maths = world.platforms["maths"]
        for binding in ("redirect", "post"):
            browser = world.browser(world.login("1001"))
            url, form = maths.login_url(binding=binding, relay_state="/cours/42")
            if form:  # a cross-site POST: SameSite=Lax keeps the cookie out of it, not out of the GET after
                r = requests.post(url, data=form, allow_redirects=False, timeout=15)
                assert r.status_code == 303, r.text
                r = browser.go(world.url + r.headers["Location"])
            else:
                action, fields = saml_form(browser.get(url, timeout=15))
                r = browser.post(action, data=fields, timeout=15)
            assert r.text.startswith("platform: welcome"), (binding, r.status_code, r.text, maths.errors)
            check_sp_initiated_result(maths, maths.results[-1])
        assert len(maths.results) == 2 and not maths.errors
    finally:
        world.stop()


def check_sp_initiated_result(maths: Platform, result: dict) -> None:
    """What the platform must have received from an SP-initiated login of pupil 1001."""
    assert result["format"] == PERSISTENT
    assert result["name_id"] == documented_name_id(SECRET, maths.entity_id, "1001")
    assert result["relay_state"] == "/cours/42" and result["in_response_to"] in maths.outstanding
    ava = result["ava"]
    assert ava["GARPersonProfils"] == ["National_elv"] and ava["GARPersonEtab"] == [UAI]
    assert ava["GARPersonGroupe"] == [f"{UAI}$6A"]
    assert ava["sn"] == ["Nom1001"]  # sent as urn:oid:2.5.4.4, read back as sn by pysaml2
    assert set(ava) == {"GARPersonProfils", "GARPersonEtab", "GARPersonGroupe", "sn"}
    raw = etree.fromstring(result["raw"])
    assert raw.find(f"{{{SAML}}}Assertion") is not None  # no encryption key in this platform's metadata


def test_without_a_session_the_browser_logs_in_and_comes_back(world):
    maths = world.platforms["maths"]
    browser = world.browser()
    url, form = maths.login_url(binding="post", relay_state="rs-1")
    r = browser.post(url, data=form, allow_redirects=False, timeout=15)
    assert r.status_code == 303  # SameSite=Lax: the cookie comes with the GET that follows, not with this POST
    r = browser.get(world.url + r.headers["Location"], allow_redirects=False, timeout=15)
    assert r.status_code == 302
    login = urlsplit(r.headers["Location"])
    assert login.path == "/saml/login"
    next_path = parse_qs(login.query)["next"][0]
    assert next_path.startswith("/idp/sso/continue?request=") and "force_authn" not in parse_qs(login.query)
    # the SAML SP logs the user in (here: the session it would open) and redirects to `next`
    browser.cookies.set("relais_sso", world.login("1001"))
    r = browser.go(world.url + next_path)
    assert r.text.startswith("platform: welcome"), (r.text, maths.errors)
    (result,) = maths.results
    assert result["relay_state"] == "rs-1" and result["in_response_to"] in maths.outstanding

    # the continuation cannot be altered, nor used once expired
    payload, mac = parse_qs(urlsplit(next_path).query)["request"][0].split(".")
    forged = json.loads(base64.urlsafe_b64decode(payload))
    forged["acs"] = "https://evil.example/acs"
    tampered = base64.urlsafe_b64encode(json.dumps(forged).encode()).decode() + "." + mac
    r = browser.get(f"{world.url}/idp/sso/continue", params={"request": tampered}, timeout=15)
    assert r.status_code == 400 and no_form(r) and "altered" in r.text
    world.clock.offset = __import__("datetime").timedelta(minutes=11)
    r = browser.get(world.url + next_path, timeout=15)
    assert r.status_code == 400 and no_form(r) and "expired" in r.text


def test_coming_back_without_a_session_is_a_clear_page_not_a_loop(world):
    maths = world.platforms["maths"]
    url, _ = maths.login_url()
    r = world.browser().get(url, allow_redirects=False, timeout=15)
    next_path = parse_qs(urlsplit(r.headers["Location"]).query)["next"][0]
    r = world.browser().get(world.url + next_path, allow_redirects=False, timeout=15)  # cookies blocked
    assert r.status_code == 400 and "cookies" in r.text and no_form(r)


def test_the_whole_chain_through_a_national_idp(sqlite_engine, tmp_path):
    """Platform (pysaml2 SP) -> our IdP -> our SP -> EduConnect (a pysaml2 IdP) -> our SP -> our IdP -> platform."""
    national = PysamlIdp(tmp_path)
    sp_key, sp_cert = key_pair("sp-2025").write(tmp_path / "keys", "sp-2025")
    saml = {"keys": [{"id": "sp-2025", "key_file": str(sp_key), "cert_file": str(sp_cert)}],
            "requested_attributes": ["FrEduCtPersonAffiliation", "FrEduCtId", "FrEduCtRefId"],
            "idps": [{"id": "educonnect", "kind": "educonnect", "label": "ÉduConnect",
                      "metadata_url": f"{national.base}/idp/metadata"}]}
    world = IdpWorld(sqlite_engine, tmp_path, {"maths": ({}, {"attributes": ["GARPersonProfils"]})}, saml=saml)
    try:
        national.trust_sp(sp_metadata(parse_saml(world.config.saml, where="t", base_url=world.url)))
        national.user = ("nid-1001", {AFFILIATION: ["eleve2d"], "FrEduCtRefId": ["{AAF}01|X|1001"],
                                      FRED_CT_ID: ["fe-1001"]})
        maths = world.platforms["maths"]
        url, _ = maths.login_url(relay_state="chain")
        browser = world.browser()
        r = browser.go(url, max_forms=8)
        assert r.text.startswith("platform: welcome"), (r.text, maths.errors)
        hops = [(urlsplit(u).port, urlsplit(u).path) for u in browser.trail]
        ours, theirs, platform = (urlsplit(u).port for u in (world.url, national.base, maths.base))
        assert hops == [(ours, "/idp/sso"), (ours, "/saml/login"), (theirs, "/idp/sso/redirect"),
                        (ours, "/saml/acs"), (ours, "/idp/sso/continue"), (platform, "/sp/acs")]
        (result,) = maths.results
        assert result["name_id"] == documented_name_id(SECRET, maths.entity_id, "1001")
        assert result["ava"] == {"GARPersonProfils": ["National_elv"]} and result["relay_state"] == "chain"
    finally:
        world.stop()
        national.stop()


# -- IdP-initiated SSO -------------------------------------------------------------------------

def test_idp_initiated_launch_posts_an_unsolicited_response(world):
    maths = world.platforms["maths"]
    r = world.browser(world.login("1001")).go(f"{world.url}/idp/launch/maths?RelayState=%2Fexercices")
    assert r.text.startswith("platform: welcome"), (r.text, maths.errors)
    (result,) = maths.results
    assert result["in_response_to"] is None and result["relay_state"] == "/exercices"
    assert result["name_id"] == documented_name_id(SECRET, maths.entity_id, "1001")
    assert etree.fromstring(result["raw"]).get("InResponseTo") is None

    r = world.browser().get(f"{world.url}/idp/launch/maths", allow_redirects=False, timeout=15)
    assert r.status_code == 302 and r.headers["Location"].startswith("/saml/login?next=%2Fidp%2Fsso%2Fcontinue")
    r = world.browser().get(f"{world.url}/idp/launch/nowhere", allow_redirects=False, timeout=15)
    assert r.status_code == 403 and no_form(r)


def test_a_platform_may_refuse_idp_initiated_logins(sqlite_engine, tmp_path):
    world = IdpWorld(sqlite_engine, tmp_path, {"strict": ({}, {"idp_initiated": False})})
    try:
        r = world.browser(world.login()).get(f"{world.url}/idp/launch/strict", allow_redirects=False, timeout=15)
        assert r.status_code == 403 and no_form(r) and "Accès direct impossible" in r.text
    finally:
        world.stop()


# -- pseudonymous NameIDs ----------------------------------------------------------------------

def launch(world, platform: str, sid: str, instance: int = 0) -> dict:
    url = f"http://127.0.0.1:{world.servers[instance].port}/idp/launch/{platform}"
    r = world.browser(sid).go(url)
    assert r.text.startswith("platform: welcome"), (r.text, world.platforms[platform].errors)
    return world.platforms[platform].results[-1]


def test_nameid_is_stable_per_platform_and_unlinkable_across_platforms(engine, tmp_path):
    world = IdpWorld(engine, tmp_path, {"maths": ({}, {}), "lecture": ({}, {})}, instances=2)
    try:
        first = launch(world, "maths", world.login("1001"), instance=0)["name_id"]
        again = launch(world, "maths", world.login("1001"), instance=1)["name_id"]  # another session, instance
        other_platform = launch(world, "lecture", world.login("1001"))["name_id"]
        other_person = launch(world, "maths", world.login("1002"))["name_id"]
        assert first == again == documented_name_id(SECRET, world.platforms["maths"].entity_id, "1001")
        assert other_platform == documented_name_id(SECRET, world.platforms["lecture"].entity_id, "1001")
        assert len({first, other_platform, other_person}) == 3 and len(first) == 52
        assert "1001" not in first and "1001" not in other_platform
        raw = etree.fromstring(world.platforms["maths"].results[0]["raw"])
        name_id = raw.find(f".//{{{SAML}}}NameID")
        assert name_id.get("SPNameQualifier") == world.platforms["maths"].entity_id
        assert name_id.get("NameQualifier") == f"{world.url}/idp/metadata"
    finally:
        world.stop()


def test_transient_nameids_change_at_every_login(sqlite_engine, tmp_path):
    world = IdpWorld(sqlite_engine, tmp_path, {"quiz": ({}, {"nameid_format": "transient"})})
    try:
        sid = world.login("1001")
        one, two = launch(world, "quiz", sid), launch(world, "quiz", sid)
        assert one["format"] == two["format"] == "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
        assert one["name_id"] != two["name_id"]
    finally:
        world.stop()


def test_a_changed_secret_is_refused_until_an_operator_accepts_it(engine, tmp_path, monkeypatch):
    from app.cli import main

    world = IdpWorld(engine, tmp_path, {"maths": ({}, {})})
    try:
        before = launch(world, "maths", world.login("1001"))["name_id"]
    finally:
        world.stop()
    # the territory's next deployment (say, another ENT vendor) starts with another secret
    world = IdpWorld(engine, tmp_path, {"maths": ({}, {})}, secret=OTHER_SECRET, directory=False)
    try:
        r = world.browser(world.login("1001")).get(f"{world.url}/idp/launch/maths", timeout=15)
        assert r.status_code == 503 and no_form(r) and not world.platforms["maths"].results

        config = tmp_path / "sso.yaml"
        config.write_text(yaml.safe_dump({"base_url": world.url, "idp": world.idp_section}))
        monkeypatch.setenv("RELAIS_DATABASE_URL", engine.url.render_as_string(hide_password=False))
        monkeypatch.setenv("RELAIS_SSO_SECRET", OTHER_SECRET.decode())
        runner = CliRunner()
        status = runner.invoke(main, ["sso", "idp-secret", "--config", str(config), "--json"])
        assert status.exit_code == 1
        report = json.loads(status.stdout)
        assert report["matches"] is False and report["changed"] is False
        assert OTHER_SECRET.decode() not in status.output and SECRET.decode() not in status.output
        accepted = runner.invoke(main, ["sso", "idp-secret", "--config", str(config), "--accept-change"])
        assert accepted.exit_code == 0 and "new identifier" in accepted.output

        after = launch(world, "maths", world.login("1001"))["name_id"]
        assert after == documented_name_id(OTHER_SECRET, world.platforms["maths"].entity_id, "1001") != before
        status = runner.invoke(main, ["sso", "idp-secret", "--config", str(config), "--json"])
        assert status.exit_code == 0 and json.loads(status.stdout)["previous_fingerprint"]
    finally:
        world.stop()


# -- attribute release --------------------------------------------------------------------------

def test_attribute_release_keeps_to_each_platforms_list(world):
    sid = world.login("1001")
    maths = launch(world, "maths", sid)
    lecture = launch(world, "lecture", sid)
    assert lecture["ava"] == {}
    assert etree.fromstring(lecture["raw"]).find(f".//{{{SAML}}}AttributeStatement") is None
    assert set(maths["ava"]) == {"GARPersonProfils", "GARPersonEtab", "GARPersonGroupe", "sn", "ENTEleveClasses"}
    assert maths["ava"]["ENTEleveClasses"] == ["S1$6A"]
    released = {a.get("Name") for a in etree.fromstring(maths["raw"]).iter(f"{{{SAML}}}Attribute")}
    assert released == {"GARPersonProfils", "GARPersonEtab", "GARPersonGroupe", "urn:oid:2.5.4.4", "ENTEleveClasses"}

    teacher = launch(world, "maths", world.login("T1"))["ava"]
    # T1 is staff without a teaching function in the sample directory: National_ETA, National_eta for the GAR
    assert teacher["GARPersonProfils"] == ["National_eta"] and "ENTEleveClasses" not in teacher


def test_assertions_are_encrypted_to_a_platform_that_publishes_an_encryption_key(sqlite_engine, tmp_path):
    world = IdpWorld(sqlite_engine, tmp_path, {"secret": ({"encryption": True}, {"attributes": ["sn"]})})
    try:
        result = launch(world, "secret", world.login("1001"))
        raw = etree.fromstring(result["raw"])
        assert raw.find(f"{{{SAML}}}Assertion") is None and raw.find(f"{{{SAML}}}EncryptedAssertion") is not None
        method = raw.find(".//{http://www.w3.org/2001/04/xmlenc#}EncryptionMethod").get("Algorithm")
        assert method == "http://www.w3.org/2009/xmlenc11#aes256-gcm"
        assert b"Nom1001" not in result["raw"] and result["ava"] == {"sn": ["Nom1001"]}  # decrypted by pysaml2
    finally:
        world.stop()


# -- what the IdP refuses ----------------------------------------------------------------------

def instant(delta_seconds: int = 0) -> str:
    import datetime as dt

    return (dt.datetime.now(dt.UTC) + dt.timedelta(seconds=delta_seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")


def hand_made_request(world, issuer: str, *, destination: str | None = None, issued: int = 0, body: str = "",
                      prolog: str = "", attrs: str = "") -> bytes:
    """An unsigned AuthnRequest written by hand (for what no SAML library would send)."""
    dest = f' Destination="{destination}"' if destination else ""
    return (f'{prolog}<samlp:AuthnRequest xmlns:samlp="{SAMLP}" xmlns:saml="{SAML}" ID="_hand{issued & 0xffff}x" '
            f'Version="2.0" IssueInstant="{instant(issued)}"{dest}{attrs}><saml:Issuer>{issuer}</saml:Issuer>{body}'
            "</samlp:AuthnRequest>").encode()


def send_redirect(world, xml: bytes, browser=None, **params):
    compressor = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -15)
    value = base64.b64encode(compressor.compress(xml) + compressor.flush()).decode()
    query = "&".join([f"SAMLRequest={quote(value, safe='')}"] + [f"{k}={quote(v, safe='')}" for k, v in params.items()])
    return (browser or world.browser()).get(f"{world.url}/idp/sso?{query}", allow_redirects=False, timeout=15)


def send_post(world, xml: bytes, browser=None):
    return (browser or world.browser()).post(f"{world.url}/idp/sso", data={"SAMLRequest": base64.b64encode(xml)},
                                             allow_redirects=False, timeout=15)


def refused(response, status: int, *words: str) -> None:
    assert response.status_code == status, (response.status_code, response.text)
    assert no_form(response), "a refused request must not be answered with a form"
    text = response.text.replace("&#x27;", "'").replace("&quot;", '"')
    for word in words:
        assert word in text, (word, text)


def test_unknown_platforms_get_nothing(world, tmp_path):
    stranger = Platform(tmp_path / "stranger", "stranger")
    try:
        stranger.trust(world.idp_metadata)
        url, _ = stranger.login_url()
        refused(world.browser(world.login()).get(url, allow_redirects=False, timeout=15), 403,
                "n'est pas enregistrée", f"Issuer '{stranger.entity_id}' is not a registered platform")
    finally:
        stranger.stop()


def test_only_acs_urls_of_the_platforms_metadata_are_answered(sqlite_engine, tmp_path):
    world = IdpWorld(sqlite_engine, tmp_path, {"maths": ({"second_acs": True}, {})})
    try:
        maths = world.platforms["maths"]
        sid = world.login()
        url, _ = maths.login_url(assertion_consumer_service_url="https://evil.example/acs")
        refused(world.browser(sid).get(url, allow_redirects=False, timeout=15), 400,
                "AssertionConsumerServiceURL is not an HTTP-POST ACS of its registered metadata")
        url, _ = maths.login_url(assertion_consumer_service_index="7")
        refused(world.browser(sid).get(url, allow_redirects=False, timeout=15), 400, "no HTTP-POST ACS with index")
        url, _ = maths.login_url(assertion_consumer_service_url=maths.acs_urls[1])
        r = world.browser(sid).go(url)
        assert r.text.startswith("platform: welcome") and maths.results[-1]["acs"] == "/sp/acs2"
        assert not maths.errors
    finally:
        world.stop()


def test_requests_must_be_signed_when_the_platform_says_it_signs_them(world, tmp_path):
    maths = world.platforms["maths"]  # its metadata says AuthnRequestsSigned="true"
    sid = world.login()
    for binding in ("redirect", "post"):
        url, form = maths.login_url(binding=binding, sign=False)
        browser = world.browser(sid)
        r = browser.post(url, data=form, allow_redirects=False, timeout=15) if form else \
            browser.get(url, allow_redirects=False, timeout=15)
        refused(r, 400, "is not signed")
    # signed, but by a key that is not in the platform's metadata
    impostor = Platform(tmp_path / "impostor", "impostor", entity_id=maths.entity_id)
    try:
        impostor.trust(world.idp_metadata)
        for binding in ("redirect", "post"):
            url, form = impostor.login_url(binding=binding)
            browser = world.browser(sid)
            r = browser.post(url, data=form, allow_redirects=False, timeout=15) if form else \
                browser.get(url, allow_redirects=False, timeout=15)
            refused(r, 400, "does not verify with any trusted key")
    finally:
        impostor.stop()
    assert not maths.results and not impostor.results


HOSTILE = {  # case -> (prolog, body, what the page must say)
    "billion-laughs": ('<!DOCTYPE r [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>', "",
                       "declares a DTD"),
    "xxe-file": ('<!DOCTYPE r [<!ENTITY x SYSTEM "file:///etc/passwd">]>', "", "declares a DTD"),
    "external-dtd": ('<!DOCTYPE r SYSTEM "http://127.0.0.1:9/evil.dtd">', "", "declares a DTD"),
    "comment": ("", "<!-- hidden --><saml:Subject/>", "holds a comment"),
    "malformed": ("", "<saml:Subject>", "not well-formed XML"),
}


def test_hostile_or_broken_request_xml_is_refused_with_its_reason(world):
    lecture = world.platforms["lecture"]  # accepts unsigned requests: only the parser stands in the way
    sid = world.login()
    for case, (prolog, body, reason) in HOSTILE.items():
        xml = hand_made_request(world, lecture.entity_id, prolog=prolog, body=body)
        for send in (send_redirect, send_post):
            try:
                refused(send(world, xml, world.browser(sid)), 400, reason)
            except AssertionError as exc:
                raise AssertionError(f"{case} over {send.__name__}: {exc}") from None
    assert not lecture.results


def test_requests_out_of_time_or_misaddressed_are_refused(world):
    lecture = world.platforms["lecture"]  # accepts unsigned requests: only these checks stand in the way
    sid = world.login()
    cases = [
        (hand_made_request(world, lecture.entity_id, issued=-3600), "s ago (limit 600 s)"),
        (hand_made_request(world, lecture.entity_id, issued=600), "in the future"),
        (hand_made_request(world, lecture.entity_id, destination="https://other-idp.example/sso"),
         "not our endpoint"),
        (hand_made_request(world, lecture.entity_id, attrs=' ProtocolBinding="urn:oasis:names:tc:SAML:2.0:bindings:'
                                                           'HTTP-Artifact"'), "over HTTP-POST only"),
        (hand_made_request(world, lecture.entity_id).replace(b"AuthnRequest", b"LogoutRequest"),
         "not a samlp:AuthnRequest"),
    ]
    for xml, reason in cases:
        refused(send_redirect(world, xml, world.browser(sid)), 400, reason)
    r = world.browser(sid).post(f"{world.url}/idp/sso", data={"SAMLRequest": "A" * 300_000},
                                allow_redirects=False, timeout=15)
    assert r.status_code == 413 and no_form(r)
    refused(world.browser(sid).get(f"{world.url}/idp/sso", allow_redirects=False, timeout=15), 400,
            "no SAMLRequest")
    # the same hand-made request, well formed and in time, is answered
    r = world.browser(sid).go(f"{world.url}/idp/sso?SAMLRequest=" + quote(base64.b64encode(zlib.compress(
        hand_made_request(world, lecture.entity_id, destination=f"{world.url}/idp/sso"))[2:-4]).decode(), safe=""))
    assert r.text.startswith("platform: welcome"), r.text


def test_what_cannot_be_honoured_is_answered_with_a_saml_error_status(world):
    maths = world.platforms["maths"]
    url, _ = maths.login_url(is_passive="true")  # no session, and the platform forbids interaction
    r = world.browser().go(url)
    assert r.status_code == 403 and "StatusNoPassive" in maths.errors[-1]
    url, _ = maths.login_url(nameid_format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient")
    r = world.browser(world.login()).go(url)
    assert r.status_code == 403 and "StatusInvalidNameidPolicy" in maths.errors[-1]
    assert not maths.results


def test_force_authn_sends_a_logged_in_user_through_the_login_again(world):
    maths = world.platforms["maths"]
    browser = world.browser(world.login())
    url, _ = maths.login_url(force_authn="true")
    r = browser.get(url, allow_redirects=False, timeout=15)
    assert r.status_code == 302
    login = parse_qs(urlsplit(r.headers["Location"]).query)
    assert login["force_authn"] == ["true"]
    r = browser.get(world.url + login["next"][0], allow_redirects=False, timeout=15)
    refused(r, 400, "without an SSO session")  # the old session does not satisfy ForceAuthn
    browser.cookies.set("relais_sso", world.login())  # a new login, after the request
    r = browser.go(world.url + login["next"][0])
    assert r.text.startswith("platform: welcome"), (r.text, maths.errors)


# -- configuration ------------------------------------------------------------------------------

def test_every_configuration_problem_is_reported_with_where_it_is(tmp_path):
    good = Platform(tmp_path, "good", sign_requests=True)
    try:
        no_acs = tmp_path / "no-acs.xml"
        no_acs.write_bytes(good.metadata().replace(b"AssertionConsumerService", b"ArtifactResolutionService"))
        hostile = tmp_path / "hostile.xml"
        hostile.write_bytes(b'<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>' + good.metadata())
        unsigned = tmp_path / "unsigned.xml"
        unsigned.write_bytes(etree.tostring(_without_keys(good.metadata())))
        key, cert = key_pair("relais-idp-2025").write(tmp_path / "keys", "idp")
        section = {
            "keys": [{"id": "idp", "key_file": str(key), "cert_file": str(tmp_path / "missing.crt")}],
            "colour": "blue",
            "assertion_lifetime": 5,
            "platforms": [
                {"id": "good", "metadata_file": str(good.metadata_file), "attributes": ["ENTPersonSecret", 3],
                 "nameid_format": "email", "encrypt_assertions": True},
                {"id": "twin", "metadata_file": str(good.metadata_file)},
                {"id": "no-acs", "metadata_file": str(no_acs)},
                {"id": "hostile", "metadata_file": str(hostile)},
                {"id": "unsigned", "metadata_file": str(unsigned)},
                {"id": "gone", "metadata_file": str(tmp_path / "gone.xml"), "flavour": 1},
            ]}
        with pytest.raises(ConfigError) as err:
            parse_idp(section, where="sso.yaml", base_url="https://ent.example.org")
        problems = "\n".join(err.value.problems)
        for expected in [
            "sso.yaml: idp: unknown key 'colour'",
            "sso.yaml: idp.keys[0] (idp): cert_file", "missing.crt",
            "sso.yaml: idp.assertion_lifetime: an integer from 30 to 3600",
            "idp.platforms[0] (good).attributes[0]: 'ENTPersonSecret' is not an attribute we can release",
            "idp.platforms[0] (good).attributes[1]: an attribute name",
            "idp.platforms[0] (good): nameid_format: persistent or transient, got 'email'",
            "idp.platforms[0] (good): encrypt_assertions: true, but the metadata",
            f"idp.platforms[1] (twin): entityID {good.entity_id} is already registered",
            "idp.platforms[2] (no-acs): metadata", "has no AssertionConsumerService with the HTTP-POST binding",
            "idp.platforms[3] (hostile): metadata", "declares a DTD",
            "idp.platforms[4] (unsigned): its AuthnRequests must be signed, but the metadata",
            "idp.platforms[5] (gone): unknown key 'flavour'", "idp.platforms[5] (gone): metadata_file: cannot read",
        ]:
            assert expected in problems, (expected, problems)
        assert parse_idp({}, where="x", base_url="https://e") is None
        with pytest.raises(ConfigError) as err:
            parse_config({"base_url": "https://e", "idp": ["not", "a", "mapping"]}, "sso.yaml")
        assert "sso.yaml: idp: must be a mapping" in err.value.problems
    finally:
        good.stop()


def _without_keys(metadata: bytes) -> etree._Element:
    root = etree.fromstring(metadata)
    for kd in root.iter("{urn:oasis:names:tc:SAML:2.0:metadata}KeyDescriptor"):
        kd.getparent().remove(kd)
    return root


def test_check_config_reports_the_idp(world, tmp_path):
    from app.cli import main

    config = tmp_path / "sso.yaml"
    config.write_text(yaml.safe_dump({"base_url": world.url, "idp": world.idp_section}))
    out = CliRunner().invoke(main, ["sso", "check-config", str(config), "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)["idp"]
    assert [k["signs_assertions"] for k in report["keys"]] == [True, False]
    maths, lecture = report["platforms"]
    assert maths["acs"] == [world.platforms["maths"].acs] and maths["require_signed_requests"] is True
    assert lecture["require_signed_requests"] is False and lecture["attributes"] == []
    assert maths["attributes"] == ["GARPersonProfils", "GARPersonEtab", "GARPersonGroupe", "urn:oid:2.5.4.4",
                                   "ENTEleveClasses"]
    text = CliRunner().invoke(main, ["sso", "check-config", str(config)])
    assert text.exit_code == 0 and "resource platform(s): maths, lecture" in text.output


# -- single logout started by a platform --------------------------------------------------------

def session_alive(world, sid: str) -> bool:
    with world.engine.connect() as conn:
        return sessions.get_session(conn, sid, world.clock(), touch=False) is not None


@pytest.mark.parametrize("binding", ["post", "redirect"])
def test_a_platform_logout_ends_the_ent_session_and_is_answered(world, binding):
    from sqlalchemy import select

    from relais.bus.tables import outbox

    maths = world.platforms["maths"]
    sid = world.login("1001")
    browser = world.browser(sid)
    login = launch(world, "maths", sid)
    other = world.login("1002")
    launch(world, "maths", other)
    url, form = maths.logout_url(login["subject"], f"{world.url}/idp/metadata", binding=binding)
    r = browser.post(url, data=form, allow_redirects=False, timeout=15) if form else \
        browser.get(url, allow_redirects=False, timeout=15)
    assert r.status_code == 302 and "relais_sso=; Expires=Thu, 01 Jan 1970" in r.headers.get("Set-Cookie", ""), r.text
    assert browser.get(r.headers["Location"], timeout=15).text == "platform: logged out", maths.errors
    assert maths.logout_statuses == ["urn:oasis:names:tc:SAML:2.0:status:Success"]
    assert not session_alive(world, sid) and session_alive(world, other)
    with world.engine.connect() as conn:
        reasons = [json.loads(b)["payload"]["reason"] for (b,) in
                   conn.execute(select(outbox.c.body).where(outbox.c.type == "sso.logout"))]
    assert reasons == ["user"]


def test_a_logout_request_that_names_another_session_ends_nothing(world):
    maths = world.platforms["maths"]
    victim, attacker = world.login("1001"), world.login("1002")
    victim_login = launch(world, "maths", victim)
    url, form = maths.logout_url(victim_login["subject"], f"{world.url}/idp/metadata")
    r = world.browser(attacker).post(url, data=form, allow_redirects=False, timeout=15)  # in another browser
    assert r.status_code == 302 and "relais_sso" not in r.headers.get("Set-Cookie", "")
    requests.get(r.headers["Location"], timeout=15)
    assert maths.logout_statuses == ["StatusUnknownPrincipal"]
    assert session_alive(world, victim) and session_alive(world, attacker)


def test_logout_requests_must_be_signed_and_a_cross_site_post_comes_back_for_the_cookie(world):
    maths = world.platforms["maths"]
    sid = world.login("1001")
    login = launch(world, "maths", sid)
    url, form = maths.logout_url(login["subject"], f"{world.url}/idp/metadata", sign=False)
    refused(world.browser(sid).post(url, data=form, allow_redirects=False, timeout=15), 400, "is not signed")
    assert session_alive(world, sid)
    url, form = maths.logout_url(login["subject"], f"{world.url}/idp/metadata")
    browser = world.browser()  # the cross-site POST arrives without the SSO cookie
    r = browser.post(url, data=form, allow_redirects=False, timeout=15)
    assert r.status_code == 303 and r.headers["Location"].startswith("/idp/slo/continue?request=")
    browser.cookies.set("relais_sso", sid)  # ...which the top-level GET that follows carries
    r = browser.get(world.url + r.headers["Location"], timeout=15)
    assert r.text == "platform: logged out" and not session_alive(world, sid)


def test_our_messages_follow_the_saml_schemas(sqlite_engine, tmp_path):
    """python3-saml's copy of the OASIS schemas judges our metadata, responses (plain, encrypted, error) and
    LogoutResponses."""
    from onelogin.saml2.xml_utils import OneLogin_Saml2_XML

    world = IdpWorld(sqlite_engine, tmp_path, {"maths": ({}, {"attributes": ["GARPersonProfils", "sn"]}),
                                               "secret": ({"encryption": True}, {})})
    try:
        maths = world.platforms["maths"]
        sid = world.login("1001")
        documents = [(world.idp_metadata, "saml-schema-metadata-2.0.xsd"),
                     (launch(world, "maths", sid)["raw"], "saml-schema-protocol-2.0.xsd"),
                     (launch(world, "secret", sid)["raw"], "saml-schema-protocol-2.0.xsd")]
        url, _ = maths.login_url(is_passive="true")
        r = world.browser().get(url, timeout=15)
        documents.append((base64.b64decode(saml_form(r)[1]["SAMLResponse"]), "saml-schema-protocol-2.0.xsd"))
        url, form = maths.logout_url(maths.results[0]["subject"], f"{world.url}/idp/metadata")
        r = world.browser(sid).post(url, data=form, allow_redirects=False, timeout=15)
        answer = parse_qs(urlsplit(r.headers["Location"]).query)["SAMLResponse"][0]
        documents.append((zlib.decompress(base64.b64decode(answer), -15), "saml-schema-protocol-2.0.xsd"))
        for document, schema in documents:
            result = OneLogin_Saml2_XML.validate_xml(document, schema)
            assert not isinstance(result, str), (schema, result, document[:300])
    finally:
        world.stop()
