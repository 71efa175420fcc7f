"""The console's settings, from the environment; a bad value is refused by name.

| variable | default | what |
|---|---|---|
| `RELAIS_CONSOLE_URL` | `http://127.0.0.1:8440` | the console's public address (its CAS service URL too) |
| `RELAIS_CONSOLE_CAS_URL` | `http://127.0.0.1:8430/cas` | Relais's SSO's CAS base (login, p3/serviceValidate) |
| `RELAIS_CONSOLE_CAS_VALIDATE_URL` | the CAS URL | where the console itself validates tickets (`http://sso:8430/cas`) |
| `RELAIS_CONSOLE_SECRET` | none (required) | ≥ 32 characters: seals session cookies and URL references |
| `RELAIS_CONSOLE_ADMINS` | none | comma-separated user ids (the CAS user: a jointure) who are administrators |
| `RELAIS_CONSOLE_DPOS` | none | user ids of data-protection officers |
| `RELAIS_CONSOLE_COLLECTIVITE` | none | user ids of the collectivité's staff (read-only) |
| `RELAIS_CONSOLE_MANAGER_FUNCTIONS` | `DIR` | function codes making a resource manager where held |
| `RELAIS_CONSOLE_MANAGER_PROFILES` | `National_DIR` | profiles making a resource manager of one's schools |
| `RELAIS_CONSOLE_SESSION_MINUTES` | `30` | a session unused this long ends (idle expiry) |
| `RELAIS_CONSOLE_SESSION_MAX_HOURS` | `8` | a session ends this long after sign-in, used or not |
| `RELAIS_CONSOLE_COOKIE_SECURE` | `true` | `false` only for local plain-http tests: cookies are then sent without TLS |
| `RELAIS_CONSOLE_TIMEOUT_S` | `10` | seconds to wait for the SSO's ticket validation |
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from .rules.roles import RolePolicy

DEFAULT_URL = "http://127.0.0.1:8440"
DEFAULT_CAS_URL = "http://127.0.0.1:8430/cas"
MIN_SECRET = 32


class ConsoleConfigError(ValueError):
    """A setting that cannot be used; the message names the variable and what is wrong with it."""


@dataclass(frozen=True)
class ConsoleSettings:
    url: str
    cas_url: str  # where browsers are sent to sign in and out
    secret: bytes
    policy: RolePolicy
    idle_s: int = 30 * 60
    max_s: int = 8 * 3600
    cookie_secure: bool = True
    timeout_s: float = 10.0
    validate_url: str = ""  # where the console validates tickets, server to server (default: cas_url)

    @property
    def cas_validate_url(self) -> str:
        return self.validate_url or self.cas_url

    @property
    def service_url(self) -> str:
        """The console's CAS service URL (registered in the SSO's `services:`), without its state."""
        return f"{self.url}/callback/"

    @property
    def cas_origin(self) -> str:
        parts = urlsplit(self.cas_url)
        return f"{parts.scheme}://{parts.netloc}"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ConsoleSettings:
        env = os.environ if env is None else env
        url = _url(env, "RELAIS_CONSOLE_URL", DEFAULT_URL)
        cas_url = _url(env, "RELAIS_CONSOLE_CAS_URL", DEFAULT_CAS_URL)
        validate_url = _url(env, "RELAIS_CONSOLE_CAS_VALIDATE_URL", cas_url)
        secret = env.get("RELAIS_CONSOLE_SECRET") or ""
        if len(secret) < MIN_SECRET:
            raise ConsoleConfigError(f"RELAIS_CONSOLE_SECRET must hold at least {MIN_SECRET} characters (it signs "
                                     "the console's session cookies); it holds " + str(len(secret)))
        policy = RolePolicy(
            administrators=_ids(env, "RELAIS_CONSOLE_ADMINS"), dpos=_ids(env, "RELAIS_CONSOLE_DPOS"),
            collectivite=_ids(env, "RELAIS_CONSOLE_COLLECTIVITE"),
            manager_functions=_ids(env, "RELAIS_CONSOLE_MANAGER_FUNCTIONS", "DIR"),
            manager_profiles=_ids(env, "RELAIS_CONSOLE_MANAGER_PROFILES", "National_DIR"))
        return cls(url=url, cas_url=cas_url, validate_url=validate_url, secret=secret.encode(), policy=policy,
                   idle_s=_int(env, "RELAIS_CONSOLE_SESSION_MINUTES", 30) * 60,
                   max_s=_int(env, "RELAIS_CONSOLE_SESSION_MAX_HOURS", 8) * 3600,
                   cookie_secure=_flag(env, "RELAIS_CONSOLE_COOKIE_SECURE", True),
                   timeout_s=float(_int(env, "RELAIS_CONSOLE_TIMEOUT_S", 10)))


def _url(env: Mapping[str, str], name: str, default: str) -> str:
    value = (env.get(name) or default).strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ConsoleConfigError(f"{name}={value!r} is not an http(s) URL without query (e.g. {default})")
    return value


def _ids(env: Mapping[str, str], name: str, default: str = "") -> frozenset[str]:
    return frozenset(v.strip() for v in (env.get(name) or default).split(",") if v.strip())


def _int(env: Mapping[str, str], name: str, default: int) -> int:
    text = (env.get(name) or "").strip()
    if not text:
        return default
    if not text.isdigit() or int(text) < 1:
        raise ConsoleConfigError(f"{name}={text!r} is not a whole number of at least 1")
    return int(text)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    text = (env.get(name) or "").strip().lower()
    if not text:
        return default
    if text not in ("true", "false", "1", "0", "yes", "no"):
        raise ConsoleConfigError(f"{name}={text!r}: true or false")
    return text in ("true", "1", "yes")
