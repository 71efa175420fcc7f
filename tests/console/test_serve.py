"""`relais serve console` as it runs in production: a real process under the production server, wired by
app/bootstrap.py, answering its pages and probes; a setting it cannot use stops it at start, naming it."""

from __future__ import annotations

import json
import urllib.request

from tests.e2e.test_http_serve import Served
from tests.ops_helpers import get

SECRET = "serve-test-secret-" + "z" * 20


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


def test_the_console_process_serves_its_pages_and_probes_and_stops_on_sigterm(sqlite_engine, tmp_path):
    env = {"RELAIS_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
           "RELAIS_CONSOLE_SECRET": SECRET, "RELAIS_CONSOLE_CAS_URL": "https://ent.example.org/cas",
           "RELAIS_CONSOLE_COOKIE_SECURE": "false"}
    served = Served("console", env, tmp_path).wait_serving()
    try:
        base = f"http://127.0.0.1:{served.http_port}"
        status, body = get(f"{base}/")
        assert status == 200 and '<html lang="fr">' in body and "Se connecter" in body
        assert get(f"{base}/readyz")[0] == 200
        opener = urllib.request.build_opener(_NoRedirect)
        try:
            opener.open(f"{base}/login", timeout=5)
            raise AssertionError("/login did not redirect")
        except urllib.error.HTTPError as exc:
            assert exc.code == 303
            assert exc.headers["Location"].startswith("https://ent.example.org/cas/login?service=")
            assert "default-src 'none'" in exc.headers["Content-Security-Policy"]
    finally:
        assert served.stop() == 0, served.stderr()
    lines = [json.loads(line) for line in served.stderr().splitlines() if line.startswith("{")]
    assert any(e.get("http_path") == "/login" and e.get("http_status") == 303 for e in lines)  # JSON access logs
    assert "state=" not in served.stderr() and "service=" not in served.stderr()  # never a query string


def test_without_its_secret_the_console_does_not_start_and_says_why(sqlite_engine, tmp_path):
    env = {"RELAIS_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
           "RELAIS_CONSOLE_SECRET": "short"}
    served = Served("console", env, tmp_path)
    assert served.proc.wait(60) == 2
    assert "RELAIS_CONSOLE_SECRET" in served.stderr()
