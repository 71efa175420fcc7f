"""The OpenID Connect provider, end to end over real HTTP: the production server in a thread, Authlib's client as
the relying party (a peer we did not write), the real directory importer behind the claims.

Sessions are opened as the SAML SP opens them after a national login (`sessions.open_session`); the browser (or
Authlib's session) carries the cookie. Every refusal the issue lists has its own test.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import warnings
from urllib.parse import parse_qs, urlsplit

import orjson
import pytest
import requests
from authlib.integrations.requests_client import OAuth2Session
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from sqlalchemy import select
from werkzeug.wrappers import Request, Response

from relais.bus import contracts
from relais.bus.tables import outbox
from relais.db import make_engine, writer
from services.directory.api import Directory
from services.sso import sessions
from services.sso.app import SsoApp
from services.sso.cli import sso as sso_cli
from services.sso.config import parse_config
from services.sso.rules.usage_facts import UsageFacts
from tests.sso.test_cas import Clock, Serving, import_directory

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from authlib.jose import JsonWebKey, jwt
    from authlib.oidc.core import CodeIDToken

SECRET = b"s" * 40
RP_SECRET = "rp-secret-" + "x" * 30
OTHER_SECRET = "other-secret-" + "y" * 30


class Holder:
    """A WSGI app set after its server started (the SSO's base URL names the server's port)."""

    app = None

    def __call__(self, environ, start_response):
        return self.app(environ, start_response)


class RelyingParties:
    """The clients' side: their callback pages and their back-channel logout endpoint."""

    def __init__(self):
        self.logout_tokens: list[str] = []
        self.serving = Serving(self)
        self.url = self.serving.url

    def __call__(self, environ, start_response):
        request = Request(environ)
        if request.method == "POST" and request.path == "/bcl":
            self.logout_tokens.append(request.form["logout_token"])
            return Response("", status=200)(environ, start_response)
        return Response("rp page")(environ, start_response)


def write_key(path, kind="rsa"):
    key = rsa.generate_private_key(65537, 2048) if kind == "rsa" else ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return str(path)


def oidc_section(rp: str, key_files: list[tuple[str, str]], signing_key: str | None = None) -> dict:
    section = {
        "keys": [{"id": kid, "key_file": f} for kid, f in key_files],
        "clients": [
            {"id": "rp", "secret_env": "TEST_OIDC_RP", "redirect_uris": [f"{rp}/cb", f"{rp}/cb?x=1"],
             "post_logout_redirect_uris": [f"{rp}/bye"], "scopes": ["openid", "profile", "email", "offline_access"],
             "claims": ["given_name", "family_name", "email", "ENTPersonProfils", "ENTEleveClasses"],
             "backchannel_logout_uri": f"{rp}/bcl"},
            {"id": "spa", "redirect_uris": [f"{rp}/spa/cb"], "scopes": ["openid", "offline_access"],
             "post_logout_redirect_uris": [f"{rp}/spa/bye"]},
            {"id": "other", "secret_env": "TEST_OIDC_OTHER", "redirect_uris": ["http://localhost:9/cb"],
             "sector": "other.example.org"},
        ]}
    if signing_key:
        section["signing_key"] = signing_key
    return section


