"""The ops endpoints of a service: `/healthz`, `/readyz`, `/metrics`.

| path | answers |
|---|---|
| `GET /healthz` | liveness: 200 while the process serves requests |
| `GET /readyz` | readiness: 200 when every dependency check passes, else 503 with a JSON body naming what is down |
| `GET /metrics` | Prometheus text format (OpenMetrics when the scraper asks for it) |

`OpsApp` is a WSGI application: `serve_ops` runs it on its own port in a
background thread (a green thread under eventlet, since threading is patched
there), and `mount` puts `/healthz` and `/readyz` in front of another WSGI
application (a public HTTP service keeps `/metrics` on the ops port only).
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from prometheus_client import REGISTRY
from prometheus_client.exposition import choose_encoder
from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server

from . import metrics  # noqa: F401 - defines the metrics /metrics serves, even before the bus is loaded
from .health import Check, readiness, run_checks

log = logging.getLogger(__name__)

DEFAULT_PORT = 9100
DEFAULT_HOST = "0.0.0.0"
PROBES = ("/healthz", "/readyz")

WSGIApp = Callable[[dict, Callable], Iterable[bytes]]


class OpsConfigError(ValueError):
    """RELAIS_OPS_PORT or RELAIS_OPS_HOST holds a value we cannot use."""


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


class PathOnlyRequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, logging each request's path without its query string.

    Query strings carry what must not reach logs: tickets, and search filters
    naming people (SCIM `filter=userName eq ...`, OneRoster `filter=familyName=...`).
    """

    def log_request(self, code="-", size="-") -> None:
        self.log("info", '"%s %s" %s', self.command, self.path.split("?", 1)[0], getattr(code, "value", code))


class _QuietHandler(WSGIRequestHandler):
    """Probes come every few seconds: requests are not logged, errors are."""

    def log_request(self, code="-", size="-") -> None:
        pass


class WsgiServer:
    """A WSGI application on host:port, served by threads (green ones under eventlet) from a background thread.

    `what` names it, and `settings` where its address comes from, in the error raised when the
    address cannot be bound (`ListenError`).
    """

    def __init__(self, app: WSGIApp, host: str, port: int, *, what: str, settings: str,
                 request_handler: type[WSGIRequestHandler] = PathOnlyRequestHandler) -> None:
        # Bound here, not by werkzeug, which exits the process when the port is taken.
        sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((host, port))
            sock.listen(128)
            self._server: BaseWSGIServer = make_server(host, port, app, threaded=True,
                                                       request_handler=request_handler, fd=sock.fileno())
        except OSError as exc:
            raise ListenError(f"cannot serve {what} on {host}:{port} ({settings}): {exc.strerror or exc}") from None
        finally:
            sock.close()  # the server holds its own duplicate of the socket
        self.host = host
        self.port = self._server.port
        self._thread = threading.Thread(target=self._server.serve_forever, name=f"http-{port}", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def serve_ops(app: OpsApp, host: str | None = None, port: int | None = None) -> WsgiServer:
    """Start serving `app`; host and port default to RELAIS_OPS_HOST and RELAIS_OPS_PORT."""
    if host is None or port is None:
        env_host, env_port = ops_address()
        host, port = env_host if host is None else host, env_port if port is None else port
    server = WsgiServer(app, host, port, what="the ops endpoints", settings="RELAIS_OPS_HOST/RELAIS_OPS_PORT",
                        request_handler=_QuietHandler)
    log.info("ops endpoints on http://%s:%d/ (healthz, readyz, metrics)", server.host, server.port)
    return server
