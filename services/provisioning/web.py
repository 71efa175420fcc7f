"""Provisioning's HTTP side, wired in one place: the OAuth 2.0 token endpoint and the APIs apps read.

| path | what |
|---|---|
| `POST /oauth/token` | client credentials grant (RFC 6749 §4.4): HTTP Basic or form client authentication |
| `/ims/oneroster/rostering/v1p2/…` | OneRoster 1.2 rostering (`oneroster` scope) |
| `/scim/v2/…` | SCIM 2.0 service provider (`scim` scope) |
| `GET /healthz`, `GET /readyz` | liveness; readiness: the database answers (relais/ops: 503 naming what is down) |

Every API call needs `Authorization: Bearer <token>`; the app behind the
token sees only what `apps.entitled` gives it. `make_app(engine)` returns the
WSGI application; `relais provisioning serve-api` runs it, and any WSGI
server can run `services.provisioning.web:application` (configured from the
environment like every Relais process).
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import urllib.parse
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine
from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from relais.db import writer
from relais.ops.health import database_check
from relais.ops.server import OpsApp, mount

from . import apps

log = logging.getLogger(__name__)

Handler = Callable[[Request, str, Engine, "apps.Caller"], Response]


def _oneroster() -> Handler:
    from .oneroster_api import handle

    return handle


def _scim() -> Handler:
    from .scim import handle

    return handle


# prefix -> (scope required, the handler; imported on first use)
MOUNTS: dict[str, tuple[str, Callable[[], Handler]]] = {
    "/ims/oneroster/rostering/v1p2": ("oneroster", _oneroster),
    "/scim/v2": ("scim", _scim),
}


def json_response(body: Any, status: int = 200, content_type: str = "application/json", **headers: str) -> Response:
    return Response(json.dumps(body, ensure_ascii=False), status=status, content_type=content_type, headers=headers)


def _oauth_error(error: str, description: str, status: int = 400, **headers: str) -> Response:
    resp = json_response({"error": error, "error_description": description}, status, **headers)
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _client_credentials(request: Request) -> tuple[str, str] | None:
    header = request.headers.get("Authorization", "")
    if header[:6].lower() == "basic ":
        try:
            raw = base64.b64decode(header[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        if ":" not in raw:
            return None
        client_id, secret = raw.split(":", 1)
        # RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
        return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)
    if "client_id" in request.form and "client_secret" in request.form:
        return request.form["client_id"], request.form["client_secret"]
    return None


def token_endpoint(request: Request, engine: Engine) -> Response:
    if request.method != "POST":
        return _oauth_error("invalid_request", "use POST", 405, Allow="POST")
    if request.form.get("grant_type") != "client_credentials":
        return _oauth_error("unsupported_grant_type", "only grant_type=client_credentials is offered")
    creds = _client_credentials(request)
    with engine.connect() as conn:
        known = apps.load_apps(conn)
    app = known.get(creds[0]) if creds else None
    if app is None or not apps.check_secret(creds[1], app.secret_hash):
        log.warning("token refused: unknown client or wrong secret (client_id %r)", creds[0] if creds else None)
        return _oauth_error("invalid_client", "unknown client or wrong secret", 401,
                            **{"WWW-Authenticate": 'Basic realm="relais"'})
    asked = set(request.form.get("scope", "").split()) or set(app.scopes)
    if not asked <= app.scopes:
        return _oauth_error("invalid_scope", f"this client may ask for: {' '.join(sorted(app.scopes))}")
    with writer(engine).begin() as conn:
        token, lifetime = apps.issue_token(conn, app, asked)
    resp = json_response({"access_token": token, "token_type": "Bearer", "expires_in": lifetime,
                          "scope": " ".join(sorted(asked))})
    resp.headers["Cache-Control"] = "no-store"
    return resp


def _bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def _unauthorized(error: str, description: str, status: int = 401) -> Response:
    challenge = f'Bearer realm="relais", error="{error}", error_description="{description}"'
    return json_response({"error": error, "error_description": description}, status,
                         **{"WWW-Authenticate": challenge})


def make_app(engine: Engine) -> Callable:
    """The WSGI application over `engine` (the provisioning database)."""

    def dispatch(request: Request) -> Response:
        path = request.path.rstrip("/") or "/"
        if path == "/oauth/token":
            return token_endpoint(request, engine)
        for prefix, (scope, handler) in MOUNTS.items():
            if path == prefix or path.startswith(prefix + "/"):
                token = _bearer(request)
                if not token:
                    return _unauthorized("invalid_request", "an Authorization: Bearer token is required")
                with engine.connect() as conn:
                    caller = apps.authenticate(conn, token)
                if caller is None:
                    return _unauthorized("invalid_token", "unknown or expired token")
                if scope not in caller.scopes:
                    return _unauthorized("insufficient_scope", f"this API needs the {scope} scope", 403)
                return handler()(request, path[len(prefix):] or "/", engine, caller)
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

    ops = OpsApp("provisioning", {"database": database_check(engine.url.render_as_string(hide_password=False))})
    return mount(application, ops)


def application(environ: dict, start_response: Callable) -> Any:
    """For WSGI servers: the app over the database the environment names (built on first call)."""
    global _default
    if _default is None:
        from relais.config import Settings
        from relais.db import make_engine, upgrade

        engine = make_engine(Settings.from_env().database_url)
        upgrade(engine)
        _default = make_app(engine)
    return _default(environ, start_response)


_default: Callable | None = None