class World:
    def __init__(self, engine, tmp_path, rps: RelyingParties, server: Serving, key_files=None, signing_key=None):
        self.engine = engine
        self.rps = rps
        self.clock = Clock()
        self.holder = server.holder
        self.url = server.url
        self.issuer = f"{self.url}/oidc"
        key_files = key_files or [("k1", write_key(tmp_path / "k1.pem"))]
        self.config = parse_config({"base_url": self.url, "cookie": {"secure": False},
                                    "oidc": oidc_section(rps.url, key_files, signing_key)}, "test")
        self.app = SsoApp(engine, self.config, directory=Directory(engine, "test"), tenant="test", secret=SECRET,
                          clock=self.clock, http_timeout=3)
        self.holder.app = self.app

    def restart(self, key_files, signing_key=None, secret=SECRET):
        """The same database and server, a new configuration (a key rotation) or another deployment secret."""
        self.app.close()
        self.config = parse_config({"base_url": self.url, "cookie": {"secure": False},
                                    "oidc": oidc_section(self.rps.url, key_files, signing_key)}, "test")
        self.app = SsoApp(self.engine, self.config, directory=Directory(self.engine, "test"), tenant="test",
                          secret=secret, clock=self.clock, http_timeout=3)
        self.holder.app = self.app

    def stop(self):
        self.app.close()

    def login(self, jointure="1001") -> str:
        with writer(self.engine).begin() as conn:
            s = sessions.open_session(conn, person_jointure=jointure, auth_source="educonnect", national_id="n-1",
                                      attributes={}, now=self.clock(), tenant="test")
        return s.id

    def authorize(self, sid=None, **params):
        headers = {"Cookie": f"relais_sso={sid}"} if sid else {}
        return requests.get(f"{self.issuer}/authorize", params=params, headers=headers, allow_redirects=False,
                            timeout=10)

    def code(self, sid, client="rp", redirect_uri=None, verifier=None, method="S256", **extra) -> str:
        params = {"client_id": client, "response_type": "code", "scope": "openid",
                  "redirect_uri": redirect_uri or self.redirect(client), "state": "st", **extra}
        if verifier is not None:
            params.update(code_challenge=challenge(verifier) if method == "S256" else verifier,
                          code_challenge_method=method)
        r = self.authorize(sid, **params)
        assert r.status_code == 302, r.text
        query = parse_qs(urlsplit(r.headers["Location"]).query)
        assert "code" in query, query
        assert query["state"] == ["st"] and query["iss"] == [self.issuer]
        return query["code"][0]

    def redirect(self, client):
        return {"rp": f"{self.rps.url}/cb", "spa": f"{self.rps.url}/spa/cb", "other": "http://localhost:9/cb"}[client]

    def token(self, client="rp", **form):
        auth = {"rp": ("rp", RP_SECRET), "other": ("other", OTHER_SECRET)}.get(client)
        if auth is None:
            form["client_id"] = client
        return requests.post(f"{self.issuer}/token", data=form, auth=auth, timeout=10)

    def exchange(self, code, client="rp", verifier=None, redirect_uri=None):
        form = {"grant_type": "authorization_code", "code": code,
                "redirect_uri": redirect_uri or self.redirect(client)}
        if verifier is not None:
            form["code_verifier"] = verifier
        return self.token(client, **form)

    def userinfo(self, access):
        return requests.get(f"{self.issuer}/userinfo", headers={"Authorization": f"Bearer {access}"}, timeout=10)

    def jwks(self):
        return requests.get(f"{self.issuer}/jwks", timeout=10).json()


def challenge(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")


def pairwise(sector: str, jointure: str) -> str:
    """The documented formula, written out again (rules/oidc.py must agree)."""
    mac = hmac.new(SECRET, b"relais:oidc-sub:v1\0" + sector.encode() + b"\0" + jointure.encode(), hashlib.sha256)
    return base64.b32encode(mac.digest()).decode().rstrip("=").lower()


def error_of(response) -> dict:
    assert response.status_code == 302, response.text
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["Location"]).query).items()}


@pytest.fixture(scope="module")
def rps():
    r = RelyingParties()
    yield r
    r.serving.stop()


def serving() -> Serving:
    holder = Holder()
    server = Serving(holder)
    server.holder = holder
    return server


@pytest.fixture(scope="module")
def sso_server():
    server = serving()
    yield server
    server.stop()


@pytest.fixture
def world(sqlite_engine, tmp_path, rps, sso_server, monkeypatch):
    monkeypatch.setenv("TEST_OIDC_RP", RP_SECRET)
    monkeypatch.setenv("TEST_OIDC_OTHER", OTHER_SECRET)
    import_directory(sqlite_engine, tmp_path)
    rps.logout_tokens.clear()
    w = World(sqlite_engine, tmp_path, rps, sso_server)
    yield w
    w.stop()


