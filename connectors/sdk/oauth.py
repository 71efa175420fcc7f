"""OAuth 2.0 access tokens for vendor APIs (RFC 6749): client credentials and refresh tokens.

:class:`OAuth2` is an :class:`Auth`: give it to :class:`HttpClient` (or write ``auth: {type:
oauth2, ...}`` in a connector's configuration) and each request carries a valid access token.
It asks the token endpoint for one on first use, again shortly before it expires (``leeway``
seconds, or a tenth of its lifetime when that is shorter), and once when the API answers 401
to a token it believed valid (:meth:`HttpClient.request` calls :meth:`OAuth2.invalidate` and
sends the request again, once). Threads share one token; one of them fetches it while the
others wait.

With the ``refresh_token`` grant, a new refresh token the server sends replaces the old one
(rotation, RFC 6749 §6 and OAuth 2.0 Security BCP §4.14); ``on_refresh_token`` is told of it
so that it can be kept for the next run. Tokens, the client secret and refresh tokens are
:class:`Secret`: never in reprs, logs or errors, which name the token endpoint, the client id
and the OAuth error code only.
"""
from __future__ import annotations

import logging
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from typing import Any

import requests

from .auth import Auth, Secret
from .errors import AuthError, BadResponse, ConfigError, ConnectorError, TransientError

log = logging.getLogger("connectors.oauth")

