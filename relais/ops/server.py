"""HTTP in a Relais process: the ops endpoints (`/healthz`, `/readyz`, `/metrics`), and the server that
serves them and every service's HTTP (cheroot, a production WSGI server embedded in the process).

| path | answers |
|---|---|
| `GET /healthz` | liveness: 200 while the process serves requests |
| `GET /readyz` | readiness: 200 when every dependency check passes, else 503 with a JSON body naming what is down |
| `GET /metrics` | Prometheus text format (OpenMetrics when the scraper asks for it) |

`OpsApp` is a WSGI application: `serve_ops` runs it on its own port, and `mount` puts `/healthz`
and `/readyz` in front of another WSGI application (a public HTTP service keeps `/metrics` on the
ops port only).

`WsgiServer` serves a WSGI application from a pool of threads, in the
process that also relays its outbox and runs its consumers and timers: cheroot, measured on the
SSO's login path against waitress and gunicorn (deploy/http.md). A service's HTTP part
(`relais.runtime.Http`) takes its settings from the environment (`HttpSettings.from_env`):

| variable | default | what |
|---|---|---|
| `RELAIS_HTTP_THREADS` | 16 | requests served at once (threads); more wait in the queue |
| `RELAIS_HTTP_KEEPALIVE` | 100 | idle keep-alive connections kept open (then `Connection: close`; 0: none) |
| `RELAIS_HTTP_IDLE_TIMEOUT_S` | 30 | a connection silent this long is closed (a request begun: 408) |
| `RELAIS_HTTP_REQUEST_TIMEOUT_S` | 60 | a request not received and answered within this has its connection closed |
| `RELAIS_HTTP_MAX_BODY` | 1048576 | bytes a request body may hold; a larger one is answered 413, unread |
| `RELAIS_HTTP_SHUTDOWN_S` | 20 | on SIGTERM, how long requests in flight get to finish (no new connection is taken) |

Every value is a whole number (seconds for `_S`), at least 1 (0 allowed for the keep-alive).

Each request is logged once, when its response is sent: one line, `"GET /path" 302 1234 B 5.1 ms`,
with the same fields apart (`http_method`, `http_path`, `http_status`, `http_bytes`, `duration_ms`)
in JSON. Never the query string (CAS tickets, SAML messages, search filters naming people), the
client's address or its headers. The ops endpoints' own requests are not logged (probes come every
few seconds), their errors are.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import socket
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, fields
from typing import Any

from cheroot import server as cheroot_server
from cheroot import wsgi as cheroot_wsgi
from cheroot.workers import threadpool
from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder

from . import metrics
from .health import Check, readiness, run_checks

log = logging.getLogger(__name__)
access_log = logging.getLogger("relais.http.access")

DEFAULT_PORT = 9100
DEFAULT_HOST = "0.0.0.0"
PROBES = ("/healthz", "/readyz")
SERVER_NAME = "relais"  # the Server header: no software version for a scanner to read
BACKLOG = 128
PATH_LOGGED = 200  # characters of a path a log line keeps

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class OpsConfigError(ValueError):
    """RELAIS_OPS_PORT or RELAIS_OPS_HOST holds a value we cannot use."""


class HttpConfigError(ValueError):
    """A RELAIS_HTTP_* variable holds a value we cannot use."""


class ListenError(OSError):
    """An HTTP server cannot listen where it was told to (the port is taken, the address is not ours)."""


def ops_address(env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """(host, port) from RELAIS_OPS_HOST (default 0.0.0.0) and RELAIS_OPS_PORT (default 9100)."""
    env = os.environ if env is None else env
    host = (env.get("RELAIS_OPS_HOST") or DEFAULT_HOST).strip()
    raw = (env.get("RELAIS_OPS_PORT") or str(DEFAULT_PORT)).strip()
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise OpsConfigError(f"RELAIS_OPS_PORT={raw!r} is not a TCP port (0-65535)")
    return host, int(raw)


def http_address(default_host: str, default_port: int, env: Mapping[str, str] | None = None) -> tuple[str, int]:
    """(host, port) of a service's HTTP part from RELAIS_HTTP_HOST and RELAIS_HTTP_PORT, else the defaults."""
    env = os.environ if env is None else env
    host = (env.get("RELAIS_HTTP_HOST") or default_host).strip()
    raw = (env.get("RELAIS_HTTP_PORT") or str(default_port)).strip()
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        raise HttpConfigError(f"RELAIS_HTTP_PORT={raw!r} is not a TCP port (0-65535)")
    return host, int(raw)


