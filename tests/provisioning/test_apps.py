"""Apps as OAuth 2.0 clients: the `relais provisioning app` commands and the token endpoint over real HTTP.

The API server runs as `relais serve provisioning-api` in its own process;
the tests speak HTTP to it with the standard library, as an app would.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from app.cli import main
from relais.db import writer
from services.provisioning.adapters import tables as pt
from services.provisioning.api import apps
from tests.provisioning.test_grants import World

MATHS = "ark:/49591/maths"
CATALOGUE = {"resources": [{"id": MATHS, "title": "Maths", "publisher": "A", "licence": "unlimited"}]}


@pytest.fixture
def env(engine, tmp_path, monkeypatch):
    World(engine, tmp_path).load(catalogue=CATALOGUE, rules=None)
    url = engine.url.render_as_string(hide_password=False)
    monkeypatch.setenv("RELAIS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RELAIS_DATABASE_URL", url)
    return {**os.environ, "RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_DATABASE_URL": url}


def cli(*args: str, ok: bool = True):
    result = CliRunner().invoke(main, ["provisioning", *args])
    assert (result.exit_code == 0) == ok, result.output
    return result


def add(app_id: str, *args: str) -> str:
    return json.loads(cli("app", "add", app_id, *args, "--json").stdout)["client_secret"]


def test_app_add_list_rekey_and_remove(env, engine):
    secret = add("maths-app", "--resource", MATHS, "--scope", "oneroster", "--name", "Maths en ligne")
    assert len(secret) >= 40
    with engine.connect() as conn:
        stored = conn.execute(select(pt.config.c.data).where(pt.config.c.name == "apps")).scalar_one()
        assert secret.encode() not in stored  # only the scrypt hash is kept
        app = apps.load_apps(conn)["maths-app"]
    assert app.scopes == {"oneroster"} and app.resources == {MATHS} and apps.check_secret(secret, app.secret_hash)
    assert not apps.check_secret(secret + "x", app.secret_hash)

    listed = json.loads(cli("app", "list", "--json").stdout)
    assert listed == [{"id": "maths-app", "name": "Maths en ligne", "scopes": ["oneroster"], "resources": [MATHS],
                       "accounts": 0}]
    assert secret not in cli("app", "list").output

    with writer(engine).begin() as conn:
        token, _ = apps.issue_token(conn, app, {"oneroster"})
    new_secret = add("maths-app", "--resource", MATHS)
    with engine.connect() as conn:
        assert apps.authenticate(conn, token) is None  # re-keying ends the old tokens
        rekeyed = apps.load_apps(conn)["maths-app"]
    assert new_secret != secret and not apps.check_secret(secret, rekeyed.secret_hash)
    assert rekeyed.scopes == set(apps.SCOPES)

    with writer(engine).begin() as conn:
        token, _ = apps.issue_token(conn, rekeyed, {"scim"})
    assert "removed" in cli("app", "remove", "maths-app").output
    with engine.connect() as conn:
        assert apps.authenticate(conn, token) is None and apps.load_apps(conn) == {}
    assert "no app 'maths-app'" in cli("app", "remove", "maths-app", ok=False).output


def test_app_add_refuses_unknown_resources_and_changes_nothing(env, engine):
    add("keep", "--resource", MATHS)
    bad = cli("app", "add", "other", "--resource", "ark:/0/nope", ok=False)
    assert "resource 'ark:/0/nope' is not in the catalogue" in bad.output and "nothing was changed" in bad.output
    assert "client_secret" not in bad.output
    with engine.connect() as conn:
        assert set(apps.load_apps(conn)) == {"keep"}
    assert "sees nothing" in cli("app", "add", "empty").stderr


def test_tokens_expire(env, engine):
    add("a", "--resource", MATHS)
    with writer(engine).begin() as conn:
        app = apps.load_apps(conn)["a"]
        old, lifetime = apps.issue_token(conn, app, {"scim"}, now=datetime.now(UTC) - timedelta(hours=2))
        fresh, _ = apps.issue_token(conn, app, {"scim"})  # also sweeps expired rows
    assert lifetime == 3600
    with engine.connect() as conn:
        assert apps.authenticate(conn, old) is None
        assert apps.authenticate(conn, fresh).scopes == {"scim"}
        assert conn.execute(select(pt.token.c.app)).scalars().all() == ["a"]


# -- over HTTP, against `relais serve provisioning-api` ----------------------------------

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(env, tmp_path):
    port = _free_port()
    relais = Path(sys.executable).with_name("relais")
    log = open(tmp_path / "server.log", "w+")
    env = {**env, "RELAIS_HTTP_PORT": str(port), "RELAIS_OPS_PORT": str(_free_port()), "RELAIS_OPS_HOST": "127.0.0.1"}
    proc = subprocess.Popen([str(relais), "serve", "provisioning-api"], env=env, stdout=log, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            urllib.request.urlopen(base + "/healthz", timeout=2).read()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                log.seek(0)
                pytest.fail(f"relais serve provisioning-api did not start: {log.read()}")
            time.sleep(0.1)
    yield base, log
    proc.terminate()
    proc.wait(10)
    log.close()


def http(method: str, url: str, form: dict | None = None, headers: dict | None = None) -> tuple[int, dict, dict]:
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), json.loads(exc.read() or b"null")


def basic(client_id: str, secret: str) -> dict:
    pair = f"{urllib.parse.quote_plus(client_id)}:{urllib.parse.quote_plus(secret)}"
    return {"Authorization": "Basic " + base64.b64encode(pair.encode()).decode()}


def test_token_endpoint_over_http(server):
    base, log = server
    secret = add("maths-app", "--resource", MATHS, "--scope", "oneroster")
    grant = {"grant_type": "client_credentials"}

    status, headers, body = http("POST", base + "/oauth/token", grant, basic("maths-app", secret))
    assert status == 200 and body["token_type"] == "Bearer" and body["scope"] == "oneroster"
    assert body["expires_in"] == 3600 and headers["Cache-Control"] == "no-store"
    status, _, users = http("GET", base + "/ims/oneroster/rostering/v1p2/users",
                            headers={"Authorization": f"Bearer {body['access_token']}"})
    assert status == 200 and users["users"] == []  # no grants yet: nothing to see

    status, _, body = http("POST", base + "/oauth/token", {**grant, "client_id": "maths-app", "client_secret": secret})
    assert status == 200, body  # client credentials in the form body (RFC 6749 §2.3.1)

    status, headers, body = http("POST", base + "/oauth/token", grant, basic("maths-app", "a-wrong-secret"))
    assert (status, body["error"]) == (401, "invalid_client") and headers["WWW-Authenticate"].startswith("Basic")
    status, _, body = http("POST", base + "/oauth/token", {"grant_type": "password"}, basic("maths-app", secret))
    assert (status, body["error"]) == (400, "unsupported_grant_type")
    status, _, body = http("POST", base + "/oauth/token", {**grant, "scope": "scim"}, basic("maths-app", secret))
    assert (status, body["error"]) == (400, "invalid_scope") and "oneroster" in body["error_description"]
    status, _, body = http("GET", base + "/oauth/token")
    assert (status, body["error"]) == (405, "invalid_request")
    status, headers, body = http("GET", base + "/scim/v2/Users", headers={"Authorization": "Bearer nope"})
    assert (status, body["error"]) == (401, "invalid_token") and 'error="invalid_token"' in headers["WWW-Authenticate"]

    log.flush()
    logged = Path(log.name).read_text()
    assert "token refused" in logged  # the refusal is logged …
    assert secret not in logged and "a-wrong-secret" not in logged  # … without secrets