def validate_id_token(world, id_token, *, nonce=None, access_token=None, client="rp"):
    """Authlib's own ID token checks, with the keys our JWKS publishes."""
    keys = JsonWebKey.import_key_set(world.jwks())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        claims = jwt.decode(id_token, keys, claims_cls=CodeIDToken,
                            claims_options={"iss": {"essential": True, "value": world.issuer}},
                            claims_params={"nonce": nonce, "client_id": client, "access_token": access_token})
        claims.validate(leeway=5)
    return claims


# -- the peer: Authlib's client completes the whole flow ------------------------------------------------------

def test_authlib_client_code_flow_with_pkce_refresh_userinfo_and_logout(world, rps):
    discovery = requests.get(f"{world.url}/.well-known/openid-configuration", timeout=10).json()
    assert discovery == requests.get(f"{world.issuer}/.well-known/openid-configuration", timeout=10).json()
    assert discovery["issuer"] == world.issuer and discovery["code_challenge_methods_supported"] == ["S256"]
    client = OAuth2Session("rp", RP_SECRET, scope="openid profile email offline_access",
                           redirect_uri=f"{rps.url}/cb", code_challenge_method="S256")
    client.cookies.set("relais_sso", world.login())
    verifier = secrets.token_urlsafe(48)
    nonce = secrets.token_urlsafe(16)
    url, state = client.create_authorization_url(discovery["authorization_endpoint"], code_verifier=verifier,
                                                 nonce=nonce)
    answer = client.get(url, allow_redirects=False, withhold_token=True)  # the browser's step, with its cookie
    assert answer.status_code == 302
    token = client.fetch_token(discovery["token_endpoint"], authorization_response=answer.headers["Location"],
                               code_verifier=verifier, state=state)
    claims = validate_id_token(world, token["id_token"], nonce=nonce, access_token=token["access_token"])
    assert claims["sub"] == pairwise(urlsplit(rps.url).hostname, "1001")
    assert "given_name" not in claims  # claims go to userinfo, the ID token says who, not what

    refreshed = client.refresh_token(discovery["token_endpoint"])
    assert refreshed["refresh_token"] != token["refresh_token"]
    assert validate_id_token(world, refreshed["id_token"], access_token=refreshed["access_token"])["sub"] == \
        claims["sub"]
    info = client.get(discovery["userinfo_endpoint"]).json()
    assert info["sub"] == claims["sub"]
    assert info["ENTPersonProfils"] == ["National_ELV"] and info["ENTEleveClasses"] == ["S1$6A"]
    assert info["family_name"] and info["given_name"]
    assert world.userinfo(token["access_token"]).status_code == 200  # the first access token lives on

    bye = client.get(discovery["end_session_endpoint"], withhold_token=True, params={
        "id_token_hint": refreshed["id_token"], "post_logout_redirect_uri": f"{rps.url}/bye", "state": "s2"},
        allow_redirects=False)
    assert bye.status_code == 302 and bye.headers["Location"] == f"{rps.url}/bye?state=s2"
    assert len(rps.logout_tokens) == 1
    keys = JsonWebKey.import_key_set(world.jwks())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        logout = jwt.decode(rps.logout_tokens[0], keys)
    logout.validate(leeway=5)
    assert logout["iss"] == world.issuer and logout["aud"] == "rp" and logout["sub"] == claims["sub"]
    assert logout["sid"] == claims["sid"] and "http://schemas.openid.net/event/backchannel-logout" in logout["events"]
    assert "nonce" not in logout
    assert client.get(discovery["userinfo_endpoint"]).status_code == 401  # the session's tokens are revoked
    assert world.token(grant_type="refresh_token", refresh_token=refreshed["refresh_token"]).status_code == 400
    assert world.authorize(client.cookies.get("relais_sso"), client_id="rp", response_type="code",
                           redirect_uri=f"{rps.url}/cb", scope="openid", prompt="none").headers["Location"] \
        .find("error=login_required") > 0


