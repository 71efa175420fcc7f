"""Provisioning's HTTP side, wired in one place: the OAuth 2.0 token endpoint and the APIs apps read.

| path | what |
|---|---|
| `POST /oauth/token` | client credentials grant (RFC 6749 §4.4), HTTP Basic or form authentication (`oauth.py`) |
| `/ims/oneroster/rostering/v1p2/…` | OneRoster 1.2 rostering (`oneroster` scope; `oneroster_rest.py`) |
| `/scim/v2/…` | SCIM 2.0 service provider (`scim` scope; `scim.py`) |
| `GET /openapi.json` | this API's OpenAPI 3.1 description, `contracts/openapi.yaml` (no token; `openapi.py`) |
| `GET /healthz`, `GET /readyz` | liveness; readiness: the database answers (relais/ops: 503 naming what is down) |

Every API call needs `Authorization: Bearer <token>`; the app behind the
token sees only what `apps.entitled` gives it. `make_app(engine)` returns the
WSGI application; `relais serve provisioning-api` runs it (../process.py),
in the server every Relais HTTP service runs in. Another WSGI server could run
`services.provisioning.api.wsgi:application` (configured from the environment
like every Relais process), without the limits and access logs that one adds.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from relais.config import Settings
from relais.db import make_engine, upgrade
from relais.ops.health import database_check
from relais.ops.server import PROBES, OpsApp, mount

from . import apps, oneroster_rest, openapi, scim
from .oauth import bearer, json_response, token_endpoint, unauthorized

log = logging.getLogger(__name__)

Handler = Callable[[Request, str, Engine, apps.Caller], Response]

# prefix -> (scope required, the handler)
MOUNTS: dict[str, tuple[str, Handler]] = {
    oneroster_rest.ROOT: ("oneroster", oneroster_rest.handle),
    scim.ROOT: ("scim", scim.handle),
}


def served_paths() -> dict[str, frozenset[str]]:
    """Every path template the app answers, with its methods (HEAD aside): contracts/openapi.yaml names the same."""
    out = {"/oauth/token": frozenset({"POST"}), openapi.PATH: frozenset({"GET"})}
    out |= {probe: frozenset({"GET"}) for probe in PROBES}
    out |= {oneroster_rest.ROOT + t: frozenset({"GET"}) for t in oneroster_rest.TEMPLATES}
    out |= {scim.ROOT + t: frozenset(methods) for t, methods in scim.PATHS.items()}
    return out


def make_app(engine: Engine) -> Callable:
    """The WSGI application over `engine` (the provisioning database)."""

    def dispatch(request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path == "/oauth/token":
            return token_endpoint(request, engine)
        if path == openapi.PATH:
            return openapi.serve(request)
        for prefix, (scope, handler) in MOUNTS.items():
            if path == prefix or path.startswith(prefix + "/"):
                token = bearer(request)
                if not token:
                    return unauthorized("invalid_request", "an Authorization: Bearer token is required")
                with engine.connect() as conn:
                    caller = apps.authenticate(conn, token)
                if caller is None:
                    return unauthorized("invalid_token", "unknown or expired token")
                if scope not in caller.scopes:
                    return unauthorized("insufficient_scope", f"this API needs the {scope} scope", 403)
                return handler(request, path[len(prefix):] or "/", engine, caller)
        return json_response({"error": "not_found", "error_description": f"no endpoint at {request.path}"}, 404)

    @Request.application
    def application(request: Request) -> Response:
        try:
            return dispatch(request)
        except HTTPException as exc:
            return exc.get_response()
        except Exception:  # noqa: BLE001 - one failed request must not take the server down
            log.exception("request failed: %s %s", request.method, request.path)
            return json_response({"error": "server_error", "error_description": "internal error (see the logs)"},
                                 500)

    ops = OpsApp("provisioning-api", {"database": database_check(engine.url.render_as_string(hide_password=False))})
    return mount(application, ops)


def application(environ: dict, start_response: Callable) -> Any:
    """For WSGI servers: the app over the database the environment names (built on first call)."""
    global _default
    if _default is None:
        engine = make_engine(Settings.from_env().database_url)
        upgrade(engine)
        _default = make_app(engine)
    return _default(environ, start_response)


_default: Callable | None = None
