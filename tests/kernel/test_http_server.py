"""The HTTP server every Relais HTTP service runs in (relais/ops/server.py), on real sockets.

Settings from RELAIS_HTTP_*, keep-alive, the body and time limits (413, 408, a dribbling client
cut), a stop that lets requests in flight finish, and access log lines: one JSON object per
request, never its query string.
"""

from __future__ import annotations

import http.client
import io
import json
import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from relais.ops import metrics
from relais.ops.logs import configure_logging
from relais.ops.server import HttpConfigError, HttpSettings, WsgiServer

WAIT_S = 30  # the longest a test waits for what must happen (never a measure of how fast it happens)


class App:
    """A WSGI app that says which connection served it, what body it read, and can be held at /slow."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, environ, start_response):
        self.calls += 1
        if environ["PATH_INFO"] == "/slow":
            self.entered.set()
            self.release.wait(WAIT_S)
        if environ["PATH_INFO"] == "/boom":
            raise RuntimeError("the handler failed")
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        data = json.dumps({"client_port": environ.get("REMOTE_PORT"), "read": len(body)}).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]


@pytest.fixture
def logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = configure_logging("http-test", fmt="json", stream=stream)
    yield stream
    logging.getLogger().removeHandler(handler)


def serve(app, **settings) -> WsgiServer:
    return WsgiServer(app, "127.0.0.1", 0, what="the test app", where="a test", settings=HttpSettings(**settings))


def lines(stream: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def access(stream: io.StringIO) -> list[dict]:
    return [r for r in lines(stream) if r["logger"] == "relais.http.access"]


def get(port: int, path: str, conn: http.client.HTTPConnection | None = None, **kwargs) -> tuple[int, dict, bytes]:
    conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=WAIT_S)
    conn.request(kwargs.pop("method", "GET"), path, **kwargs)
    response = conn.getresponse()
    return response.status, dict(response.getheaders()), response.read()


def read_until_closed(sock: socket.socket) -> bytes:
    sock.settimeout(WAIT_S)
    data = b""
    try:
        while chunk := sock.recv(4096):
            data += chunk
    except ConnectionResetError:
        pass
    return data


# -- settings ------------------------------------------------------------------------------------


def test_settings_come_from_relais_http_variables_with_defaults():
    assert HttpSettings.from_env({}) == HttpSettings()
    settings = HttpSettings.from_env({"RELAIS_HTTP_THREADS": "32", "RELAIS_HTTP_KEEPALIVE": "0",
                                      "RELAIS_HTTP_MAX_BODY": "2048", "RELAIS_HTTP_SHUTDOWN_S": "5",
                                      "RELAIS_HTTP_IDLE_TIMEOUT_S": "10", "RELAIS_HTTP_REQUEST_TIMEOUT_S": "15"})
    assert (settings.threads, settings.keepalive, settings.max_body, settings.shutdown_s, settings.idle_timeout_s,
            settings.request_timeout_s) == (32, 0, 2048, 5, 10, 15)


@pytest.mark.parametrize("variable, value, says", [
    ("RELAIS_HTTP_THREADS", "0", "RELAIS_HTTP_THREADS='0' is not a whole number of at least 1"),
    ("RELAIS_HTTP_THREADS", "many", "RELAIS_HTTP_THREADS='many' is not a whole number"),
    ("RELAIS_HTTP_MAX_BODY", "1M", "RELAIS_HTTP_MAX_BODY='1M' is not a whole number"),
    ("RELAIS_HTTP_SHUTDOWN_S", "2.5", "RELAIS_HTTP_SHUTDOWN_S='2.5' is not a whole number (seconds)"),
    ("RELAIS_HTTP_KEEPALIVE", "-1", "RELAIS_HTTP_KEEPALIVE='-1' is not a whole number of at least 0"),
    ("RELAIS_HTTP_REQUEST_TIMEOUT_S", "5",
     "RELAIS_HTTP_REQUEST_TIMEOUT_S=5 is shorter than RELAIS_HTTP_IDLE_TIMEOUT_S=30"),
])
def test_a_bad_setting_is_refused_by_name(variable, value, says):
    with pytest.raises(HttpConfigError) as caught:
        HttpSettings.from_env({variable: value})
    assert says in str(caught.value)


# -- connections -----------------------------------------------------------------------------------


def test_requests_share_a_kept_alive_connection_unless_keep_alive_is_off():
    app = App()
    server = serve(app)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=WAIT_S)
        ports = {json.loads(get(server.port, f"/{i}", conn)[2])["client_port"] for i in range(3)}
        assert len(ports) == 1  # three requests, one connection
    finally:
        server.stop()
    server = serve(app, keepalive=0)
    try:
        status, headers, _ = get(server.port, "/")
        assert status == 200 and headers["Connection"] == "close"
    finally:
        server.stop()


def test_the_server_names_no_version():
    server = serve(App())
    try:
        assert get(server.port, "/")[1]["Server"] == "relais"
    finally:
        server.stop()


# -- limits ------------------------------------------------------------------------------------


def test_an_oversized_body_gets_413_unread_and_the_server_goes_on(logs):
    app = App()
    server = serve(app, max_body=1000)
    try:
        status, headers, body = get(server.port, "/upload", method="POST", body=b"x" * 5000)
        assert status == 413 and headers["Connection"] == "close" and app.calls == 0
        # chunked, without a Content-Length: read up to the limit, then refused the same way. The server may
        # answer and close before the client has sent it all, as a client must expect: sent whole, read back
        chunked = b"".join(b"258\r\n" + b"y" * 600 + b"\r\n" for _ in range(3)) + b"0\r\n\r\n"
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            try:
                sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked)
            except (BrokenPipeError, ConnectionResetError):
                pass
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 413 ") and b"RELAIS_HTTP_MAX_BODY" in answer and app.calls == 0
        status, _, body = get(server.port, "/upload", method="POST", body=b"z" * 1000)
        assert status == 200 and json.loads(body)["read"] == 1000
        status, _, body = get(server.port, "/upload", method="POST", body=iter([b"z" * 400] * 2),
                              encode_chunked=True, headers={"Transfer-Encoding": "chunked"})
        assert status == 200 and json.loads(body)["read"] == 800
    finally:
        server.stop()
    # (a line is written once the response is sent: in any order)
    assert sorted((r["http_path"], r["http_status"]) for r in access(logs)) == [
        ("/upload", 200), ("/upload", 200), ("/upload", 413), ("/upload", 413)]


def test_a_client_silent_past_the_idle_timeout_gets_408():
    server = serve(App(), idle_timeout_s=1)
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"POST /upload HTTP/1.1\r\nHost: x\r\n")  # then nothing
            answer = read_until_closed(sock)
        assert answer.startswith(b"HTTP/1.1 408 Request Timeout")
    finally:
        server.stop()


def test_a_request_past_the_request_timeout_is_cut_even_if_it_dribbles(logs):
    """A client sending a byte now and then (never silent long enough for the idle timeout) still gets
    cut: the request timeout counts from the request's first byte. Others are served meanwhile."""
    server = serve(App(), idle_timeout_s=5, request_timeout_s=5)
    cut_before = metrics.HTTP_TIMEOUTS._value.get()
    try:
        with socket.create_connection(("127.0.0.1", server.port)) as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n")
            deadline = time.monotonic() + WAIT_S
            cut = False
            while not cut and time.monotonic() < deadline:
                try:
                    sock.sendall(b"X-Dribble: 1\r\n")
                except OSError:
                    cut = True  # the server closed the connection
                    break
                assert get(server.port, "/other")[0] == 200
                sock.settimeout(0.5)
                try:
                    cut = sock.recv(4096) == b""
                except TimeoutError:
                    pass
            assert cut
    finally:
        server.stop()
    assert metrics.HTTP_TIMEOUTS._value.get() == cut_before + 1
    assert any("RELAIS_HTTP_REQUEST_TIMEOUT_S" in r["message"] and r["level"] == "WARNING" for r in lines(logs))