def test_a_code_exchanged_is_a_visit_for_the_usage_statistics(world):
    """sso.oidc.token.issued: the client by its id, the session's usage facts; a refresh is no new visit."""
    with writer(world.engine).begin() as conn:
        s = sessions.open_session(conn, person_jointure="1001", auth_source="educonnect", national_id="n",
                                  attributes={}, now=world.clock(), tenant="test",
                                  usage=UsageFacts("National_ELV", "0750001A", "10010012110"))
    tokens = world.exchange(world.code(s.id, scope="openid offline_access")).json()
    world.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    with world.engine.connect() as conn:
        bodies = [orjson.loads(b) for (b,) in conn.execute(select(outbox.c.body)
                                                         .where(outbox.c.type == "sso.oidc.token.issued"))]
    assert [b["payload"] for b in bodies] == [{"session": s.ref, "person": "1001", "client": "rp",
                                               "profile": "National_ELV", "structure": "0750001A",
                                               "level": "10010012110"}]
    contracts.validate_event(bodies[0])


def test_public_client_with_pkce_and_pairwise_subjects_unlinkable(world, rps):
    sid = world.login()
    verifier = secrets.token_urlsafe(48)
    answer = world.exchange(world.code(sid, "spa", verifier=verifier), "spa", verifier=verifier).json()
    spa_sub = validate_id_token(world, answer["id_token"], client="spa", access_token=answer["access_token"])["sub"]
    rp = world.exchange(world.code(sid, "rp")).json()
    rp_sub = validate_id_token(world, rp["id_token"], access_token=rp["access_token"])["sub"]
    assert spa_sub == rp_sub == pairwise(urlsplit(rps.url).hostname, "1001")  # one sector: their shared host
    other = world.exchange(world.code(sid, "other"), "other").json()
    other_sub = validate_id_token(world, other["id_token"], client="other",
                                  access_token=other["access_token"])["sub"]
    assert other_sub == pairwise("other.example.org", "1001") != rp_sub
    # scope openid alone: the policy's ENT attributes, not its standard claims (they need profile, email)
    assert world.userinfo(rp["access_token"]).json() == {
        "sub": rp_sub, "ENTPersonProfils": ["National_ELV"], "ENTEleveClasses": ["S1$6A"]}
    assert world.userinfo(other["access_token"]).json() == {"sub": other_sub}  # no policy: the subject alone
    assert "refresh_token" not in rp


def test_discovery_and_jwks_keep_old_keys_until_their_tokens_expire(world, tmp_path, rps):
    k1 = ("k1", str(tmp_path / "k1.pem"))
    sid = world.login()
    old = world.exchange(world.code(sid)).json()
    k2 = ("k2", write_key(tmp_path / "k2.pem", "ec"))
    world.restart([k2])  # k1's file is gone from the configuration
    assert [k["kid"] for k in world.jwks()["keys"]] == ["k2", "k1"]
    validate_id_token(world, old["id_token"], access_token=old["access_token"])  # still checkable
    new = world.exchange(world.code(sid)).json()
    header = json.loads(base64.urlsafe_b64decode(new["id_token"].split(".")[0] + "=="))
    assert header["alg"] == "ES256" and header["kid"] == "k2"
    validate_id_token(world, new["id_token"], access_token=new["access_token"])
    world.clock.offset += __import__("datetime").timedelta(hours=9)  # past the longest token life
    assert [k["kid"] for k in world.jwks()["keys"]] == ["k2"]
    del k1


