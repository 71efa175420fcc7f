"""OAuth 2.0 for vendor APIs (connectors.sdk.oauth): against a small token endpoint and API of our own, over real
HTTP. Tokens are fetched once and shared, refreshed before they expire and once when the API answers 401, refresh
tokens rotate, the endpoint's refusals are clear errors, and no token or secret reaches a log, a repr or an error."""
from __future__ import annotations

import base64
import itertools
import json
import logging
import threading
import urllib.parse
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from connectors.sdk import AuthError, ConfigError, ConnectorConfig, HttpClient, OAuth2, RetryPolicy, Secret
from connectors.sdk.errors import RetriesExhausted

CLIENT_ID, CLIENT_SECRET = "ent-relais", "s3cr3t-client-value"
FIRST_REFRESH = "refresh-0-initial-value"


@dataclass
class TokenServer:
    """A token endpoint (POST /token, RFC 6749 §4.4 and §6) and an API (GET /api) that wants its tokens."""

    lifetime: int | None = 3600
    valid: set[str] = field(default_factory=set)
    refresh_tokens: set[str] = field(default_factory=lambda: {FIRST_REFRESH})
    issued: list[str] = field(default_factory=list)
    grants: list[str] = field(default_factory=list)
    api_seen: list[str] = field(default_factory=list)
    fail_next: list[int] = field(default_factory=list)  # statuses the token endpoint answers next
    rotate: bool = True
    refuse_all: bool = False  # an API that refuses every token, even new ones
    counter: Iterator[int] = field(default_factory=itertools.count)
    lock: threading.Lock = field(default_factory=threading.Lock)
    url: str = ""

    def token_request(self, headers, form: dict[str, str]) -> tuple[int, dict]:
        with self.lock:
            if self.fail_next:
                return self.fail_next.pop(0), {"error": "temporarily_unavailable"}
            basic = headers.get("Authorization", "")
            if basic.startswith("Basic "):
                user, _, password = base64.b64decode(basic[6:]).decode().partition(":")
                client = (urllib.parse.unquote(user), urllib.parse.unquote(password))
            else:
                client = (form.get("client_id", ""), form.get("client_secret", ""))
            grant = form.get("grant_type")
            self.grants.append(str(grant))
            if grant == "client_credentials":
                if client != (CLIENT_ID, CLIENT_SECRET):
                    return 401, {"error": "invalid_client", "error_description": "unknown client or wrong secret"}
            elif grant == "refresh_token":
                if client[0] != CLIENT_ID:
                    return 401, {"error": "invalid_client"}
                if form.get("refresh_token") not in self.refresh_tokens:
                    return 400, {"error": "invalid_grant", "error_description": "refresh token unknown or used"}
                if self.rotate:
                    self.refresh_tokens.discard(form["refresh_token"])
            else:
                return 400, {"error": "unsupported_grant_type"}
            n = next(self.counter)
            token = f"access-{n}-{'x' * 24}"
            self.valid.add(token)
            self.issued.append(token)
            body: dict = {"access_token": token, "token_type": "Bearer"}
            if self.lifetime is not None:
                body["expires_in"] = self.lifetime
            if grant == "refresh_token" and self.rotate:
                new_refresh = f"refresh-{n + 1}-rotated-value"
                self.refresh_tokens.add(new_refresh)
                body["refresh_token"] = new_refresh
            return 200, body

    def api_request(self, headers) -> int:
        auth = headers.get("Authorization", "")
        token = auth[7:] if auth.startswith("Bearer ") else ""
        with self.lock:
            self.api_seen.append(token)
            return 200 if token in self.valid and not self.refuse_all else 401

    def revoke_all(self) -> None:
        with self.lock:
            self.valid.clear()


@pytest.fixture
def server() -> Iterator[TokenServer]:
    state = TokenServer()

    class Handler(BaseHTTPRequestHandler):
        disable_nagle_algorithm = True

        def log_message(self, *args):  # quiet
            pass

        def _answer(self, status: int, body: dict) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            form = dict(urllib.parse.parse_qsl(self.rfile.read(length).decode()))
            if self.path != "/token" or self.headers.get("Content-Type") != "application/x-www-form-urlencoded":
                return self._answer(400, {"error": "invalid_request"})
            self._answer(*state.token_request(self.headers, form))

        def do_GET(self):
            status = state.api_request(self.headers)
            self._answer(status, {"ok": status == 200})

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_for(auth: OAuth2) -> HttpClient:
    return HttpClient("myent", auth=auth, retry=RetryPolicy(attempts=3, base_delay=0.01, max_delay=0.02))