# -- stopping ----------------------------------------------------------------------------------------


def test_stop_takes_no_new_connection_and_lets_the_request_in_flight_finish():
    app = App()
    server = serve(app, shutdown_s=WAIT_S)
    answered: list[tuple[int, bytes]] = []

    def slow_client() -> None:
        status, _, body = get(server.port, "/slow")
        answered.append((status, body))

    client = threading.Thread(target=slow_client)
    client.start()
    assert app.entered.wait(WAIT_S)
    stopping = threading.Thread(target=server.stop)
    stopping.start()
    deadline = time.monotonic() + WAIT_S
    refused = False
    while not refused and time.monotonic() < deadline:  # the listening socket closes first
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=1).close()
            time.sleep(0.05)
        except ConnectionRefusedError:
            refused = True
    assert refused and stopping.is_alive() and server.in_flight() == 1
    app.release.set()
    client.join(WAIT_S)
    stopping.join(WAIT_S)
    assert not stopping.is_alive()
    assert answered and answered[0][0] == 200 and json.loads(answered[0][1])["read"] == 0


def test_stop_does_not_wait_past_its_grace_for_a_stuck_request(logs):
    app = App()  # /slow waits up to WAIT_S: longer than the grace
    server = serve(app, shutdown_s=1)
    client = threading.Thread(target=lambda: _ignore_errors(lambda: get(server.port, "/slow")), daemon=True)
    client.start()
    assert app.entered.wait(WAIT_S)
    stopping = threading.Thread(target=server.stop)
    stopping.start()
    stopping.join(WAIT_S - 5)
    assert not stopping.is_alive()  # it gave up on the stuck request, which would still hold it
    app.release.set()
    client.join(WAIT_S)
    # the request left behind still ends with its access line (here, not in whichever test runs next)
    deadline = time.monotonic() + WAIT_S
    while not any(r["http_path"] == "/slow" for r in access(logs)) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [r["http_path"] for r in access(logs)] == ["/slow"]