def test_a_changed_deployment_secret_stops_the_provider(world, tmp_path):
    """Every subject derives from the secret: another one would make every person a new user of every client."""
    sid = world.login()
    tokens = world.exchange(world.code(sid)).json()  # records the secret's fingerprint
    world.restart([("k1", str(tmp_path / "k1.pem"))], secret=b"t" * 40)
    r = world.authorize(sid, client_id="rp", response_type="code", scope="openid", redirect_uri=world.redirect("rp"))
    assert r.status_code == 503 and "Location" not in r.headers
    assert world.userinfo(tokens["access_token"]).status_code == 503
    assert world.token(grant_type="authorization_code", code="x", redirect_uri=world.redirect("rp")).status_code == 503


# -- refusals ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("variant", ["{rp}/elsewhere", "{rp}/cb/x", "{port}/cb", "{userinfo}/cb", "{rp}/cb#frag",
                                     "{rp}/cb?x=2", "{rp}/cb/", None])
def test_redirect_uri_not_registered_gets_a_page_never_a_redirect(world, rps, variant):
    host = urlsplit(rps.url)
    uri = None if variant is None else variant.format(
        rp=rps.url, port=f"http://{host.hostname}:{host.port + 1}", userinfo=f"http://evil@{host.netloc}")
    params = {"client_id": "rp", "response_type": "code", "scope": "openid", "state": "s"}
    if uri is not None:
        params["redirect_uri"] = uri
    r = world.authorize(world.login(), **params)
    assert r.status_code == 400 and "Location" not in r.headers
    assert "Adresse de retour inconnue" in r.text


def test_registered_redirect_uri_with_query_matches_exactly(world, rps):
    code = world.code(world.login(), redirect_uri=f"{rps.url}/cb?x=1")
    assert world.exchange(code, redirect_uri=f"{rps.url}/cb?x=1").status_code == 200


def test_unknown_client_gets_a_page(world, rps):
    r = world.authorize(world.login(), client_id="nobody", response_type="code", scope="openid",
                        redirect_uri=f"{rps.url}/cb")
    assert r.status_code == 400 and "Location" not in r.headers


def test_code_used_twice_is_refused_and_its_tokens_revoked(world):
    code = world.code(world.login(), scope="openid offline_access")
    first = world.exchange(code)
    assert first.status_code == 200
    tokens = first.json()
    assert world.userinfo(tokens["access_token"]).status_code == 200
    again = world.exchange(code)
    assert again.status_code == 400 and again.json()["error"] == "invalid_grant"
    assert world.userinfo(tokens["access_token"]).status_code == 401
    assert world.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"]).status_code == 400


def test_code_of_another_client_is_refused_and_burnt(world):
    code = world.code(world.login(), "rp")
    stolen = world.exchange(code, "other", redirect_uri=world.redirect("rp"))
    assert stolen.status_code == 400 and stolen.json()["error"] == "invalid_grant"
    assert world.exchange(code).status_code == 400  # burnt for its own client too


@pytest.mark.parametrize("presented", [None, "wrong"])
def test_pkce_missing_or_wrong_verifier_refused(world, presented):
    verifier = secrets.token_urlsafe(48)
    code = world.code(world.login(), "spa", verifier=verifier)
    bad = None if presented is None else secrets.token_urlsafe(48)
    r = world.exchange(code, "spa", verifier=bad)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_public_client_without_pkce_or_with_plain_is_refused(world):
    sid = world.login()
    base = {"client_id": "spa", "response_type": "code", "scope": "openid", "redirect_uri": world.redirect("spa"),
            "state": "s"}
    assert error_of(world.authorize(sid, **base))["error"] == "invalid_request"
    verifier = secrets.token_urlsafe(48)
    plain = error_of(world.authorize(sid, **base, code_challenge=verifier, code_challenge_method="plain"))
    assert plain["error"] == "invalid_request" and "plain" in plain["error_description"]
    assert plain["state"] == "s"


