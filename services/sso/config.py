"""The SSO configuration: a YAML or JSON document, validated all at once.

```yaml
base_url: https://ent.example.org          # where this service is reachable (CAS and SAML URLs derive from it)
secret_env: RELAIS_SSO_SECRET              # environment variable holding the deployment secret (never the value)
lifetimes:                                 # seconds
  session_idle: 7200                       # a session unused this long ends
  session_max: 28800                       # a session ends this long after login, used or not
  service_ticket: 10                       # ST and PT
  proxy_granting_ticket: 7200
cookie:
  name: relais_sso
  secure: true                             # false only for local http tests
  domain: null
allow_http_callbacks: false                # pgtUrl / logout callbacks over plain http (test/dev only)
services:                                  # the CAS service registry (rules/service_registry.py)
  - id: pronote
    url: https://pronote.example.org/cas/  # exact URL, or `prefix:` or `pattern:` (anchored regex)
    attributes: [uid, ENTPersonProfils]    # released on /p3/serviceValidate; default: none beyond the user
    proxy: false                           # may this service obtain proxy tickets (pgtUrl)?
    logout: true                           # receive back-channel logout requests
saml: {...}                                # the SAML SP towards national IdPs (sp/config.py)
idp: {...}                                 # the SAML IdP towards resource platforms (idp/config.py)
oidc: {...}                                # the OpenID Connect provider towards apps (oidc/config.py)
```

`load_config(path)` reads it; `parse_config(document, where)` checks a mapping.
Every problem is collected and reported together (`ConfigError.problems`), each
naming where it is; nothing partial is ever returned.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .rules.service_registry import RegistryError, ServiceEntry, check_entry


class ConfigError(ValueError):
    """The SSO configuration is unusable; `problems` lists every reason, each with where it is."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid SSO configuration:\n  " + "\n  ".join(problems))


@dataclass(frozen=True)
class Lifetimes:
    """How long sessions and tickets live, in seconds."""

    session_idle: int = 7200
    session_max: int = 8 * 3600
    service_ticket: int = 10
    proxy_granting_ticket: int = 7200


@dataclass(frozen=True)
class CookieSettings:
    name: str = "relais_sso"
    secure: bool = True
    domain: str | None = None


@dataclass(frozen=True)
class SsoConfig:
    base_url: str
    services: tuple[ServiceEntry, ...] = ()
    lifetimes: Lifetimes = field(default_factory=Lifetimes)
    cookie: CookieSettings = field(default_factory=CookieSettings)
    secret_env: str = "RELAIS_SSO_SECRET"
    allow_http_callbacks: bool = False
    saml: dict[str, Any] = field(default_factory=dict)  # the SAML SP's section, checked by sp/config.py
    idp: dict[str, Any] = field(default_factory=dict)  # the SAML IdP's section, checked by idp/config.py
    oidc: dict[str, Any] = field(default_factory=dict)  # the OpenID Connect provider's, checked by oidc/config.py

    def secret(self, env: dict[str, str] | None = None) -> bytes:
        """The deployment secret, read from the environment variable the configuration names."""
        value = (os.environ if env is None else env).get(self.secret_env)
        if not value or len(value) < 32:
            problem = (f"environment variable {self.secret_env}: must hold the deployment secret "
                       "(at least 32 characters)")
            raise ConfigError([problem])
        return value.encode()


_TOP = {"base_url", "secret_env", "lifetimes", "cookie", "allow_http_callbacks", "services", "saml", "idp",
        "oidc"}