def _ignore_errors(call) -> None:
    try:
        call()
    except (OSError, http.client.HTTPException):
        pass


# -- logs ----------------------------------------------------------------------------------------------


def test_each_request_is_one_json_line_without_its_query_string(logs):
    server = serve(App())
    try:
        get(server.port, "/cas/serviceValidate?ticket=ST-1-SECRETTICKET&service=https%3A%2F%2Fapp")
        get(server.port, "/scim/v2/Users?filter=userName%20eq%20%22Secretname%22")
        assert get(server.port, "/boom")[0] == 500
    finally:
        server.stop()
    text = logs.getvalue()
    assert "SECRETTICKET" not in text and "Secretname" not in text and "filter" not in text and "\x1b" not in text
    records = access(logs)
    assert sorted((r["http_method"], r["http_path"], r["http_status"]) for r in records) == [
        ("GET", "/boom", 500), ("GET", "/cas/serviceValidate", 200), ("GET", "/scim/v2/Users", 200)]
    (first,) = [r for r in records if r["http_path"] == "/cas/serviceValidate"]
    assert first["message"].startswith('"GET /cas/serviceValidate" 200 ')
    assert first["http_bytes"] > 0 and first["duration_ms"] >= 0 and first["service"] == "http-test"
    # the handler's failure: one line with its traceback, in the same JSON
    (failure,) = [r for r in lines(logs) if r["level"] == "ERROR"]
    assert "RuntimeError: the handler failed" in failure["exception"]


def test_requests_are_counted_in_the_metrics():
    before = metrics.HTTP_REQUESTS.labels(code="404")._value.get()

    def missing(environ, start_response):
        start_response("404 Not Found", [("Content-Length", "0")])
        return [b""]

    server = serve(missing)
    try:
        assert get(server.port, "/nothing")[0] == 404
    finally:
        server.stop()
    assert metrics.HTTP_REQUESTS.labels(code="404")._value.get() == before + 1
    assert metrics.HTTP_IN_FLIGHT._value.get() == 0
