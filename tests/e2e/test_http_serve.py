"""The HTTP services as they run in production: `relais serve sso` and `relais serve provisioning-api`,
real processes on real ports, under the production server (relais/ops/server.py).

What an operator meets: every line on stderr is a JSON log line (no development-server banner, no
terminal colour codes), one per request and without its query string; an oversized body is answered
413 and the process goes on; SIGTERM lets a request in flight finish, then the process exits 0; a
bad RELAIS_HTTP_* setting stops the start with exit status 2, naming it.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from tests.ops_helpers import RELAIS, free_port, get

WAIT_S = 60  # the longest a test waits for what must happen (a bound, never a measure)


class Served:
    """`relais serve SERVICE` with its stdout and stderr apart; its HTTP port and its ops port."""

    def __init__(self, service: str, env: dict[str, str], folder: Path) -> None:
        self.service = service
        self.http_port, self.ops_port = free_port(), free_port()
        self.stderr_path, self.stdout_path = folder / f"{service}.stderr", folder / f"{service}.stdout"
        environment = {k: v for k, v in os.environ.items() if k != "RELAIS_LOG_FORMAT"}  # the default: not a tty
        environment.update({"RELAIS_HTTP_PORT": str(self.http_port), "RELAIS_OPS_PORT": str(self.ops_port),
                            "RELAIS_OPS_HOST": "127.0.0.1", **env})
        with open(self.stderr_path, "wb") as err, open(self.stdout_path, "wb") as out:
            self.proc = subprocess.Popen([RELAIS, "serve", service], env=environment, stdout=out, stderr=err)

    def wait_serving(self) -> Served:
        deadline = time.monotonic() + WAIT_S
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"{self.service} exited {self.proc.returncode}:\n{self.stderr()}"
            try:
                if get(f"http://127.0.0.1:{self.http_port}/healthz", timeout=1)[0] == 200:
                    return self
            except OSError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.service} did not serve HTTP in {WAIT_S} s:\n{self.stderr()}")

    def in_flight(self) -> float:
        for line in get(f"http://127.0.0.1:{self.ops_port}/metrics")[1].splitlines():
            if line.startswith("relais_http_requests_in_flight "):
                return float(line.split()[1])
        raise AssertionError("no relais_http_requests_in_flight on the ops port")

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.terminate()
        try:
            return self.proc.wait(WAIT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise


def request(port: int, raw: bytes) -> bytes:
    """Send `raw` on a new connection; the whole answer, once the server closes it."""
    with socket.create_connection(("127.0.0.1", port), timeout=WAIT_S) as sock:
        sock.sendall(raw)
        return _answer(sock)


def _answer(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def assert_json_lines_only(served: Served, *secrets: str) -> list[dict]:
    text = served.stderr()
    assert "\x1b" not in text and "\x1b" not in served.stdout_path.read_text(errors="replace")
    assert "development server" not in text.lower()
    records = []
    for line in text.splitlines():
        try:
            records.append(json.loads(line))
        except ValueError:
            pytest.fail(f"{served.service}: a stderr line is not JSON: {line!r}")
    for secret in secrets:
        assert secret not in text, secret
    return records


@pytest.fixture
def sso_env(tmp_path, sqlite_engine, amqp_uri) -> dict[str, str]:
    config = tmp_path / "sso.yaml"
    config.write_text("base_url: https://ent.example.org\ncookie: {secure: false}\nservices:\n"
                      "  - {id: app, prefix: 'https://app.example.org/', attributes: [uid]}\n")
    return {"RELAIS_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False),
            "RELAIS_SSO_CONFIG": str(config), "RELAIS_SSO_SECRET": "x" * 40, "RELAIS_CONSUMERS": "none",
            "RELAIS_AMQP_URI": amqp_uri}


@pytest.fixture
def api_env(sqlite_engine) -> dict[str, str]:
    return {"RELAIS_DATABASE_URL": sqlite_engine.url.render_as_string(hide_password=False)}


@pytest.mark.parametrize("service, path", [("sso", "/saml/acs"), ("provisioning-api", "/oauth/token")])
def test_sigterm_lets_a_slow_request_finish_then_exits_0(service, path, request_env, tmp_path):
    served = Served(service, request_env(service), tmp_path).wait_serving()
    try:
        body = b"SAMLResponse=" + b"A" * 200 if service == "sso" else b"grant_type=client_credentials&x=" + b"A" * 200
        half = len(body) // 2
        with socket.create_connection(("127.0.0.1", served.http_port), timeout=WAIT_S) as sock:
            sock.sendall(f"POST {path} HTTP/1.1\r\nHost: ent.example.org\r\nContent-Type: "
                         f"application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n".encode()
                         + body[:half])
            deadline = time.monotonic() + WAIT_S
            while served.in_flight() < 1:  # the handler is reading the body
                assert time.monotonic() < deadline, served.stderr()
                time.sleep(0.05)
            served.proc.send_signal(signal.SIGTERM)
            deadline = time.monotonic() + WAIT_S
            while True:  # it takes no new connection...
                try:
                    socket.create_connection(("127.0.0.1", served.http_port), timeout=1).close()
                except ConnectionRefusedError:
                    break
                assert time.monotonic() < deadline, "still accepting connections after SIGTERM"
                time.sleep(0.05)
            assert served.proc.poll() is None  # ...and waits for the request in flight
            sock.sendall(body[half:])
            answer = _answer(sock)
        status_line = answer.split(b"\r\n", 1)[0]
        assert status_line.startswith(b"HTTP/1.1 4"), answer[:300]  # the request's own answer, all of it
        head, _, content = answer.partition(b"\r\n\r\n")
        length = next(int(h.split(b":")[1]) for h in head.split(b"\r\n") if h.lower().startswith(b"content-length"))
        assert len(content) == length
        assert served.stop() == 0, served.stderr()
    finally:
        served.stop()
    records = assert_json_lines_only(served)
    assert any(r["logger"] == "relais.http.access" and r["http_path"] == path for r in records)


@pytest.fixture
def request_env(sso_env, api_env):
    return lambda service: sso_env if service == "sso" else api_env


def test_the_provisioning_api_process_logs_json_limits_bodies_and_keeps_query_strings_out(api_env, tmp_path):
    served = Served("provisioning-api", {**api_env, "RELAIS_HTTP_MAX_BODY": "4096"}, tmp_path).wait_serving()
    try:
        base = f"http://127.0.0.1:{served.http_port}"
        status, _ = get(base + "/scim/v2/Users?filter=userName%20eq%20%22Secretname%22")
        assert status == 401  # no token: refused, and logged
        answer = request(served.http_port, b"POST /oauth/token HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                           b"application/x-www-form-urlencoded\r\nContent-Length: 5000000\r\n\r\n"
                                           + b"A" * 8192)
        assert answer.startswith(b"HTTP/1.1 413 ")
        assert get(base + "/readyz")[0] == 200  # still serving
        health = subprocess.run([RELAIS, "health", "provisioning-api", "--port", str(served.ops_port)],
                                capture_output=True, text=True, timeout=WAIT_S)
        assert health.returncode == 0, health.stdout + health.stderr
    finally:
        assert served.stop() == 0
    records = assert_json_lines_only(served, "Secretname", "filter=")
    statuses = {(r["http_path"], r["http_status"]) for r in records if r["logger"] == "relais.http.access"}
    assert {("/scim/v2/Users", 401), ("/oauth/token", 413), ("/readyz", 200)} <= statuses


def test_the_sso_process_logs_json_lines_and_no_ticket(sso_env, tmp_path):
    served = Served("sso", sso_env, tmp_path).wait_serving()
    try:
        base = f"http://127.0.0.1:{served.http_port}"
        status, _ = get(base + "/cas/serviceValidate?ticket=ST-1-Secretticket&service=https%3A%2F%2Fapp.example.org%2F")
        assert status == 200  # a CAS failure document
        answer = request(served.http_port, b"POST /saml/acs HTTP/1.1\r\nHost: x\r\nContent-Length: 2000000\r\n\r\n")
        assert answer.startswith(b"HTTP/1.1 413 ")
    finally:
        assert served.stop() == 0
    records = assert_json_lines_only(served, "Secretticket")
    assert any(r.get("http_path") == "/cas/serviceValidate" for r in records)
    assert any("16 threads" in r["message"] for r in records)  # the server says how it serves


def test_a_bad_http_setting_stops_the_start_naming_it(api_env, tmp_path):
    env = {**os.environ, **api_env, "RELAIS_HTTP_THREADS": "lots", "RELAIS_OPS_PORT": str(free_port()),
           "RELAIS_OPS_HOST": "127.0.0.1"}
    res = subprocess.run([RELAIS, "serve", "provisioning-api"], env=env, capture_output=True, text=True,
                         timeout=WAIT_S)
    assert res.returncode == 2 and "RELAIS_HTTP_THREADS='lots' is not a whole number" in res.stderr
    env.update(RELAIS_HTTP_THREADS="8", RELAIS_HTTP_PORT="99999")
    res = subprocess.run([RELAIS, "serve", "provisioning-api"], env=env, capture_output=True, text=True,
                         timeout=WAIT_S)
    assert res.returncode == 2 and "RELAIS_HTTP_PORT='99999' is not a TCP port" in res.stderr


def test_the_old_serve_api_command_says_what_replaced_it(tmp_path):
    res = subprocess.run([RELAIS, "provisioning", "serve-api", "--port", "8420"], capture_output=True, text=True,
                         env={**os.environ, "RELAIS_DATA_DIR": str(tmp_path)}, timeout=WAIT_S)
    assert res.returncode == 2 and "relais serve provisioning-api" in res.stderr