GRANTS = ("client_credentials", "refresh_token")
CLIENT_AUTH = ("basic", "post")  # client_secret_basic (the default of RFC 6749 §2.3.1), client_secret_post
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class OAuth2(Auth):
    """Access tokens from a token endpoint, refreshed before expiry and once on a 401."""

    def __init__(self, token_url: str, client_id: str, *, client_secret: Secret | None = None,
                 grant: str = "client_credentials", refresh_token: Secret | None = None,
                 scope: str | None = None, client_auth: str = "basic", leeway: float = 60.0,
                 timeout: float = 30.0, verify_tls: bool | str = True, connector: str = "oauth2",
                 on_refresh_token: Callable[[Secret], None] | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        parts = urllib.parse.urlsplit(token_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"token_url {token_url!r} must be an http(s) URL with a host", connector=connector)
        if parts.scheme == "http" and parts.hostname not in _LOCAL_HOSTS:
            raise ConfigError(f"token_url {token_url!r} must use https (RFC 6749 §3.2): tokens would travel "
                              "in clear", connector=connector)
        if parts.username or parts.password or parts.query:
            raise ConfigError("token_url must carry neither credentials nor a query", connector=connector)
        if grant not in GRANTS:
            raise ConfigError(f"grant {grant!r} is not one of {', '.join(GRANTS)}", connector=connector)
        if grant == "client_credentials" and client_secret is None:
            raise ConfigError("the client_credentials grant needs a client secret", connector=connector)
        if grant == "refresh_token" and refresh_token is None:
            raise ConfigError("the refresh_token grant needs a refresh token", connector=connector)
        if client_auth not in CLIENT_AUTH:
            raise ConfigError(f"client_auth {client_auth!r} is not one of {', '.join(CLIENT_AUTH)}",
                              connector=connector)
        self.token_url = token_url
        self.client_id = client_id
        self.grant = grant
        self.scope = scope
        self.client_auth = client_auth
        self.leeway = leeway
        self.timeout = timeout
        self.verify_tls = verify_tls
        self.connector = connector
        self.on_refresh_token = on_refresh_token
        self._client_secret = client_secret
        self._refresh_token = refresh_token
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Secret | None = None
        self._refresh_at = 0.0
        self._session = requests.Session()
        self._session.trust_env = False  # no ~/.netrc credentials nor proxies picked up behind our back
        self.fetches = 0  # token endpoint calls that gave a token (for checks and metrics)

    # -- Auth ------------------------------------------------------------------------------------
    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.token().reveal()}"}

    def describe(self) -> str:
        return f"oauth2 {self.grant} as {self.client_id!r} at {_safe(self.token_url)}"

    def __repr__(self) -> str:
        return f"OAuth2({self.client_id!r}, grant={self.grant!r}, token_url={_safe(self.token_url)!r})"

    # -- tokens ----------------------------------------------------------------------------------
    def token(self) -> Secret:
        """A valid access token: the one held, or a new one when it is missing or about to expire."""
        with self._lock:
            if self._token is None or self._clock() >= self._refresh_at:
                self._fetch()
            assert self._token is not None
            return self._token

    def invalidate(self, authorization: str | None = None) -> bool:
        """Forget the token the API refused (its ``Authorization`` header value), unless another
        thread has already replaced it. True when the next request will carry a new token."""
        with self._lock:
            if self._token is None:
                return True
            if authorization is not None and authorization != f"Bearer {self._token.reveal()}":
                return True  # already replaced
            self._token = None
            return True

    def close(self) -> None:
        self._session.close()

    def _error(self, kind: type[ConnectorError], message: str) -> ConnectorError:
        return kind(message, connector=self.connector, url=_safe(self.token_url))

    def _fetch(self) -> None:
        form: dict[str, str] = {"grant_type": self.grant}
        if self.grant == "refresh_token":
            assert self._refresh_token is not None
            form["refresh_token"] = self._refresh_token.reveal()
        if self.scope:
            form["scope"] = self.scope
        auth: tuple[str, str] | None = None
        if self._client_secret is not None and self.client_auth == "basic":
            # RFC 6749 §2.3.1: both form-urlencoded before going into the Basic header
            auth = (urllib.parse.quote(self.client_id, safe=""),
                    urllib.parse.quote(self._client_secret.reveal(), safe=""))
        else:
            form["client_id"] = self.client_id
            if self._client_secret is not None:
                form["client_secret"] = self._client_secret.reveal()
        started = self._clock()
        try:
            resp = self._session.post(self.token_url, data=form, auth=auth, timeout=self.timeout,
                                      verify=self.verify_tls, headers={"Accept": "application/json"},
                                      allow_redirects=False)
        except requests.exceptions.Timeout:
            raise self._error(TransientError, f"token request got no answer within {self.timeout:g} s") from None
        except requests.exceptions.RequestException as exc:
            raise self._error(TransientError, f"token request failed: {type(exc).__name__}") from None
        body = _json(resp)
        if resp.status_code >= 500 or resp.status_code == 429:
            raise self._error(TransientError, f"token endpoint answered HTTP {resp.status_code}")
        if resp.status_code != 200:
            code = body.get("error") if isinstance(body.get("error"), str) else None
            detail = body.get("error_description") if isinstance(body.get("error_description"), str) else None
            said = f" {code!r}" + (f" ({detail[:200]})" if detail else "") if code else ""
            raise self._error(AuthError, f"token endpoint refused client {self.client_id!r} ({self.grant}): "
                            f"HTTP {resp.status_code}{said}")
        token, kind = body.get("access_token"), body.get("token_type")
        if not isinstance(token, str) or not token:
            raise self._error(BadResponse, "token endpoint answered 200 without an access_token")
        if not isinstance(kind, str) or kind.lower() != "bearer":
            raise self._error(BadResponse, f"token endpoint gave a token of type {kind!r}, not Bearer")
        lifetime = body.get("expires_in")
        if lifetime is not None and (isinstance(lifetime, bool) or not isinstance(lifetime, int | float)
                                     or lifetime <= 0):
            raise self._error(BadResponse, f"token endpoint gave expires_in {lifetime!r}, not a positive number")
        self._token = Secret(token)
        # Without expires_in the token is used until the API refuses it (then once more a new one).
        margin = 0.0 if lifetime is None else min(self.leeway, float(lifetime) / 10)
        self._refresh_at = float("inf") if lifetime is None else started + float(lifetime) - margin
        self.fetches += 1
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and self.grant == "refresh_token":
            new = Secret(rotated)
            if new != self._refresh_token:
                self._refresh_token = new
                if self.on_refresh_token is not None:
                    self.on_refresh_token(new)
        log.info("%s: got an OAuth 2.0 access token for %r from %s, %s", self.connector, self.client_id,
                 _safe(self.token_url), "no expiry given" if lifetime is None else f"expires in {lifetime} s")


def _json(resp: requests.Response) -> dict[str, Any]:
    try:
        body = resp.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def _safe(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc.rpartition("@")[2], parts.path, "", ""))
