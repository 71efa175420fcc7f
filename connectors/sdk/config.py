"""A connector's configuration: where the peer is, how to log in, how hard to push it.

Given as a mapping (from a YAML/JSON file or the command line)::

    url: https://ent-a.example/dav/          # no credentials in URLs; omitted by file-based connectors
    auth: {type: basic, username: relais, password_env: ENT_A_PASSWORD}
    # or {type: bearer, token_env: ENT_A_TOKEN}, or {type: none}
    timeout: 60            # seconds to wait for an answer (read timeout)
    connect_timeout: 10
    retries: {attempts: 5, base_delay: 0.25, max_delay: 8, deadline: 120}
    rate_limit: 20         # requests per second for the whole connector; omit for none
    burst: 20
    workers: 8             # concurrent downloads of an export
    verify_tls: true       # or the path of a CA bundle
    options: {}            # what the connector itself reads (see its docstring)

Secrets are read from the environment variables the configuration names, never from the
file itself: a literal ``password`` or ``token`` is refused with a message saying so.
"""
from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .auth import Auth, BasicAuth, BearerToken, Secret
from .errors import ConfigError
from .http import HttpClient
from .oauth import OAuth2
from .ratelimit import RateLimiter
from .retry import RetryPolicy

_KEYS = {"url", "auth", "timeout", "connect_timeout", "retries", "rate_limit", "burst", "workers",
         "verify_tls", "options"}
_RETRY_KEYS = {"attempts", "base_delay", "max_delay", "deadline"}


@dataclass(frozen=True)
class ConnectorConfig:
    url: str | None = None
    auth: Auth | None = None
    timeout: float = 60.0
    connect_timeout: float = 10.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    rate_limit: float | None = None
    burst: int | None = None
    workers: int = 8
    verify_tls: bool | str = True
    options: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.url is not None:
            parts = urllib.parse.urlsplit(self.url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(f"url {self.url!r} must be an http(s) URL with a host")
            if parts.username or parts.password:
                raise ConfigError("url must not carry credentials; use auth with password_env or token_env")
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1, got {self.workers}")

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], *, environ: Mapping[str, str] | None = None,
                     where: str = "connector configuration") -> ConnectorConfig:
        """Build from a mapping, reading secrets from ``environ`` (default ``os.environ``)."""
        env = os.environ if environ is None else environ
        if not isinstance(data, Mapping):
            raise ConfigError(f"{where} must be a mapping, got {type(data).__name__}")
        unknown = sorted(set(data) - _KEYS)
        if unknown:
            raise ConfigError(f"{where}: unknown key(s) {', '.join(unknown)}; expected {', '.join(sorted(_KEYS))}")
        retries = data.get("retries") or {}
        if not isinstance(retries, Mapping):
            raise ConfigError(f"{where}: retries must be a mapping of {', '.join(sorted(_RETRY_KEYS))}, "
                              f"not {type(retries).__name__}")
        bad = sorted(set(retries) - _RETRY_KEYS)
        if bad:
            raise ConfigError(f"{where}: unknown retries key(s) {', '.join(bad)}")
        try:
            return cls(
                url=None if data.get("url") is None else str(data["url"]), auth=_auth(data.get("auth"), env, where),
                timeout=float(data.get("timeout", 60.0)), connect_timeout=float(data.get("connect_timeout", 10.0)),
                retry=_retry_policy(retries),
                rate_limit=None if data.get("rate_limit") is None else float(data["rate_limit"]),
                burst=None if data.get("burst") is None else int(data["burst"]),
                workers=int(data.get("workers", 8)), verify_tls=data.get("verify_tls", True),
                options=dict(data.get("options") or {}))
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{where}: {exc}") from None

    @classmethod
    def from_file(cls, path: Path, *, environ: Mapping[str, str] | None = None) -> ConnectorConfig:
        """Read a YAML (or JSON) file holding one connector's configuration."""
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read connector configuration {path}: {exc.strerror}") from None
        try:
            data = json.loads(text) if str(path).endswith(".json") else yaml.safe_load(text)
        except (ValueError, yaml.YAMLError) as exc:
            raise ConfigError(f"{path}: not valid {'JSON' if str(path).endswith('.json') else 'YAML'}: {exc}") from None
        return cls.from_mapping(data or {}, environ=environ, where=str(path))

    def require_url(self, connector: str) -> str:
        """The URL, for connectors that talk to a server (a file-based one has none)."""
        if not self.url:
            raise ConfigError("url is required (the server's base URL)", connector=connector)
        return self.url

    def http_client(self, connector: str, *, pool_size: int | None = None) -> HttpClient:
        limiter = RateLimiter(self.rate_limit, self.burst) if self.rate_limit else None
        return HttpClient(connector, auth=self.auth, timeout=self.timeout, connect_timeout=self.connect_timeout,
                          retry=self.retry, rate_limit=limiter, pool_size=pool_size or max(4, self.workers * 2),
                          verify_tls=self.verify_tls)

    def describe(self) -> dict[str, Any]:
        """Safe to print or log (``relais config``-style): no secret, no variable's value."""
        return {"url": self.url, "auth": self.auth.describe() if self.auth else "none", "timeout": self.timeout,
                "connect_timeout": self.connect_timeout, "retries": self.retry.attempts,
                "rate_limit": self.rate_limit, "workers": self.workers, "options": dict(self.options)}