def load_config(path: str | Path) -> SsoConfig:
    """Read and check an SSO configuration file (.yaml, .yml or .json)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{path}: cannot read: {exc}"]) from None
    try:
        document = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise ConfigError([f"{path}: not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {exc}"]) from None
    return parse_config(document, str(path))


def parse_config(document: Any, where: str = "configuration") -> SsoConfig:
    problems: list[str] = []
    if not isinstance(document, dict):
        raise ConfigError([f"{where}: the document must be a mapping"])
    for key in sorted(set(document) - _TOP):
        problems.append(f"{where}: unknown key {key!r} (known: {', '.join(sorted(_TOP))})")
    base_url = document.get("base_url")
    if not isinstance(base_url, str) or not base_url.startswith(("https://", "http://")):
        problems.append(f"{where}: base_url: an http(s) URL is required")
        base_url = ""
    lifetimes = _section(document, "lifetimes", Lifetimes, where, problems, _positive_int)
    cookie = _section(document, "cookie", CookieSettings, where, problems, None)
    secret_env = document.get("secret_env", "RELAIS_SSO_SECRET")
    if not isinstance(secret_env, str) or not secret_env.replace("_", "").isalnum():
        problems.append(f"{where}: secret_env: the name of an environment variable is required")
    allow_http = document.get("allow_http_callbacks", False)
    if not isinstance(allow_http, bool):
        problems.append(f"{where}: allow_http_callbacks: true or false")
    saml = document.get("saml") or {}
    if not isinstance(saml, dict):
        problems.append(f"{where}: saml: must be a mapping")
    idp = document.get("idp") or {}
    if not isinstance(idp, dict):
        problems.append(f"{where}: idp: must be a mapping")
    oidc = document.get("oidc") or {}
    if not isinstance(oidc, dict):
        problems.append(f"{where}: oidc: must be a mapping")
    services = _services(document.get("services") or [], where, problems)
    if problems:
        raise ConfigError(problems)
    return SsoConfig(base_url=base_url.rstrip("/"), services=services, lifetimes=lifetimes, cookie=cookie,
                     secret_env=secret_env, allow_http_callbacks=allow_http, saml=saml, idp=idp,
                     oidc=oidc)


def _positive_int(value: Any) -> str | None:
    return None if isinstance(value, int) and not isinstance(value, bool) and value > 0 else "a positive integer"


_COOKIE_TYPES: dict[str, type | tuple[type, ...]] = {"name": str, "secure": bool, "domain": (str, type(None))}


def _section(document: dict, name: str, cls: type[Any], where: str, problems: list[str],
             check: Callable[[Any], str | None] | None) -> Any:
    raw = document.get(name) or {}
    if not isinstance(raw, dict):
        problems.append(f"{where}: {name}: must be a mapping")
        return cls()
    known = set(cls.__dataclass_fields__)
    values = {}
    for key, value in raw.items():
        if key not in known:
            problems.append(f"{where}: {name}.{key}: unknown (known: {', '.join(sorted(known))})")
            continue
        default = cls.__dataclass_fields__[key].default
        if check is None:  # the cookie section: each key has its type
            expected = _COOKIE_TYPES[key]
            message = None if isinstance(value, expected) and value != "" else f"must be {expected}"
        else:
            message = check(value)
        if message:
            problems.append(f"{where}: {name}.{key}: {message}, got {value!r} (default {default!r})")
        else:
            values[key] = value
    return cls(**values)


_ATTRIBUTE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,127}")
_SERVICE_KEYS = {"id", "url", "prefix", "pattern", "attributes", "proxy", "logout"}


def _services(raw: Any, where: str, problems: list[str]) -> tuple[ServiceEntry, ...]:
    if not isinstance(raw, list):
        problems.append(f"{where}: services: must be a list")
        return ()
    out: list[ServiceEntry] = []
    seen: set[str] = set()
    for i, item in enumerate(raw):
        at = f"{where}: services[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{at}: must be a mapping")
            continue
        at = f"{at} ({item.get('id', '?')})"
        for key in sorted(set(item) - _SERVICE_KEYS):
            problems.append(f"{at}: unknown key {key!r}")
        sid = item.get("id")
        if not isinstance(sid, str) or not sid:
            problems.append(f"{at}: id: a non-empty string is required")
            continue
        if sid in seen:
            problems.append(f"{at}: id: duplicate")
        seen.add(sid)
        kinds = [k for k in ("url", "prefix", "pattern") if k in item]
        if len(kinds) != 1:
            problems.append(f"{at}: exactly one of url, prefix, pattern is required")
            continue
        attrs = item.get("attributes", [])
        if not isinstance(attrs, list) or not all(isinstance(a, str) and _ATTRIBUTE_NAME.fullmatch(a)
                                                  for a in attrs):
            # names become XML element names in CAS 3 responses
            problems.append(f"{at}: attributes: a list of attribute names (letters, digits, _ . -) is required, "
                            f"got {attrs!r}")
            attrs = []
        flags = {}
        for flag, default in (("proxy", False), ("logout", True)):
            flags[flag] = item.get(flag, default)
            if not isinstance(flags[flag], bool):
                problems.append(f"{at}: {flag}: true or false")
        entry = ServiceEntry(id=sid, match={"url": "exact"}.get(kinds[0], kinds[0]), value=item[kinds[0]],
                             attributes=tuple(attrs), proxy=bool(flags["proxy"]), logout=bool(flags["logout"]))
        try:
            check_entry(entry)
        except RegistryError as exc:
            problems.append(f"{at}: {exc}")
            continue
        out.append(entry)
    return tuple(out)