@dataclass(frozen=True)
class HttpSettings:
    """How a `WsgiServer` serves (the module docstring's table says each variable)."""

    threads: int = 16
    keepalive: int = 100
    idle_timeout_s: int = 30
    request_timeout_s: int = 60
    max_body: int = 1024 * 1024
    shutdown_s: int = 20
    access_log: bool = True

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> HttpSettings:
        """The settings RELAIS_HTTP_* give, the defaults for the others; `HttpConfigError` names a bad one."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for f in fields(cls):
            variable = f"RELAIS_HTTP_{f.name.upper()}"
            raw = (env.get(variable) or "").strip()
            if not raw or f.name == "access_log":
                continue
            values[f.name] = _whole(variable, raw, minimum=0 if f.name == "keepalive" else 1)
        settings = cls(**values)
        if settings.request_timeout_s < settings.idle_timeout_s:
            raise HttpConfigError(f"RELAIS_HTTP_REQUEST_TIMEOUT_S={settings.request_timeout_s} is shorter than "
                                  f"RELAIS_HTTP_IDLE_TIMEOUT_S={settings.idle_timeout_s}: a request would be cut "
                                  "before a silent client is")
        return settings

    def describe(self) -> str:
        return (f"{self.threads} threads, keep-alive {self.keepalive}, idle timeout {self.idle_timeout_s} s, "
                f"request timeout {self.request_timeout_s} s, body up to {self.max_body} B")


def _whole(variable: str, raw: str, *, minimum: int) -> int:
    if not raw.isdigit() or int(raw) < minimum:
        unit = " (seconds)" if variable.endswith("_S") else ""
        raise HttpConfigError(f"{variable}={raw!r} is not a whole number{unit} of at least {minimum}")
    return int(raw)


OPS_SETTINGS = HttpSettings(threads=4, keepalive=10, idle_timeout_s=10, request_timeout_s=30, max_body=64 * 1024,
                            shutdown_s=2, access_log=False)


# -- the ops endpoints ---------------------------------------------------------------------------


class OpsApp:
    """The ops endpoints of `service`, its readiness made of `checks`."""

    def __init__(self, service: str, checks: Mapping[str, Check], *, registry=REGISTRY) -> None:
        self.service = service
        self.checks = dict(checks)
        self.registry = registry
        self.started = time.monotonic()
        self._down: list[str] | None = None  # what was down at the last /readyz (None: not asked yet)

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        path = environ.get("PATH_INFO") or "/"
        if environ.get("REQUEST_METHOD", "GET") not in ("GET", "HEAD"):
            return _json(start_response, 405, {"error": "method not allowed; use GET"}, Allow="GET, HEAD")
        if path == "/healthz":
            return _json(start_response, 200, {"service": self.service, "status": "alive",
                                               "uptime_seconds": round(time.monotonic() - self.started, 1)})
        if path == "/readyz":
            status, body = readiness(self.service, run_checks(self.checks))
            if body["down"] != self._down:  # log changes only: probes come every few seconds
                if body["down"]:
                    log.warning("not ready: %s", "; ".join(c["detail"] for c in body["checks"].values() if not c["ok"]))
                elif self._down:
                    log.info("ready again")
                self._down = body["down"]
            return _json(start_response, status, body)
        if path == "/metrics":
            encoder, content_type = choose_encoder(environ.get("HTTP_ACCEPT") or "")
            data = encoder(self.registry)
            start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(data)))])
            return [data]
        return _json(start_response, 404, {"error": f"no ops endpoint at {path}",
                                           "endpoints": ["/healthz", "/readyz", "/metrics"]})


def _json(start_response: Callable, status: int, body: Any, **headers: str) -> list[bytes]:
    data = json.dumps(body, ensure_ascii=False).encode()
    reason = {200: "OK", 404: "Not Found", 405: "Method Not Allowed", 503: "Service Unavailable"}[status]
    start_response(f"{status} {reason}", [("Content-Type", "application/json"), ("Content-Length", str(len(data))),
                                          ("Cache-Control", "no-store"), *headers.items()])
    return [data]


def mount(app: WSGIApp, ops: OpsApp, paths: tuple[str, ...] = PROBES) -> WSGIApp:
    """`app`, with `paths` (by default the probes, not `/metrics`) answered by `ops`."""

    def mounted(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") in paths:
            return ops(environ, start_response)
        return app(environ, start_response)

    return mounted


# -- access logs ---------------------------------------------------------------------------------


def log_request(method: str, path: str, status: int, size: int, seconds: float) -> None:
    """One access log line: the path without its query string (which may hold tickets or names)."""
    path = path.split("?", 1)[0]
    path = path if len(path) <= PATH_LOGGED else path[:PATH_LOGGED] + "…"
    ms = round(seconds * 1000, 1)
    access_log.info('"%s %s" %s %d B %.1f ms', method, path, status, size, ms,
                    extra={"fields": {"http_method": method, "http_path": path, "http_status": status,
                                      "http_bytes": size, "duration_ms": ms}})


class AccessLogged:
    """A WSGI application that logs each request once its response is sent, and counts it in the metrics."""

    def __init__(self, app: WSGIApp) -> None:
        self.app = app

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        started = time.perf_counter()
        seen = [500]

        def start(status: str, headers: list, exc_info: Any = None) -> Any:
            seen[0] = int(status[:3])
            return start_response(status, headers, exc_info)

        metrics.HTTP_IN_FLIGHT.inc()
        try:
            body = self.app(environ, start)
        except BaseException:
            metrics.HTTP_IN_FLIGHT.dec()  # the server answers 500, and logs it (`_Request.simple_response`)
            raise
        return _Body(body, lambda size: self._done(environ, seen[0], size, started))

    @staticmethod
    def _done(environ: dict, status: int, size: int, started: float) -> None:
        seconds = time.perf_counter() - started
        metrics.HTTP_IN_FLIGHT.dec()
        metrics.HTTP_REQUESTS.labels(code=str(status)).inc()
        metrics.HTTP_SECONDS.observe(seconds)
        path = (environ.get("SCRIPT_NAME") or "") + (environ.get("PATH_INFO") or "/")
        log_request(environ.get("REQUEST_METHOD") or "-", path, status, size, seconds)


class BodyLimit:
    """A WSGI application whose requests carry at most `max_body` bytes: a chunked body (no Content-Length)
    is read first, and a larger one answered 413 (cheroot answers 413 itself to a Content-Length too large)."""

    def __init__(self, app: WSGIApp, max_body: int) -> None:
        self.app = app
        self.max_body = max_body

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("CONTENT_LENGTH") or "chunked" not in (environ.get("HTTP_TRANSFER_ENCODING") or "").lower():
            return self.app(environ, start_response)
        try:
            body = environ["wsgi.input"].read(self.max_body + 1)
        except OSError:  # cheroot's chunked reader stops past the limit
            body = None
        if body is None or len(body) > self.max_body:
            text = f"request body larger than {self.max_body} bytes (RELAIS_HTTP_MAX_BODY)\n".encode()
            start_response("413 Content Too Large", [("Content-Type", "text/plain; charset=utf-8"),
                                                     ("Content-Length", str(len(text))), ("Connection", "close")])
            return [text]
        environ["wsgi.input"], environ["CONTENT_LENGTH"] = io.BytesIO(body), str(len(body))
        return self.app(environ, start_response)


class _Body:
    """A response body that counts its bytes and calls `done` once, when the server closes it."""

    def __init__(self, body: Iterable[bytes], done: Callable[[int], None]) -> None:
        self.body, self.done, self.size, self.closed = body, done, 0, False

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self.body:
            self.size += len(chunk)
            yield chunk

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        try:
            getattr(self.body, "close", lambda: None)()
        finally:
            self.done(self.size)


# -- the server ----------------------------------------------------------------------------------


class _Request(cheroot_server.HTTPRequest):
    """cheroot's request, whose own answers (400, 408, 413, 414...) are access-logged like the application's."""

    def simple_response(self, status: Any, msg: str = "") -> None:
        super().simple_response(status, msg)
        server = self.server
        if isinstance(server, _Server) and server.log_requests:
            method, uri = getattr(self, "method", None) or b"-", getattr(self, "uri", None) or b"-"
            method = method.decode("latin-1") if isinstance(method, bytes) else str(method)
            path = uri.decode("latin-1") if isinstance(uri, bytes) else str(uri)
            started = getattr(self.conn, "started", None)
            log_request(method, path, int(str(status)[:3]), len(msg),
                        time.monotonic() - started if started else 0.0)
            metrics.HTTP_REQUESTS.labels(code=str(status)[:3]).inc()


class _Connection(cheroot_server.HTTPConnection):
    """One client connection; the server knows when its current request began (`started`)."""

    RequestHandlerClass = _Request
    started: float | None = None

    def communicate(self) -> bool:
        server = self.server
        self.started = time.monotonic()
        server.in_flight.add(self)
        try:
            return bool(super().communicate())
        finally:
            server.in_flight.discard(self)
            self.started = None


class _Pool(threadpool.ThreadPool):
    """cheroot's thread pool with daemon threads: a request still running past the shutdown grace
    does not keep the process from exiting."""

    def _spawn_worker(self) -> threadpool.WorkerThread:
        worker = threadpool.WorkerThread(self.server)
        worker.name = f"http-{worker.name}"
        worker.daemon = True
        worker.start()
        return worker


_CLIENT_GONE = ("Got a connection error", "Got a server shutdown request")
_CLIENT_ADDRESS = re.compile(r"from \S+:\d+")  # cheroot's messages name the client's address and port


class _Server(cheroot_wsgi.Server):
    """cheroot's WSGI server: its errors logged through `logging`, its requests watched for time."""

    ConnectionClass = _Connection

    def __init__(self, bind: tuple[str, int], app: WSGIApp, settings: HttpSettings) -> None:
        super().__init__(bind, app, numthreads=settings.threads, max=settings.threads, server_name=SERVER_NAME,
                         request_queue_size=BACKLOG, timeout=settings.idle_timeout_s,
                         shutdown_timeout=settings.shutdown_s)
        self.requests = _Pool(self, min=settings.threads, max=settings.threads)
        self.max_request_body_size = settings.max_body
        self.max_request_header_size = 64 * 1024
        self.keep_alive_conn_limit = settings.keepalive
        self.log_requests = settings.access_log
        self.in_flight: set[_Connection] = set()

    def error_log(self, msg: str = "", level: int = logging.INFO, traceback: bool = False) -> None:
        if msg.startswith(_CLIENT_GONE):  # a client that reset its connection: no news, and its address is personal
            level = logging.DEBUG
        log.log(level, "http server: %s", _CLIENT_ADDRESS.sub("from a client", msg), exc_info=traceback)


