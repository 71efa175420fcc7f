"""`make bench-sso`: end-to-end federated logins, measured against bare python3-saml validation.

In one run, single-process (the target is per core):
- a directory of realistic size: the synthetic academy of tools/synthetic_academy.py
  (default 100,000 persons), imported by the directory's own importer (the imported
  SQLite file is cached in the workdir and copied for each run; with
  `--database-url` PostgreSQL is emptied and imported into);
- an IdP standing in for EduConnect (its own key, its metadata in a file) answers one
  AuthnRequest per login: each request is made and stored by the SP itself
  (`ServiceProvider.start_login`, as /saml/login does), each response has its own
  assertion id, answers its request (`InResponseTo`), carries EduConnect's attributes
  under their OIDs (pupils: FrEduCtRefId and FrEduVecteur; parents: one FrEduVecteur per
  child), and its assertion is signed (RSA-SHA256, python3-saml's signer) then encrypted
  to the SP's key (AES-256-CBC, RSA-OAEP; `--plain` leaves it unencrypted). Built before
  the timed part;
- timed, one login after the other through the WSGI application in-process (plain
  WSGI calls, no HTTP server): POST /saml/acs (validation, replay cache, matching
  against the directory, session opened, its event in the outbox), GET /cas/login
  with the session cookie (a service ticket), GET /cas/p3/serviceValidate (the ticket
  consumed, the released attributes read from the directory); each answer is checked
  (the right person logged in); with `--concurrency N`, N threads of this process log in at once (as the
  server's threads do; on PostgreSQL, concurrent commits share their WAL flushes), and the JSON line's
  `concurrency` says so (the floors stay one after the other). The service logs as `relais serve sso` does (JSON lines,
  INFO) into `sso.log` in the workdir; `--profile` writes cProfile stats of this part;
- the floor, in the same run and on the same responses: bare python3-saml,
  `OneLogin_Saml2_Response(...)` (decryption) then `is_valid(...)` (schema, signature,
  conditions), strict, with the same IdP certificate and SP key (`floor_per_s`, `ratio`);
  and the tighter crypto floor, bare xmlsec with keys loaded once: the RSA-OAEP, AES and
  signature work alone (`crypto_floor_per_s`, `crypto_ratio`). Floors and logins run in
  alternating blocks, so machine noise falls on all;
- then the same logins through HTTP (`http_*`): the application served by the server `relais serve`
  runs it in (relais/ops/server.py: cheroot, its threads, limits and access logs), on a loopback
  port of this process, driven by a real HTTP client in another process (`--http-concurrency`
  clients, each a browser then an app on one kept-alive connection; http.client), each login
  on its own prepared response; `http_logins_per_cpu_s` counts the server's CPU only;
- afterwards, a response posted again is refused (replay), and the counts of sessions
  and login events are checked against the logins, the HTTP ones included;
- then OpenID Connect code flows on live sessions (`oidc_*`, `--oidc-flows`; tools/bench/sso_oidc.py): authorize,
  token, userinfo, against Authlib's bare ID token signing as the floor.
The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import io
import json
import multiprocessing
import os
import random
import shutil
import sys
import threading
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, urlencode, urlsplit

import orjson
import xmlsec
from lxml import etree
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils
from sqlalchemy import func, select

from relais.bus.tables import outbox
from relais.db import make_engine, upgrade, writer
from relais.ops.logs import configure_logging
from relais.ops.server import HttpSettings, WsgiServer
from services.directory.adapters.tables import person as person_t
from services.directory.adapters.tables import structure as structure_t
from services.directory.api import Directory
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from services.sso.app import SsoApp
from services.sso.config import parse_config
from services.sso.rules.account_matching import match_identity
from services.sso.rules.national_attributes import named_attributes
from services.sso.saml.bindings import inflate_b64
from services.sso.tables import session as session_t
from tools.bench import empty, sso_oidc
from tools.local_idp import EDUCONNECT, write_key_pair
from tools.synthetic_academy import generate_academy

BASE_URL = "https://ent.bench.invalid"
SERVICE = "https://app.bench.invalid/portal/"
IDP_ENTITY = "https://educonnect.bench.invalid/idp"
AFFILIATION, FRED_CT_ID, URL_RETOUR, SN, GIVEN_NAME = (
    EDUCONNECT[n] for n in ("FrEduCtPersonAffiliation", "FrEduCtId", "FrEduUrlRetour", "sn", "givenName"))
RELEASED = ["uid", "ENTPersonProfils", "ENTPersonStructRattachUAI", "ENTEleveClasses", "ENTEleveMEF", "sn",
            "givenName", "ENTAuxPersRelEleveEleve"]
SAMLP_NS, SAML_NS = "urn:oasis:names:tc:SAML:2.0:protocol", "urn:oasis:names:tc:SAML:2.0:assertion"


@dataclass(frozen=True)
class Identity:
    jointure: str  # the account the login must reach
    kind: str  # pupil | parent
    attributes: dict[str, list[str]]  # as the IdP sends them (OIDs where EduConnect uses OIDs)


@dataclass(frozen=True)
class Prepared:
    identity: Identity
    browser: str  # the SAML browser-binding cookie the login started with
    request_id: str
    response_b64: str
    form: bytes  # the browser's POST body to the ACS (encoding it is the browser's work, not timed)


# -- the directory ------------------------------------------------------------------------------

def academy_files(persons: int, folder: Path) -> list[Path]:
    """The synthetic academy (generated once, cached as make bench-directory caches it)."""
    academy = folder / f"academy-{persons}"
    marker = academy / "summary.json"
    if not marker.exists():
        shutil.rmtree(academy, ignore_errors=True)
        t = time.perf_counter()
        marker.parent.mkdir(parents=True, exist_ok=True)
        summary = generate_academy(academy, persons)
        marker.write_text(json.dumps(summary))
        print(f"generated {summary['persons']} persons in {time.perf_counter() - t:.0f}s into {academy}",
              file=sys.stderr)
    return [academy]


def directory_engine(args):
    """A database holding the imported academy (and nothing else of the sso's), migrated to the newest schema."""
    def imported(engine) -> None:
        upgrade(engine)
        t = time.perf_counter()
        report = DirectoryImporter(engine, "bench", ImportOptions(workers=2)).run(
            academy_files(args.persons, args.academy_dir))
        if not report.ok:
            raise SystemExit(f"the directory import failed: {report.status}")
        with writer(engine).begin() as conn:  # the directory's events are not the sso's
            conn.exec_driver_sql("DELETE FROM relais_outbox")
        print(f"directory: {args.persons} persons imported in {time.perf_counter() - t:.0f}s", file=sys.stderr)

    if args.database_url:
        engine = make_engine(args.database_url)
        empty(engine)
        imported(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE" if engine.dialect.name == "postgresql" else "PRAGMA optimize")
            conn.commit()
        return engine
    template = args.workdir / f"directory-{args.persons}.db"
    if not template.exists():
        staging = template.with_suffix(".staging")
        for leftover in staging.parent.glob(staging.name + "*"):
            leftover.unlink()
        engine = make_engine(f"sqlite:///{staging.resolve()}")
        imported(engine)
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        engine.dispose()
        staging.rename(template)
    run = args.workdir / "run"
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    shutil.copyfile(template, run / "relais.db")
    engine = make_engine(f"sqlite:///{(run / 'relais.db').resolve()}")
    upgrade(engine)
    return engine


def identities(engine, count: int, rng: random.Random) -> list[Identity]:
    """`count` distinct people of the academy, 60 % pupils and 40 % parents, with what EduConnect says of them."""
    with engine.connect() as conn:
        uai = {j: u for j, u in conn.execute(structure_t.select().with_only_columns(structure_t.c.jointure,
                                                                                  structure_t.c.uai))}
        pupils = conn.execute(person_t.select().with_only_columns(person_t.c.jointure).where(
            person_t.c.category == "Eleve")).scalars().all()
        chosen = rng.sample(pupils, min(len(pupils), count))
        records: dict[str, dict] = {}
        for start in range(0, len(chosen), 500):
            rows = conn.execute(person_t.select().with_only_columns(person_t.c.jointure, person_t.c.data).where(
                person_t.c.jointure.in_(chosen[start:start + 500])))
            records.update((j, orjson.loads(d)["record"]) for j, d in rows)
        parents_of: dict[str, list[str]] = {}
        for pupil in chosen:
            for m in records[pupil]["memberships"]:
                if m["kind"] == "relative":
                    parents_of.setdefault(m["person"], []).append(pupil)
        parent_ids = sorted(parents_of)
        for start in range(0, len(parent_ids), 500):
            rows = conn.execute(person_t.select().with_only_columns(person_t.c.jointure, person_t.c.data).where(
                person_t.c.jointure.in_(parent_ids[start:start + 500])))
            records.update((j, orjson.loads(d)["record"]) for j, d in rows)

    def vector(kind: str, person: dict, pupil: dict) -> str:
        return "|".join((kind, (person.get("last_name") or "").upper(), person.get("first_name") or "",
                         pupil["struct_rattach_id"], uai[pupil["structure"]]))

    out: list[Identity] = []
    n_parents = count * 2 // 5
    for jointure in chosen[:count - n_parents]:
        p = records[jointure]
        out.append(Identity(jointure, "pupil", {
            AFFILIATION: ["eleve2d"], FRED_CT_ID: [f"fe-{uuid.uuid4().hex[:12]}"],
            "FrEduCtRefId": [f"{{AAF}}SYNTH|{p['struct_rattach_id']}|{jointure}"],
            "FrEduVecteur": [vector("4", p, p)], SN: [p["last_name"]], GIVEN_NAME: [p["first_name"]],
            URL_RETOUR: ["https://educonnect.bench.invalid/retour"]}))
    for jointure in [j for j in parent_ids if j in records][:n_parents]:
        p = records[jointure]
        out.append(Identity(jointure, "parent", {
            AFFILIATION: ["resp2d"], FRED_CT_ID: [f"fe-{uuid.uuid4().hex[:12]}"],
            "FrEduVecteur": [vector("2", p, records[child]) for child in parents_of[jointure]],
            SN: [p["last_name"]], GIVEN_NAME: [p["first_name"]],
            URL_RETOUR: ["https://educonnect.bench.invalid/retour"]}))
    rng.shuffle(out)
    return out


def matches_one(identity: Identity, directory) -> bool:
    """Whether this identity matches its one account (a parent whose namesake is a relative of the same child
    would be asked to choose: a page, not a login, so such people are left out of the benchmark)."""
    match = match_identity("educonnect", named_attributes((n, None, v) for n, v in identity.attributes.items()),
                           directory)
    return match.unique is not None and match.unique.jointure == identity.jointure


# -- the IdP standing in for EduConnect ------------------------------------------------------------

def _cert_base64(cert_pem: bytes) -> str:
    return "".join(line for line in cert_pem.decode().splitlines() if "CERTIFICATE" not in line)


def idp_metadata(cert_pem: bytes) -> bytes:
    b64 = _cert_base64(cert_pem)
    return (f'<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" '
            f'xmlns:ds="http://www.w3.org/2000/09/xmldsig#" entityID="{IDP_ENTITY}">'
            '<md:IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol" '
            'WantAuthnRequestsSigned="true"><md:KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>'
            f"<ds:X509Certificate>{b64}</ds:X509Certificate></ds:X509Data></ds:KeyInfo></md:KeyDescriptor>"
            '<md:SingleLogoutService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
            'Location="https://educonnect.bench.invalid/idp/slo"/>'
            '<md:SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" '
            'Location="https://educonnect.bench.invalid/idp/sso"/></md:IDPSSODescriptor></md:EntityDescriptor>'
            ).encode()


class StandInIdp:
    """Answers AuthnRequests as EduConnect would: a signed assertion, encrypted to the SP (unless `encrypt` is off)."""

    def __init__(self, key_pem: bytes, cert_pem: bytes, sp_cert_pem: bytes, *, sp_entity: str, acs: str,
                 encrypt: bool) -> None:
        self.key_pem, self.cert_pem = key_pem.decode(), cert_pem.decode()
        self.sp_entity, self.acs, self.encrypt = sp_entity, acs, encrypt
        self._manager = xmlsec.KeysManager()  # made once: making one costs ~20 ms (it loads an X.509 store)
        self._manager.add_key(xmlsec.Key.from_memory(sp_cert_pem, xmlsec.constants.KeyDataFormatCertPem, None))

    def response(self, request_id: str, identity: Identity, now: datetime) -> bytes:
        def instant(moment: datetime) -> str:
            return moment.strftime("%Y-%m-%dT%H:%M:%SZ")

        until = instant(now + timedelta(minutes=10))
        attrs = "".join(
            f'<saml:Attribute Name="{n}" NameFormat="urn:oasis:names:tc:SAML:2.0:attrname-format:uri">'
            + "".join(f"<saml:AttributeValue>{_xml(v)}</saml:AttributeValue>" for v in vs) + "</saml:Attribute>"
            for n, vs in identity.attributes.items())
        assertion = (
            f'<saml:Assertion xmlns:saml="{SAML_NS}" ID="_a{uuid.uuid4().hex}" Version="2.0" '
            f'IssueInstant="{instant(now)}"><saml:Issuer>{IDP_ENTITY}</saml:Issuer>'
            f'<saml:Subject><saml:NameID Format="urn:oasis:names:tc:SAML:2.0:nameid-format:transient" '
            f'SPNameQualifier="{self.sp_entity}">_n{uuid.uuid4().hex}</saml:NameID>'
            '<saml:SubjectConfirmation Method="urn:oasis:names:tc:SAML:2.0:cm:bearer">'
            f'<saml:SubjectConfirmationData InResponseTo="{request_id}" NotOnOrAfter="{until}" '
            f'Recipient="{self.acs}"/></saml:SubjectConfirmation></saml:Subject>'
            f'<saml:Conditions NotBefore="{instant(now - timedelta(seconds=30))}" NotOnOrAfter="{until}">'
            f"<saml:AudienceRestriction><saml:Audience>{self.sp_entity}</saml:Audience></saml:AudienceRestriction>"
            f'</saml:Conditions><saml:AuthnStatement AuthnInstant="{instant(now)}" SessionIndex="_s{uuid.uuid4().hex}">'
            "<saml:AuthnContext><saml:AuthnContextClassRef>urn:oasis:names:tc:SAML:2.0:ac:classes:"
            "PasswordProtectedTransport</saml:AuthnContextClassRef></saml:AuthnContext></saml:AuthnStatement>"
            f"<saml:AttributeStatement>{attrs}</saml:AttributeStatement></saml:Assertion>")
        signed = etree.fromstring(OneLogin_Saml2_Utils.add_sign(assertion, self.key_pem, self.cert_pem))
        root = etree.fromstring(
            f'<samlp:Response xmlns:samlp="{SAMLP_NS}" xmlns:saml="{SAML_NS}" ID="_r{uuid.uuid4().hex}" '
            f'Version="2.0" IssueInstant="{instant(now)}" Destination="{self.acs}" InResponseTo="{request_id}">'
            f"<saml:Issuer>{IDP_ENTITY}</saml:Issuer><samlp:Status><samlp:StatusCode "
            'Value="urn:oasis:names:tc:SAML:2.0:status:Success"/></samlp:Status></samlp:Response>')
        root.append(self._encrypted(signed) if self.encrypt else signed)
        return etree.tostring(root)

    def _encrypted(self, assertion):
        """<saml:EncryptedAssertion>: AES-256-CBC content key, transported with RSA-OAEP to the SP's certificate."""
        wrapper = etree.Element(f"{{{SAML_NS}}}EncryptedAssertion", nsmap={"saml": SAML_NS})
        wrapper.append(assertion)
        data = xmlsec.template.encrypted_data_create(wrapper, xmlsec.constants.TransformAes256Cbc,
                                                     type=xmlsec.constants.TypeEncElement, ns="xenc")
        xmlsec.template.encrypted_data_ensure_cipher_value(data)
        key_info = xmlsec.template.encrypted_data_ensure_key_info(data, ns="dsig")
        encrypted_key = xmlsec.template.add_encrypted_key(key_info, xmlsec.constants.TransformRsaOaep)
        xmlsec.template.encrypted_data_ensure_cipher_value(encrypted_key)
        context = xmlsec.EncryptionContext(self._manager)
        context.key = xmlsec.Key.generate(xmlsec.constants.KeyDataAes, 256, xmlsec.constants.KeyDataTypeSession)
        context.encrypt_xml(data, assertion)
        return wrapper


def _xml(value: str) -> str:
    return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# -- the floor: bare python3-saml --------------------------------------------------------------

class Floor:
    """python3-saml's strict validation of a response: parse, decrypt, schema, signature, conditions."""

    def __init__(self, sp_key_pem: bytes, sp_cert_pem: bytes, idp_cert_pem: bytes, *, sp_entity: str, acs: str,
                 encrypted: bool) -> None:
        self.settings = OneLogin_Saml2_Settings({
            "strict": True,
            "sp": {"entityId": sp_entity, "assertionConsumerService": {"url": acs},
                   "x509cert": _cert_base64(sp_cert_pem), "privateKey": sp_key_pem.decode()},
            "idp": {"entityId": IDP_ENTITY, "singleSignOnService": {"url": "https://educonnect.bench.invalid/idp/sso"},
                    "x509cert": _cert_base64(idp_cert_pem)},
            "security": {"wantAssertionsSigned": True, "wantAssertionsEncrypted": encrypted,
                         "rejectDeprecatedAlgorithm": True},
        }, sp_validation_only=True)
        parts = urlsplit(acs)
        self.request_data = {"https": "on", "http_host": parts.hostname, "script_name": parts.path,
                             "server_port": 443}

    def validate(self, prepared: Prepared) -> None:
        response = OneLogin_Saml2_Response(self.settings, prepared.response_b64)
        if not response.is_valid(self.request_data, request_id=prepared.request_id):
            raise SystemExit(f"python3-saml refused a benchmark response: {response.get_error()}")


class CryptoFloor:
    """The cryptography no login can skip, bare xmlsec with keys loaded once: parse, the content key (RSA-OAEP),
    the assertion (AES), its signature (RSA-SHA256, exclusive c14n). None of the checks around them."""

    def __init__(self, sp_key_pem: bytes, idp_cert_pem: bytes) -> None:
        self.sp_key = xmlsec.Key.from_memory(sp_key_pem, xmlsec.constants.KeyDataFormatPem, None)
        self.idp_key = xmlsec.Key.from_memory(idp_cert_pem, xmlsec.constants.KeyDataFormatCertPem, None)

    def validate(self, prepared: Prepared) -> None:
        ds, xenc = "{http://www.w3.org/2000/09/xmldsig#}", "{http://www.w3.org/2001/04/xmlenc#}"
        root = etree.fromstring(base64.b64decode(prepared.response_b64))
        assertion = root.find(f"{{{SAML_NS}}}Assertion")
        if assertion is None:
            data = root.find(f"{{{SAML_NS}}}EncryptedAssertion/{xenc}EncryptedData")
            encrypted_key = data.find(f"{ds}KeyInfo/{xenc}EncryptedKey") if data is not None else None
            if data is None or encrypted_key is None:
                raise SystemExit("a benchmark response holds no assertion")
            decryption = xmlsec.EncryptionContext()
            decryption.key = self.sp_key
            content_key = decryption.decrypt(encrypted_key)
            if not isinstance(content_key, bytes):  # an EncryptedKey decrypts to the key's bytes
                raise SystemExit("the content key of a benchmark response did not decrypt")
            decryption = xmlsec.EncryptionContext()
            decryption.key = xmlsec.Key.from_binary_data(xmlsec.constants.KeyDataAes, content_key)
            assertion = decryption.decrypt(data)
        verification = xmlsec.SignatureContext()
        verification.key = self.idp_key
        verification.register_id(assertion, "ID")
        signature = assertion.find(f"{ds}Signature")
        if signature is None:
            raise SystemExit("a benchmark assertion is not signed")
        verification.verify(signature)


# -- in-process WSGI calls -------------------------------------------------------------------------

def call(app, method: str, path: str, *, query: str = "", body: bytes = b"",
         cookies: dict[str, str] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, dict[str, list[str]], bytes]:
    """One request straight into the WSGI application: (status, headers, body)."""
    environ = {
        "REQUEST_METHOD": method, "SCRIPT_NAME": "", "PATH_INFO": path, "QUERY_STRING": query,
        "SERVER_NAME": "ent.bench.invalid", "SERVER_PORT": "443", "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "ent.bench.invalid", "REMOTE_ADDR": "127.0.0.1", "wsgi.version": (1, 0),
        "wsgi.url_scheme": "https", "wsgi.input": io.BytesIO(body), "wsgi.errors": sys.stderr,
        "wsgi.multithread": False, "wsgi.multiprocess": False, "wsgi.run_once": False,
        "CONTENT_LENGTH": str(len(body)),
    }
    if body:
        environ["CONTENT_TYPE"] = "application/x-www-form-urlencoded"
    if cookies:
        environ["HTTP_COOKIE"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    for name, value in (headers or {}).items():
        environ["HTTP_" + name.upper().replace("-", "_")] = value
    seen: list = []

    def start_response(status, headers, exc_info=None):
        seen[:] = [int(status.split(" ", 1)[0]), headers]

    chunks = app(environ, start_response)
    try:
        content = b"".join(chunks)
    finally:
        getattr(chunks, "close", lambda: None)()
    answered: dict[str, list[str]] = {}
    for name, value in seen[1]:
        answered.setdefault(name.lower(), []).append(value)
    return seen[0], answered, content


def _cookie(headers: dict[str, list[str]], name: str) -> str | None:
    for line in headers.get("set-cookie", ()):
        key, _, rest = line.partition("=")
        if key == name:
            return rest.split(";", 1)[0]
    return None


def login(app, prepared: Prepared, cookie_name: str, steps: list[list[float]] | None = None) -> None:
    """One federated login, as a browser then an app do it; raises if any answer is not the expected one.

    `steps`, when given, receives the seconds of each of the three requests (ACS, /cas/login, serviceValidate).
    """
    t0 = time.perf_counter()
    status, headers, _ = call(app, "POST", "/saml/acs", body=prepared.form,
                              cookies={f"{cookie_name}_saml": prepared.browser})
    session = _cookie(headers, cookie_name)
    if status != 302 or session is None:
        raise SystemExit(f"ACS answered {status} for {prepared.identity.kind} {prepared.identity.jointure}")
    t1 = time.perf_counter()
    next_path = urlsplit(headers["location"][0])
    status, headers, _ = call(app, "GET", next_path.path, query=next_path.query, cookies={cookie_name: session})
    location = headers.get("location", [""])[0]
    if status != 302 or not location.startswith(SERVICE):
        raise SystemExit(f"/cas/login answered {status} ({location[:60]})")
    t2 = time.perf_counter()
    ticket = parse_qs(urlsplit(location).query)["ticket"][0]
    status, _, body = call(app, "GET", "/cas/p3/serviceValidate",
                           query=urlencode({"ticket": ticket, "service": SERVICE}))
    if status != 200 or f"<cas:user>{prepared.identity.jointure}</cas:user>".encode() not in body:
        raise SystemExit(f"serviceValidate did not name {prepared.identity.jointure}: {body[:300]!r}")
    if steps is not None:
        steps.append([t1 - t0, t2 - t1, time.perf_counter() - t2])


def concurrently(app, block: list[Prepared], cookie_name: str, clients: int, latencies: list[float],
                 steps: list[list[float]]) -> None:
    """`login` for each of `block` by `clients` threads at once, as the server's threads run them: each login's
    latency is appended to `latencies`. On PostgreSQL a commit waits for its WAL flush; concurrent logins
    wait together (their flushes group), as they do in production, where one login alone would wait each time."""
    pending = list(reversed(block))
    lock = threading.Lock()
    errors: list[BaseException] = []

    def client() -> None:
        while True:
            with lock:
                if not pending or errors:
                    return
                prepared = pending.pop()
            t = time.perf_counter()
            try:
                login(app, prepared, cookie_name, steps)
            except BaseException as exc:  # SystemExit from a wrong answer included: reported below
                errors.append(exc)
                return
            latencies.append(time.perf_counter() - t)

    threads = [threading.Thread(target=client, name=f"bench-login-{i}") for i in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise SystemExit(f"a concurrent login failed: {errors[0]!r}")


# -- through HTTP ------------------------------------------------------------------------------------

HOST_HEADER = urlsplit(BASE_URL).hostname or ""


def http_login(conn: http.client.HTTPConnection, prepared: Prepared, cookie_name: str) -> None:
    """`login`, over HTTP on one kept-alive connection; raises if any answer is not the expected one."""
    def send(method: str, target: str, body: bytes | None = None, **headers: str) -> http.client.HTTPResponse:
        conn.request(method, target, body=body, headers={"Host": HOST_HEADER, **headers})
        response = conn.getresponse()
        response.read()
        return response

    answer = send("POST", "/saml/acs", prepared.form, **{"Content-Type": "application/x-www-form-urlencoded",
                                                         "Cookie": f"{cookie_name}_saml={prepared.browser}"})
    session = next((v.split(";", 1)[0].split("=", 1)[1] for k, v in answer.getheaders()
                    if k.lower() == "set-cookie" and v.startswith(cookie_name + "=")), None)
    if answer.status != 302 or session is None:
        raise RuntimeError(f"ACS answered {answer.status} for {prepared.identity.kind} {prepared.identity.jointure}")
    next_path = urlsplit(answer.getheader("Location") or "")
    answer = send("GET", f"{next_path.path}?{next_path.query}", Cookie=f"{cookie_name}={session}")
    location = answer.getheader("Location") or ""
    if answer.status != 302 or not location.startswith(SERVICE):
        raise RuntimeError(f"/cas/login answered {answer.status} ({location[:60]})")
    ticket = parse_qs(urlsplit(location).query)["ticket"][0]
    conn.request("GET", "/cas/p3/serviceValidate?" + urlencode({"ticket": ticket, "service": SERVICE}),
                 headers={"Host": HOST_HEADER})
    response = conn.getresponse()
    body = response.read()
    if response.status != 200 or f"<cas:user>{prepared.identity.jointure}</cas:user>".encode() not in body:
        raise RuntimeError(f"serviceValidate did not name {prepared.identity.jointure}: {body[:300]!r}")


def http_clients(port: int, logins: list[Prepared], cookie_name: str, concurrency: int, out) -> None:
    """In a process of its own: `concurrency` clients log everyone in; puts (seconds, latencies, errors) on `out`."""
    pending = list(reversed(logins))
    lock = threading.Lock()
    latencies: list[float] = []
    errors: list[str] = []

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        while True:
            with lock:
                if not pending:
                    break
                prepared = pending.pop()
            t = time.perf_counter()
            try:
                http_login(conn, prepared, cookie_name)
            except (OSError, http.client.HTTPException, RuntimeError) as exc:
                errors.append(str(exc))
                conn.close()
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            latencies.append(time.perf_counter() - t)
        conn.close()

    threads = [threading.Thread(target=client) for _ in range(concurrency)]
    t0 = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out.put((time.perf_counter() - t0, latencies, errors[:5] + ([f"... {len(errors)} errors"] if errors else [])))


def through_http(app, logins: list[Prepared], cookie_name: str, args) -> dict:
    """The logins through the production server on a loopback port: its figures, as `http_*` keys."""
    settings = HttpSettings(threads=args.http_threads)
    server = WsgiServer(app, "127.0.0.1", 0, what="the sso", where="the benchmark", settings=settings)
    context = multiprocessing.get_context("spawn")  # a clean interpreter: none of this process's threads
    out = context.Queue()
    warm, timed = logins[:args.warmup], logins[args.warmup:]
    try:
        for batch in (warm, timed):
            client = context.Process(target=http_clients, args=(server.port, batch, cookie_name,
                                                                args.http_concurrency, out))
            client.start()
            cpu = time.process_time()
            seconds, latencies, errors = out.get()
            cpu = time.process_time() - cpu
            client.join()
            if errors:
                raise SystemExit(f"logins through HTTP failed: {'; '.join(errors)}")
    finally:
        server.stop()
    return {"http_logins": len(timed), "http_server": "cheroot", "http_threads": settings.threads,
            "http_concurrency": args.http_concurrency, "http_logins_per_s": round(len(timed) / seconds, 1),
            "http_p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "http_p99_ms": round(percentile(latencies, 0.99) * 1000, 2),
            "http_logins_per_cpu_s": round(len(timed) / cpu, 1)}


# -- the run -----------------------------------------------------------------------------------------

def build(args, engine):
    """The sso application over `engine`, its IdP stand-in, the floor, and the prepared logins."""
    keys = args.workdir / "keys"
    sp_key, sp_cert = write_key_pair(keys, "sp")
    idp_key, idp_cert = write_key_pair(keys, "idp")
    (keys / "idp-metadata.xml").write_bytes(idp_metadata(idp_cert.read_bytes()))
    config = parse_config({
        "base_url": BASE_URL,
        "services": [{"id": "portal", "prefix": SERVICE, "attributes": RELEASED}],
        "saml": {"keys": [{"id": "sp", "key_file": str(sp_key), "cert_file": str(sp_cert)}],
                 "idps": [{"id": "educonnect", "kind": "educonnect", "label": "ÉduConnect",
                           "metadata_file": str(keys / "idp-metadata.xml"), "want_assertions_signed": True,
                           "want_assertions_encrypted": not args.plain}]},
        **({"oidc": sso_oidc.oidc_section(args.workdir)} if args.oidc_flows else {}),
    }, "bench")
    app = SsoApp(engine, config, directory=Directory(engine, "bench"), tenant="bench", secret=os.urandom(32))
    sp = app.sp.provider()
    if sp is None:
        raise SystemExit("the benchmark's SSO configuration has no saml section")
    idp_settings = sp.settings.idp("educonnect")
    if idp_settings is None:
        raise SystemExit("the benchmark's SSO configuration has no educonnect IdP")
    stand_in = StandInIdp(idp_key.read_bytes(), idp_cert.read_bytes(), sp_cert.read_bytes(),
                          sp_entity=sp.settings.entity_id, acs=sp.settings.acs_url, encrypt=not args.plain)
    floor = Floor(sp_key.read_bytes(), sp_cert.read_bytes(), idp_cert.read_bytes(), sp_entity=sp.settings.entity_id,
                  acs=sp.settings.acs_url, encrypted=not args.plain)

    rng = random.Random(args.seed)
    wanted = args.logins + args.warmup + (args.http_logins + args.warmup if args.http_logins else 0)
    people = [p for p in identities(engine, wanted + wanted // 10 + 10, rng) if matches_one(p, app.directory)]
    if len(people) < wanted:
        raise SystemExit(f"only {len(people)} people of the academy match one account each; ask for fewer logins")
    people = people[:wanted]
    next_path = "/cas/login?" + urlencode({"service": SERVICE})
    prepared = []
    t = time.perf_counter()
    for identity in people:
        browser = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
        outgoing = sp.start_login(idp_settings, next_path=next_path, force_authn=False, browser=browser)
        request = inflate_b64(parse_qs(urlsplit(outgoing.url).query)["SAMLRequest"][0], "SAMLRequest")
        request_id = _attribute(request, b"ID")
        xml = stand_in.response(request_id, identity, datetime.now(UTC))
        b64 = base64.b64encode(xml).decode()
        prepared.append(Prepared(identity, browser, request_id, b64, urlencode({"SAMLResponse": b64}).encode()))
    print(f"prepared {len(prepared)} AuthnRequests and signed{'' if args.plain else ', encrypted'} responses in "
          f"{time.perf_counter() - t:.1f}s", file=sys.stderr)
    return app, floor, CryptoFloor(sp_key.read_bytes(), idp_cert.read_bytes()), prepared


def _attribute(xml: bytes, name: bytes) -> str:
    return etree.fromstring(xml).get(name.decode()) or ""


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--persons", type=int, default=100_000, help="size of the synthetic academy")
    parser.add_argument("--logins", type=int, default=2000, help="timed logins (each a distinct person)")
    parser.add_argument("--warmup", type=int, default=100, help="logins before timing (caches, first queries)")
    parser.add_argument("--block", type=int, default=100, help="logins per block; floor and logins alternate")
    parser.add_argument("--plain", action="store_true", help="unencrypted assertions (EduConnect encrypts)")
    parser.add_argument("--workdir", type=Path, default=Path("bench-data/sso"))
    parser.add_argument("--academy-dir", type=Path, default=Path("bench-data"),
                        help="where the synthetic academy is cached (shared with make bench-directory)")
    parser.add_argument("--database-url", default=None,
                        help="Run on this database (emptied first) instead of a SQLite copy in the workdir, "
                             "e.g. postgresql://postgres@127.0.0.1/relais_bench.")
    parser.add_argument("--profile", type=Path, default=None, help="write cProfile stats of the timed logins here")
    parser.add_argument("--http-logins", type=int, default=1000,
                        help="timed logins through the HTTP server, after as many warm-up ones as --warmup (0: none)")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="in-process logins at once (threads, as the server's): 1 is one after the other")
    parser.add_argument("--http-concurrency", type=int, default=4, help="HTTP clients logging in at once")
    parser.add_argument("--http-threads", type=int, default=HttpSettings().threads,
                        help="the server's threads (RELAIS_HTTP_THREADS)")
    parser.add_argument("--oidc-flows", type=int, default=1000,
                        help="timed OpenID Connect code flows (authorize, token, userinfo; 0: none)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    args.workdir.mkdir(parents=True, exist_ok=True)
    engine = directory_engine(args)
    # Logged as `relais serve sso` logs (JSON lines, INFO), into a file: a login's log lines are part of its cost.
    log_file = (args.workdir / "sso.log").open("w", encoding="utf-8")
    configure_logging("sso", fmt="json", stream=log_file)
    app, floor, crypto, prepared = build(args, engine)
    cookie = app.config.cookie.name
    over_http = prepared[args.logins + args.warmup:]
    prepared = prepared[:args.logins + args.warmup]
    warm, timed = prepared[:args.warmup], prepared[args.warmup:]
    for p in warm:
        login(app, p, cookie)
        floor.validate(p)
        crypto.validate(p)

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()
    latencies: list[float] = []
    steps: list[list[float]] = []
    ours_s = floor_s = crypto_s = ours_cpu = floor_cpu = 0.0
    for start in range(0, len(timed), args.block):
        block = timed[start:start + args.block]
        t, c = time.perf_counter(), time.process_time()
        for p in block:
            floor.validate(p)
        floor_s += time.perf_counter() - t
        floor_cpu += time.process_time() - c
        t = time.perf_counter()
        for p in block:
            crypto.validate(p)
        crypto_s += time.perf_counter() - t
        if profiler:
            profiler.enable()
        t0, c = time.perf_counter(), time.process_time()
        if args.concurrency > 1:
            concurrently(app, block, cookie, args.concurrency, latencies, steps)
        else:
            for p in block:
                t = time.perf_counter()
                login(app, p, cookie, steps)
                latencies.append(time.perf_counter() - t)
        ours_s += time.perf_counter() - t0
        ours_cpu += time.process_time() - c
        if profiler:
            profiler.disable()
    if profiler:
        profiler.dump_stats(str(args.profile))
    http_figures = through_http(app, over_http, cookie, args) if over_http else {}
    prepared += over_http

    # The checks were real: a response posted again is refused, and every login left its session and its event.
    first = timed[0] if timed else prepared[0]
    status, _, _ = call(app, "POST", "/saml/acs", body=first.form, cookies={f"{cookie}_saml": first.browser})
    with engine.connect() as conn:
        sessions = conn.execute(select(func.count()).select_from(session_t)).scalar_one()
        events = conn.execute(select(func.count()).select_from(outbox)
                              .where(outbox.c.type == "sso.login.succeeded")).scalar_one()
    if status != 400 or sessions != len(prepared) or events != len(prepared):
        raise SystemExit(f"after the run: replay answered {status}, {sessions} sessions and {events} login events "
                         f"for {len(prepared)} logins")
    oidc_figures = {}
    if args.oidc_flows:  # after the checks above: its flows open sessions of their own
        people = [p.identity.jointure for p in prepared]
        wanted = args.oidc_flows + args.warmup
        oidc_figures = sso_oidc.flows(app, call, (people * (wanted // len(people) + 1))[:wanted], block=args.block,
                                      warmup=args.warmup)
    app.close()
    log_file.close()

    n = len(timed)
    logins_per_s = n / ours_s
    floor_per_s = n / floor_s
    result = {
        "logins": n, "persons": args.persons, "database": engine.dialect.name, "encrypted": not args.plain,
        "pupils": sum(p.identity.kind == "pupil" for p in timed),
        "parents": sum(p.identity.kind == "parent" for p in timed),
        "logins_per_s": round(logins_per_s, 1), "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
        "p99_ms": round(percentile(latencies, 0.99) * 1000, 2), "max_ms": round(max(latencies) * 1000, 2),
        "floor_per_s": round(floor_per_s, 1), "ratio": round(logins_per_s / floor_per_s, 3),
        # the tighter floor: only the RSA/AES/signature work, keys loaded once (python3-saml makes an xmlsec
        # keys manager for each decryption and parses its XSD for each response: most of its time)
        "crypto_floor_per_s": round(n / crypto_s, 1), "crypto_ratio": round(logins_per_s / (n / crypto_s), 3),
        # logins_per_s, p50/p99/max: `concurrency` logins at once in this one process (1: one after the other)
        "concurrency": args.concurrency,
        "cores_used": 1, "cpu_per_wall": round((ours_cpu + floor_cpu) / (ours_s + floor_s), 2),
        # CPU time, for a machine shared with other work: what one core does when it is not interrupted
        "logins_per_cpu_s": round(n / ours_cpu, 1), "floor_per_cpu_s": round(n / floor_cpu, 1),
        **{f"{name}_p50_ms": round(percentile([s[i] for s in steps], 0.5) * 1000, 2)
           for i, name in enumerate(("acs", "cas_login", "validate"))},
        "replay_refused": status == 400,
        **http_figures,
        **oidc_figures,
    }
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
