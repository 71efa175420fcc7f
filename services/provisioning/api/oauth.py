"""OAuth 2.0 for the APIs apps call: the token endpoint and the bearer token check.

`POST /oauth/token` is the client credentials grant (RFC 6749 §4.4), the
client authenticated by HTTP Basic or by form fields; the token it issues
(`apps.issue_token`) is then sent as `Authorization: Bearer` (RFC 6750) to
the OneRoster and SCIM APIs. Errors are RFC 6749/6750's JSON and
`WWW-Authenticate` challenges.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import urllib.parse
from typing import Any

from sqlalchemy import Engine
from werkzeug.wrappers import Request, Response

from relais.db import writer

from . import apps

log = logging.getLogger(__name__)


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
    """`POST /oauth/token`: a bearer token for a known client with its secret (client credentials grant)."""
    if request.method != "POST":
        return _oauth_error("invalid_request", "use POST", 405, Allow="POST")
    if request.form.get("grant_type") != "client_credentials":
        return _oauth_error("unsupported_grant_type", "only grant_type=client_credentials is offered")
    creds = _client_credentials(request)
    with engine.connect() as conn:
        known = apps.load_apps(conn)
    client_id, secret = creds if creds else (None, "")
    app = known.get(client_id) if client_id is not None else None
    if app is None or not apps.check_secret(secret, app.secret_hash):
        log.warning("token refused: unknown client or wrong secret (client_id %r)", client_id)
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


def bearer(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    return header[7:].strip() if header[:7].lower() == "bearer " else None


def unauthorized(error: str, description: str, status: int = 401) -> Response:
    challenge = f'Bearer realm="relais", error="{error}", error_description="{description}"'
    return json_response({"error": error, "error_description": description}, status,
                         **{"WWW-Authenticate": challenge})