class WsgiServer:
    """A WSGI application on host:port, served by a pool of threads.

    `what` names it, and `where` where its address comes from, in the error raised when the address
    cannot be bound (`ListenError`). `stop` lets requests in flight finish (up to `settings.shutdown_s`).
    """

    def __init__(self, app: WSGIApp, host: str, port: int, *, what: str, where: str,
                 settings: HttpSettings | None = None) -> None:
        self.settings = settings or HttpSettings()
        # The ops port's requests (probes, scrapes) are neither logged nor counted; its errors are logged.
        app = BodyLimit(app, self.settings.max_body)
        self._server = _Server((host, port), AccessLogged(app) if self.settings.access_log else app, self.settings)
        try:
            self._server.prepare()  # binds, listens, starts the threads
        except OSError as exc:
            raise ListenError(f"cannot serve {what} on {host}:{port} ({where}): {exc.strerror or exc}") from None
        self.host = host
        self.port: int = self._server.bind_addr[1]
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._server.serve, name=f"http-{self.port}", daemon=True)
        self._thread.start()
        self._watchdog = threading.Thread(target=self._watch, name=f"http-{self.port}-watchdog", daemon=True)
        self._watchdog.start()

    def _watch(self) -> None:
        """Cut requests past `request_timeout_s`: a client dribbling its request, a response never read."""
        limit = self.settings.request_timeout_s
        while not self._stopped.wait(min(1.0, limit / 4)):
            now = time.monotonic()
            for conn in list(self._server.in_flight):
                started = conn.started
                if started is not None and now - started > limit:
                    conn.started = None  # cut once
                    log.warning("http: a request took longer than %g s (RELAIS_HTTP_REQUEST_TIMEOUT_S); "
                                "its connection is closed", limit)
                    metrics.HTTP_TIMEOUTS.inc()
                    try:
                        conn.socket.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass  # already gone

    def in_flight(self) -> int:
        """Requests being received or answered now."""
        return len(self._server.in_flight)

    def stop(self) -> None:
        """Take no new connection, let requests in flight finish (up to `shutdown_s`), then stop the threads."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        busy = self.in_flight()
        if busy:
            log.info("http: stopping; %d request(s) in flight get up to %g s to finish", busy, self.settings.shutdown_s)
        stopping = threading.Thread(target=self._server.stop, name=f"http-{self.port}-stop", daemon=True)
        stopping.start()
        stopping.join(self.settings.shutdown_s + 5)  # cheroot cuts what is left at shutdown_s, then joins
        if stopping.is_alive():
            log.warning("http: %d request(s) still running after %g s; leaving them", self.in_flight(),
                        self.settings.shutdown_s)


def serve_ops(app: OpsApp, host: str | None = None, port: int | None = None) -> WsgiServer:
    """Start serving `app`; host and port default to RELAIS_OPS_HOST and RELAIS_OPS_PORT."""
    if host is None or port is None:
        env_host, env_port = ops_address()
        host, port = env_host if host is None else host, env_port if port is None else port
    server = WsgiServer(app, host, port, what="the ops endpoints", where="RELAIS_OPS_HOST/RELAIS_OPS_PORT",
                        settings=OPS_SETTINGS)
    log.info("ops endpoints on http://%s:%d/ (healthz, readyz, metrics)", server.host, server.port)
    return server