def test_expired_code_refused(world):
    code = world.code(world.login())
    world.clock.offset += __import__("datetime").timedelta(seconds=61)
    r = world.exchange(code)
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_refresh_token_reused_after_rotation_revokes_the_family(world):
    tokens = world.exchange(world.code(world.login(), scope="openid offline_access")).json()
    rotated = world.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert rotated.status_code == 200
    new = rotated.json()
    reused = world.token(grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert reused.status_code == 400 and reused.json()["error"] == "invalid_grant"
    assert world.token(grant_type="refresh_token", refresh_token=new["refresh_token"]).status_code == 400
    assert world.userinfo(new["access_token"]).status_code == 401


def test_refresh_token_of_another_client_refused(world):
    tokens = world.exchange(world.code(world.login(), scope="openid offline_access")).json()
    r = world.token("other", grant_type="refresh_token", refresh_token=tokens["refresh_token"])
    assert r.status_code == 400 and r.json()["error"] == "invalid_grant"


def test_confidential_client_with_a_wrong_secret_refused(world):
    code = world.code(world.login())
    r = requests.post(f"{world.issuer}/token", data={"grant_type": "authorization_code", "code": code,
                                                      "redirect_uri": world.redirect("rp")},
                      auth=("rp", "not-the-secret"), timeout=10)
    assert r.status_code == 401 and r.json()["error"] == "invalid_client"


def test_id_token_hint_of_another_client_refused_at_logout(world, rps):
    sid = world.login()
    other = world.exchange(world.code(sid, "other"), "other").json()
    r = requests.get(f"{world.issuer}/logout", params={
        "id_token_hint": other["id_token"], "client_id": "rp", "post_logout_redirect_uri": f"{rps.url}/bye"},
        headers={"Cookie": f"relais_sso={sid}"}, allow_redirects=False, timeout=10)
    assert r.status_code == 400 and "Location" not in r.headers
    r = requests.get(f"{world.issuer}/logout", params={
        "id_token_hint": other["id_token"], "post_logout_redirect_uri": f"{rps.url}/bye"},
        headers={"Cookie": f"relais_sso={sid}"}, allow_redirects=False, timeout=10)
    assert r.status_code == 400 and "Location" not in r.headers  # rp's URI, other's hint
    assert world.userinfo(other["access_token"]).status_code == 200  # still logged in


def test_alg_none_id_token_hint_refused(world, rps):
    sid = world.login()
    real = world.exchange(world.code(sid)).json()["id_token"]
    payload = real.split(".")[1]
    header = base64.urlsafe_b64encode(b'{"alg":"none","typ":"JWT"}').decode().rstrip("=")
    for forged in (f"{header}.{payload}.", f"{header}.{payload}"):
        r = requests.get(f"{world.issuer}/logout", params={
            "id_token_hint": forged, "post_logout_redirect_uri": f"{rps.url}/bye"},
            headers={"Cookie": f"relais_sso={sid}"}, allow_redirects=False, timeout=10)
        assert r.status_code == 400 and "Location" not in r.headers
    r = world.authorize(sid, client_id="rp", response_type="code", scope="openid", redirect_uri=world.redirect("rp"),
                        request=f"{header}.{payload}.")
    assert error_of(r)["error"] == "request_not_supported"


def test_scopes_beyond_the_clients_refused(world):
    r = world.authorize(world.login(), client_id="spa", response_type="code", scope="openid profile email",
                        redirect_uri=world.redirect("spa"), state="s", code_challenge=challenge("v" * 43),
                        code_challenge_method="S256")
    error = error_of(r)
    assert error["error"] == "invalid_scope" and "profile email" in error["error_description"]


@pytest.mark.parametrize("target", ["https://evil.example/", "{rp}/bye/x", "{rp}/spa/bye"])
def test_open_redirect_at_logout_refused(world, rps, target):
    sid = world.login()
    hint = world.exchange(world.code(sid)).json()["id_token"]
    r = requests.get(f"{world.issuer}/logout", params={
        "id_token_hint": hint, "post_logout_redirect_uri": target.format(rp=rps.url)},
        headers={"Cookie": f"relais_sso={sid}"}, allow_redirects=False, timeout=10)
    assert r.status_code == 400 and "Location" not in r.headers


def test_logout_without_hint_asks_confirmation_then_tells_every_client(world, rps):
    sid = world.login()
    world.exchange(world.code(sid))
    world.exchange(world.code(sid, "other"), "other")
    page = requests.get(f"{world.issuer}/logout", params={"client_id": "rp", "ui_locales": "en"},
                        headers={"Cookie": f"relais_sso={sid}"}, allow_redirects=False, timeout=10)
    assert page.status_code == 200 and 'lang="en"' in page.text and "Log out" in page.text
    assert page.headers["Content-Security-Policy"].endswith("form-action 'self'")
    assert not rps.logout_tokens
    csrf = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    forged = requests.post(f"{world.issuer}/logout", data={"csrf_token": "x"},
                           headers={"Cookie": f"relais_sso={sid}"}, allow_redirects=False, timeout=10)
    assert forged.status_code == 200 and "csrf_token" in forged.text  # asked again, nothing ended
    done = requests.post(f"{world.issuer}/logout", data={"csrf_token": csrf},
                         headers={"Cookie": f"relais_sso={sid}"}, allow_redirects=False, timeout=10)
    assert done.status_code == 200 and "déconnecté" in done.text
    assert len(rps.logout_tokens) == 1  # "other" has no backchannel_logout_uri


def test_cas_logout_reaches_oidc_clients(world, rps):
    sid = world.login()
    tokens = world.exchange(world.code(sid)).json()
    requests.get(f"{world.url}/cas/logout", headers={"Cookie": f"relais_sso={sid}"}, allow_redirects=False,
                 timeout=10)
    assert len(rps.logout_tokens) == 1
    assert world.userinfo(tokens["access_token"]).status_code == 401


def test_without_session_the_browser_goes_to_the_national_login_and_back(world):
    r = world.authorize(None, client_id="rp", response_type="code", scope="openid", redirect_uri=world.redirect("rp"),
                        state="s")
    assert r.status_code == 302
    location = urlsplit(r.headers["Location"])
    assert location.path == "/saml/login"
    assert parse_qs(location.query)["next"][0].startswith("/oidc/authorize?")


def test_cors_only_for_the_clients_origins(world, rps):
    """A browser application (public client) may call the token endpoint; another site's page may not."""
    ok = requests.options(f"{world.issuer}/token", headers={"Origin": rps.url,
                                                             "Access-Control-Request-Method": "POST"}, timeout=10)
    assert ok.status_code == 204 and ok.headers["Access-Control-Allow-Origin"] == rps.url
    evil = requests.options(f"{world.issuer}/token", headers={"Origin": "https://evil.example",
                                                               "Access-Control-Request-Method": "POST"}, timeout=10)
    assert "Access-Control-Allow-Origin" not in evil.headers
    verifier = secrets.token_urlsafe(48)
    answer = requests.post(f"{world.issuer}/token", headers={"Origin": rps.url}, timeout=10, data={
        "grant_type": "authorization_code", "client_id": "spa", "redirect_uri": world.redirect("spa"),
        "code": world.code(world.login(), "spa", verifier=verifier), "code_verifier": verifier})
    assert answer.status_code == 200 and answer.headers["Access-Control-Allow-Origin"] == rps.url
    assert requests.get(f"{world.issuer}/jwks", timeout=10).headers["Access-Control-Allow-Origin"] == "*"


def test_prompt_login_and_max_age_send_an_old_login_to_the_national_idp_again(world):
    sid = world.login()
    world.clock.offset += __import__("datetime").timedelta(seconds=30)
    base = {"client_id": "rp", "response_type": "code", "scope": "openid", "redirect_uri": world.redirect("rp")}
    for extra in ({"prompt": "login"}, {"max_age": "10"}):
        r = world.authorize(sid, **base, **extra)
        location = urlsplit(r.headers["Location"])
        assert location.path == "/saml/login" and parse_qs(location.query)["force_authn"] == ["true"]
        assert "auth_after" in parse_qs(location.query)["next"][0]
    assert "code" in error_of(world.authorize(sid, **base, max_age="3600"))  # recent enough
    assert error_of(world.authorize(sid, **base, max_age="10", prompt="none"))["error"] == "login_required"
    assert error_of(world.authorize(sid, **base, max_age="-1"))["error"] == "invalid_request"


def test_codes_and_tokens_hashed_at_rest(world):
    tokens = world.exchange(world.code(world.login(), scope="openid offline_access")).json()
    with world.engine.connect() as conn:
        dump = json.dumps([list(map(str, row)) for table in ("sso_oidc_code", "sso_oidc_token")
                           for row in conn.exec_driver_sql(f"SELECT * FROM {table}")])
    assert tokens["access_token"] not in dump and tokens["refresh_token"] not in dump


# -- two instances on PostgreSQL ------------------------------------------------------------------------------

def test_code_raced_on_two_instances_redeemed_once(pg_engine, tmp_path, rps, monkeypatch):
    monkeypatch.setenv("TEST_OIDC_RP", RP_SECRET)
    monkeypatch.setenv("TEST_OIDC_OTHER", OTHER_SECRET)
    import_directory(pg_engine, tmp_path)
    servers = serving(), serving()
    one = World(pg_engine, tmp_path, rps, servers[0])
    own = make_engine(pg_engine.url.render_as_string(hide_password=False))
    two = World(own, tmp_path, rps, servers[1], key_files=[("k1", str(tmp_path / "k1.pem"))])
    try:
        code = one.code(one.login())
        import threading
        results: list[int] = []
        threads = [threading.Thread(target=lambda w=w: results.append(w.exchange(code).status_code))
                   for w in (one, two)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert sorted(results) == [200, 400]
    finally:
        for w in (one, two):
            w.stop()
        for server in servers:
            server.stop()
        own.dispose()


# -- check-config ---------------------------------------------------------------------------------------------

def test_check_config_lists_oidc_problems(tmp_path, monkeypatch):
    monkeypatch.delenv("TEST_OIDC_RP", raising=False)
    (tmp_path / "weak.pem").write_bytes(rsa.generate_private_key(65537, 1024).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    config = {"base_url": "https://ent.example.org", "oidc": {
        "keys": [{"id": "k", "key_file": str(tmp_path / "weak.pem")}],
        "clients": [{"id": "rp", "secret_env": "TEST_OIDC_RP", "redirect_uris": ["http://rp.example.org/cb",
                                                                                  "https://rp.example.org/cb#x",
                                                                                  "https://u@rp.example.org/cb"],
                     "scopes": ["openid", "admin"], "claims": ["password"], "colour": 1}]}}
    path = tmp_path / "sso.json"
    path.write_text(json.dumps(config))
    result = CliRunner().invoke(sso_cli, ["check-config", str(path), "--json"])
    assert result.exit_code == 1
    problems = "\n".join(json.loads(result.output)["problems"])
    for expected in ("at least 2048 bits", "http is allowed only on a loopback host", "no fragment", "no user info",
                     "unknown admin", "unknown password", "unknown key 'colour'", "TEST_OIDC_RP"):
        assert expected in problems, (expected, problems)


def test_check_config_summarises_clients(tmp_path, monkeypatch):
    monkeypatch.setenv("TEST_OIDC_RP", RP_SECRET)
    monkeypatch.setenv("TEST_OIDC_OTHER", OTHER_SECRET)
    path = tmp_path / "sso.json"
    path.write_text(json.dumps({"base_url": "https://ent.example.org",
                                "oidc": oidc_section("http://127.0.0.1:5", [("k1", write_key(tmp_path / "k.pem"))])}))
    result = CliRunner().invoke(sso_cli, ["check-config", str(path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["oidc"]
    assert summary["issuer"] == "https://ent.example.org/oidc"
    assert [(c["id"], c["public"]) for c in summary["clients"]] == [("rp", False), ("spa", True), ("other", False)]