@pytest.fixture(autouse=True)
def every_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    """Every test's logs, at DEBUG, then checked for secrets."""
    caplog.set_level(logging.DEBUG)
    yield caplog


def assert_no_secret(text: str, server: TokenServer) -> None:
    for secret in [CLIENT_SECRET, FIRST_REFRESH, *server.issued, *server.refresh_tokens, "rotated-value"]:
        assert secret not in text


def test_client_credentials_one_token_shared_by_threads_and_used_until_near_expiry(server, every_log):
    clock = Clock()
    auth = OAuth2(f"{server.url}/token", CLIENT_ID, client_secret=Secret(CLIENT_SECRET), leeway=60, clock=clock)
    http = client_for(auth)
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda _: http.request("GET", f"{server.url}/api").status_code, range(40)))
    assert statuses == [200] * 40
    assert server.grants == ["client_credentials"], "threads each fetched a token"
    first = server.issued[0]
    assert set(server.api_seen) == {first}

    clock.now += 3600 - 61  # still 61 s to go: kept
    http.request("GET", f"{server.url}/api")
    assert len(server.issued) == 1
    clock.now += 2  # within the last 60 s: a new token before the request, not after a refusal
    http.request("GET", f"{server.url}/api")
    assert len(server.issued) == 2 and server.api_seen[-1] == server.issued[1]
    assert "" not in server.api_seen and all(t in server.issued for t in server.api_seen)
    assert auth.fetches == 2
    assert_no_secret(every_log.text + repr(auth) + auth.describe() + repr(http), server)
    assert "expires in 3600 s" in every_log.text


def test_a_short_lived_token_is_refreshed_at_a_tenth_of_its_lifetime_before_expiry(server):
    server.lifetime = 100
    clock = Clock()
    auth = OAuth2(f"{server.url}/token", CLIENT_ID, client_secret=Secret(CLIENT_SECRET), leeway=60, clock=clock)
    auth.token()
    clock.now += 89
    auth.token()
    assert auth.fetches == 1
    clock.now += 2  # 91 s of 100: within the last tenth
    auth.token()
    assert auth.fetches == 2


def test_a_revoked_token_gets_one_new_token_and_one_more_try(server, every_log):
    auth = OAuth2(f"{server.url}/token", CLIENT_ID, client_secret=Secret(CLIENT_SECRET), client_auth="post")
    http = client_for(auth)
    assert http.request("GET", f"{server.url}/api").status_code == 200
    server.revoke_all()  # the vendor revoked it before its expiry
    assert http.request("GET", f"{server.url}/api").status_code == 200
    assert server.api_seen == [server.issued[0], server.issued[0], server.issued[1]]
    assert "answered 401, sending it again with a new token" in every_log.text

    # An API that refuses every token: one renewal, then the refusal, not a loop.
    server.refuse_all = True
    calls = len(server.api_seen)
    with pytest.raises(AuthError) as info:
        http.request("GET", f"{server.url}/api")
    assert len(server.api_seen) - calls == 2 and len(server.issued) == 3
    assert "HTTP 401" in str(info.value) and "oauth2 client_credentials as 'ent-relais'" in str(info.value)
    assert_no_secret(every_log.text + str(info.value), server)