def _retry_policy(retries: Mapping[str, Any]) -> RetryPolicy:
    """The ``retries`` section: ``attempts`` a whole number, the delays and ``deadline`` seconds (or null)."""
    numbers: dict[str, Any] = {k: (int(v) if k == "attempts" else (None if v is None else float(v)))
                               for k, v in retries.items()}
    return RetryPolicy(**numbers)


def _secret(env: Mapping[str, str], spec: Mapping[str, Any], key: str, where: str) -> Secret:
    name = spec.get(key)
    if not name:
        raise ConfigError(f"{where}: auth.{key} is required (the name of the environment variable holding it)")
    value = env.get(str(name))
    if not value:
        raise ConfigError(f"{where}: environment variable {name} (named by auth.{key}) is not set or empty")
    return Secret(value)


def _auth(spec: Any, env: Mapping[str, str], where: str) -> Auth | None:
    if spec is None:
        return None
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: auth must be a mapping with a type")
    for literal in ("password", "token", "secret", "client_secret", "refresh_token"):
        if literal in spec:
            raise ConfigError(f"{where}: auth.{literal} must not be written in the configuration; "
                              f"put it in an environment variable and name it with auth.{literal}_env")
    kind = spec.get("type", "none")
    allowed = {"basic": {"type", "username", "username_env", "password_env"},
               "bearer": {"type", "token_env"}, "none": {"type"},
               "oauth2": {"type", "token_url", "client_id", "client_id_env", "client_secret_env", "grant",
                          "refresh_token_env", "scope", "client_auth", "leeway"}}
    if kind not in allowed:
        raise ConfigError(f"{where}: auth.type {kind!r} is not one of basic, bearer, oauth2, none")
    unknown = sorted(set(spec) - allowed[kind])
    if unknown:
        raise ConfigError(f"{where}: auth key(s) {', '.join(unknown)} do not apply to type {kind}")
    if kind == "none":
        return None
    if kind == "bearer":
        return BearerToken(_secret(env, spec, "token_env", where))
    if kind == "oauth2":
        return _oauth2(spec, env, where)
    username = spec.get("username")
    if username is None and spec.get("username_env"):
        username = env.get(str(spec["username_env"]))
        if not username:
            raise ConfigError(f"{where}: environment variable {spec['username_env']} (named by auth.username_env) "
                              "is not set or empty")
    if not username:
        raise ConfigError(f"{where}: auth type basic needs username or username_env")
    return BasicAuth(str(username), _secret(env, spec, "password_env", where))


def _oauth2(spec: Mapping[str, Any], env: Mapping[str, str], where: str) -> OAuth2:
    """``auth: {type: oauth2, token_url, client_id (or client_id_env), client_secret_env, grant,
    refresh_token_env, scope, client_auth, leeway}``: secrets from the environment only."""
    grant = str(spec.get("grant", "client_credentials"))
    if not spec.get("token_url"):
        raise ConfigError(f"{where}: auth type oauth2 needs token_url (the token endpoint)")
    client_id = spec.get("client_id")
    if client_id is None and spec.get("client_id_env"):
        client_id = env.get(str(spec["client_id_env"]))
        if not client_id:
            raise ConfigError(f"{where}: environment variable {spec['client_id_env']} (named by auth.client_id_env) "
                              "is not set or empty")
    if not client_id:
        raise ConfigError(f"{where}: auth type oauth2 needs client_id or client_id_env")
    secret = _secret(env, spec, "client_secret_env", where) if (
        grant == "client_credentials" or spec.get("client_secret_env")) else None
    refresh = _secret(env, spec, "refresh_token_env", where) if grant == "refresh_token" else None
    try:
        return OAuth2(str(spec["token_url"]), str(client_id), client_secret=secret, grant=grant, refresh_token=refresh,
                      scope=None if spec.get("scope") is None else str(spec["scope"]),
                      client_auth=str(spec.get("client_auth", "basic")), leeway=float(spec.get("leeway", 60.0)))
    except ConfigError as exc:
        raise ConfigError(f"{where}: auth: {exc.reason}") from None