def test_refresh_tokens_rotate_and_the_new_one_is_handed_over(server, every_log):
    clock = Clock()
    kept: list[Secret] = []
    auth = OAuth2(f"{server.url}/token", CLIENT_ID, grant="refresh_token", refresh_token=Secret(FIRST_REFRESH),
                  clock=clock, on_refresh_token=kept.append)
    http = client_for(auth)
    http.request("GET", f"{server.url}/api")
    clock.now += 3600
    http.request("GET", f"{server.url}/api")
    server.revoke_all()
    http.request("GET", f"{server.url}/api")
    assert server.grants == ["refresh_token"] * 3  # each with the refresh token the previous answer gave
    assert [k.reveal() for k in kept] == ["refresh-1-rotated-value", "refresh-2-rotated-value",
                                          "refresh-3-rotated-value"]
    assert FIRST_REFRESH not in server.refresh_tokens
    assert_no_secret(every_log.text + repr(kept) + repr(auth), server)

    stale = OAuth2(f"{server.url}/token", CLIENT_ID, grant="refresh_token", refresh_token=Secret(FIRST_REFRESH))
    with pytest.raises(AuthError) as info:
        client_for(stale).request("GET", f"{server.url}/api")
    assert "'invalid_grant' (refresh token unknown or used)" in str(info.value)
    assert f"{server.url}/token" in str(info.value)
    assert_no_secret(str(info.value), server)


def test_a_wrong_secret_is_refused_clearly_and_a_busy_endpoint_is_retried(server, every_log):
    wrong = OAuth2(f"{server.url}/token", CLIENT_ID, client_secret=Secret("not-the-secret-value"))
    with pytest.raises(AuthError) as info:
        client_for(wrong).request("GET", f"{server.url}/api")
    message = str(info.value)
    assert "token endpoint refused client 'ent-relais' (client_credentials): HTTP 401 'invalid_client'" in message
    assert "not-the-secret-value" not in message + every_log.text
    assert server.api_seen == []  # no request went out without a token

    server.fail_next = [503, 503]
    good = OAuth2(f"{server.url}/token", CLIENT_ID, client_secret=Secret(CLIENT_SECRET))
    assert client_for(good).request("GET", f"{server.url}/api").status_code == 200
    server.fail_next = [503, 503, 503]
    with pytest.raises(RetriesExhausted) as exhausted:
        client_for(OAuth2(f"{server.url}/token", CLIENT_ID, client_secret=Secret(CLIENT_SECRET))).request(
            "GET", f"{server.url}/api")
    assert "token endpoint answered HTTP 503" in str(exhausted.value)
    assert_no_secret(every_log.text, server)


def test_the_configuration_reads_secrets_from_the_environment_only(server):
    env = {"ENT_CLIENT_SECRET": CLIENT_SECRET, "ENT_REFRESH": FIRST_REFRESH}
    config = ConnectorConfig.from_mapping(
        {"url": server.url, "auth": {"type": "oauth2", "token_url": f"{server.url}/token", "client_id": CLIENT_ID,
                                     "client_secret_env": "ENT_CLIENT_SECRET", "scope": "documents:read"}},
        environ=env)
    assert config.http_client("myent").request("GET", f"{server.url}/api").status_code == 200
    assert config.describe()["auth"] == f"oauth2 client_credentials as 'ent-relais' at {server.url}/token"
    refresh = ConnectorConfig.from_mapping(
        {"auth": {"type": "oauth2", "token_url": f"{server.url}/token", "client_id": CLIENT_ID,
                  "grant": "refresh_token", "refresh_token_env": "ENT_REFRESH"}}, environ=env)
    assert isinstance(refresh.auth, OAuth2) and refresh.auth.grant == "refresh_token"

    def refused(auth: dict, environ: dict | None = None) -> str:
        with pytest.raises(ConfigError) as info:
            ConnectorConfig.from_mapping({"auth": {"type": "oauth2", **auth}}, environ=environ or env, where="ent.yaml")
        return str(info.value)

    base = {"token_url": "https://id.ent.example/token", "client_id": CLIENT_ID,
            "client_secret_env": "ENT_CLIENT_SECRET"}
    assert "auth.client_secret must not be written" in refused({**base, "client_secret": CLIENT_SECRET})
    assert "auth.refresh_token must not be written" in refused({**base, "refresh_token": FIRST_REFRESH})
    assert "must use https" in refused({**base, "token_url": "http://id.ent.example/token"})
    assert "ENT_CLIENT_SECRET (named by auth.client_secret_env) is not set" in refused(base, {"OTHER": "x"})
    assert "grant 'password' is not one of" in refused({**base, "grant": "password"})
    assert "needs token_url" in refused({"client_id": CLIENT_ID, "client_secret_env": "ENT_CLIENT_SECRET"})
    assert "auth key(s) audience do not apply to type oauth2" in refused({**base, "audience": "x"})
    assert server.grants == ["client_credentials"]
