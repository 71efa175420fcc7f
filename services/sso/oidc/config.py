"""The `oidc:` section: our OpenID Connect provider, its signing keys and its registered clients.

```yaml
oidc:
  issuer: https://ent.example.org/oidc     # default: {base_url}/oidc; never change it once clients use it
  keys:                                    # PEM private keys, unencrypted, readable only by the service
    - {id: oidc-2026, key_file: /etc/relais/oidc-2026.key}   # RSA >= 2048 bits (RS256) or EC P-256 (ES256)
  signing_key: oidc-2026                   # default: the first key; the others are published only
  lifetimes: {code: 60, access_token: 600, id_token: 600, refresh_token: 28800}   # seconds
  clients:
    - id: moodle                           # the client_id
      secret_env: RELAIS_OIDC_MOODLE       # a confidential client's secret (>= 32 characters); absent: public
      redirect_uris: [https://moodle.example.org/auth/oidc/]       # exact match
      post_logout_redirect_uris: [https://moodle.example.org/]     # exact match; default: none
      scopes: [openid, profile, email, offline_access]             # default: [openid]
      claims: [given_name, family_name, ENTPersonProfils]          # default: none beyond sub
      sector: moodle.example.org           # pairwise subjects' sector; default: the redirect URIs' host
      backchannel_logout_uri: https://moodle.example.org/auth/oidc/logout   # default: none
```

`parse_oidc(section, where=..., base_url=..., env=...)` checks the whole section and raises `ConfigError` listing
every problem with where it is; `None` for an absent section (no provider).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from joserfc.errors import JoseError
from joserfc.jwk import ECKey, RSAKey

from ..config import ConfigError
from ..rules.oidc import RELEASABLE, SCOPES, default_sector, redirect_uri_problem

_TOP = {"issuer", "keys", "signing_key", "lifetimes", "clients"}
_CLIENT = {"id", "secret_env", "redirect_uris", "post_logout_redirect_uris", "scopes", "claims", "sector",
           "backchannel_logout_uri"}
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass(frozen=True)
class OidcLifetimes:
    """Seconds each thing lives."""

    code: int = 60
    access_token: int = 600
    id_token: int = 600
    refresh_token: int = 8 * 3600


_LIMITS = {"code": (10, 600), "access_token": (60, 86400), "id_token": (60, 86400), "refresh_token": (60, 90 * 86400)}


@dataclass(frozen=True)
class SigningKey:
    id: str
    key: RSAKey | ECKey
    alg: str  # RS256 | ES256


@dataclass(frozen=True)
class OidcClient:
    id: str
    redirect_uris: tuple[str, ...]
    sector: str
    secret_sha256: bytes | None = None  # None: a public client (no secret, PKCE S256 required)
    post_logout_redirect_uris: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ("openid",)
    claims: tuple[str, ...] = ()
    backchannel_logout_uri: str | None = None

    @property
    def public(self) -> bool:
        return self.secret_sha256 is None

    def secret_matches(self, secret: str | None) -> bool:
        """Constant-time check of a presented client secret."""
        if self.secret_sha256 is None or not secret:
            return False
        return hmac.compare_digest(hashlib.sha256(secret.encode()).digest(), self.secret_sha256)


@dataclass(frozen=True)
class OidcSettings:
    issuer: str
    keys: tuple[SigningKey, ...]
    signing_key: SigningKey
    clients: dict[str, OidcClient] = field(default_factory=dict)
    lifetimes: OidcLifetimes = field(default_factory=OidcLifetimes)


def parse_oidc(section: dict[str, Any] | None, *, where: str, base_url: str,
               env: dict[str, str] | None = None) -> OidcSettings | None:
    """Check the `oidc:` section as a whole; None when there is none."""
    if not section:
        return None
    env = dict(os.environ) if env is None else env
    at = f"{where}: oidc"
    problems: list[str] = [f"{at}: unknown key {k!r} (known: {', '.join(sorted(_TOP))})"
                           for k in sorted(set(section) - _TOP)]
    issuer = section.get("issuer", f"{base_url}/oidc")
    if not isinstance(issuer, str) or redirect_uri_problem(issuer) or "?" in issuer or issuer.endswith("/"):
        problems.append(f"{at}.issuer: an https URL without query, fragment or trailing slash is required")
    keys = _keys(section.get("keys"), at, problems)
    signing = _signing_key(section.get("signing_key"), keys, at, problems)
    lifetimes = _lifetimes(section.get("lifetimes") or {}, at, problems)
    clients = _clients(section.get("clients"), at, env, problems)
    if problems or signing is None:
        raise ConfigError(problems or [f"{at}.keys: at least one signing key is required"])
    return OidcSettings(issuer=str(issuer), keys=keys, signing_key=signing, clients=clients, lifetimes=lifetimes)


def load_key(path: str) -> SigningKey:
    """A PEM private key file as a signing key (`id` left empty); ValueError saying why not."""
    try:
        pem = Path(path).read_bytes()
    except OSError as exc:
        raise ValueError(f"cannot read: {exc.strerror or exc}") from None
    for cls, alg in ((RSAKey, "RS256"), (ECKey, "ES256")):
        try:
            key = cls.import_key(pem)
        except (JoseError, ValueError, TypeError):
            continue
        if not key.is_private:
            raise ValueError("a private key is required (PEM)")
        if isinstance(key, RSAKey) and key.raw_value.key_size < 2048:
            raise ValueError("an RSA key of at least 2048 bits is required")
        if isinstance(key, ECKey) and key.curve_name != "P-256":
            raise ValueError(f"an EC key must be on P-256 for ES256, not {key.curve_name}")
        return SigningKey("", key, alg)
    raise ValueError("not a PEM RSA or EC private key")


def _keys(raw: Any, at: str, problems: list[str]) -> tuple[SigningKey, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{at}.keys: a list of {{id, key_file}} is required")
        return ()
    out: list[SigningKey] = []
    for i, item in enumerate(raw):
        here = f"{at}.keys[{i}]"
        if not isinstance(item, dict) or set(item) != {"id", "key_file"}:
            problems.append(f"{here}: a mapping with exactly id and key_file is required")
            continue
        kid, key_file = item["id"], item["key_file"]
        if not isinstance(kid, str) or not _ID.fullmatch(kid) or any(k.id == kid for k in out):
            problems.append(f"{here}: id: a unique name (letters, digits, _ . -) is required")
            continue
        try:
            key = load_key(str(key_file))
        except ValueError as exc:
            problems.append(f"{here} ({kid}): key_file {key_file}: {exc}")
            continue
        out.append(SigningKey(kid, key.key, key.alg))
    return tuple(out)


def _signing_key(raw: Any, keys: tuple[SigningKey, ...], at: str, problems: list[str]) -> SigningKey | None:
    if raw is None:
        return keys[0] if keys else None
    found = [k for k in keys if k.id == raw]
    if not found:
        problems.append(f"{at}.signing_key: {raw!r} is not one of the keys ({', '.join(k.id for k in keys)})")
        return None
    return found[0]


def _lifetimes(raw: Any, at: str, problems: list[str]) -> OidcLifetimes:
    if not isinstance(raw, dict):
        problems.append(f"{at}.lifetimes: must be a mapping")
        return OidcLifetimes()
    values: dict[str, int] = {}
    for key, value in raw.items():
        if key not in _LIMITS:
            problems.append(f"{at}.lifetimes.{key}: unknown (known: {', '.join(_LIMITS)})")
            continue
        low, high = _LIMITS[key]
        if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
            problems.append(f"{at}.lifetimes.{key}: seconds from {low} to {high}, got {value!r}")
            continue
        values[key] = value
    return OidcLifetimes(**values)


def _uris(item: dict[str, Any], key: str, here: str, problems: list[str], *, required: bool) -> tuple[str, ...]:
    raw = item.get(key, [])
    if not isinstance(raw, list) or not all(isinstance(u, str) for u in raw) or (required and not raw):
        problems.append(f"{here}: {key}: a {'non-empty ' if required else ''}list of URLs is required")
        return ()
    for uri in raw:
        problem = redirect_uri_problem(uri)
        if problem:
            problems.append(f"{here}: {key}: {uri!r}: {problem}")
    return tuple(raw)


def _names(item: dict[str, Any], key: str, known: tuple[str, ...], default: tuple[str, ...], here: str,
           problems: list[str]) -> tuple[str, ...]:
    raw = item.get(key, list(default))
    if not isinstance(raw, list) or not all(isinstance(n, str) for n in raw):
        problems.append(f"{here}: {key}: a list of names is required")
        return default
    unknown = [n for n in raw if n not in known]
    if unknown:
        problems.append(f"{here}: {key}: unknown {', '.join(unknown)} (known: {', '.join(known)})")
    return tuple(dict.fromkeys(n for n in raw if n in known))


def _clients(raw: Any, at: str, env: dict[str, str], problems: list[str]) -> dict[str, OidcClient]:
    if raw is None:
        return {}
    if not isinstance(raw, list):
        problems.append(f"{at}.clients: must be a list")
        return {}
    out: dict[str, OidcClient] = {}
    for i, item in enumerate(raw):
        here = f"{at}.clients[{i}]"
        if not isinstance(item, dict):
            problems.append(f"{here}: must be a mapping")
            continue
        cid = item.get("id")
        here = f"{here} ({cid})"
        problems.extend(f"{here}: unknown key {k!r}" for k in sorted(set(item) - _CLIENT))
        if not isinstance(cid, str) or not _ID.fullmatch(cid) or cid in out:
            problems.append(f"{here}: id: a unique name (letters, digits, _ . -) is required")
            continue
        redirect_uris = _uris(item, "redirect_uris", here, problems, required=True)
        post_logout = _uris(item, "post_logout_redirect_uris", here, problems, required=False)
        backchannel = item.get("backchannel_logout_uri")
        if backchannel is not None and (not isinstance(backchannel, str) or redirect_uri_problem(backchannel)):
            problems.append(f"{here}: backchannel_logout_uri: an https URL without fragment is required")
        scopes = _names(item, "scopes", SCOPES, ("openid",), here, problems)
        if "openid" not in scopes:
            problems.append(f"{here}: scopes: openid is required")
        claims = _names(item, "claims", RELEASABLE, (), here, problems)
        sector = item.get("sector", default_sector(redirect_uris))
        if not isinstance(sector, str) or not sector or "\0" in sector:
            problems.append(f"{here}: sector: required when the redirect URIs have several hosts "
                            "(the pairwise subjects' sector; keep it forever)")
            sector = ""
        secret = _secret(item.get("secret_env"), here, env, problems)
        out[cid] = OidcClient(id=cid, redirect_uris=redirect_uris, sector=sector, secret_sha256=secret,
                              post_logout_redirect_uris=post_logout, scopes=scopes, claims=claims,
                              backchannel_logout_uri=backchannel if isinstance(backchannel, str) else None)
    return out


def _secret(name: Any, here: str, env: dict[str, str], problems: list[str]) -> bytes | None:
    if name is None:
        return None
    if not isinstance(name, str) or not name.replace("_", "").isalnum():
        problems.append(f"{here}: secret_env: the name of an environment variable is required")
        return None
    value = env.get(name)
    if not value or len(value) < 32:
        problems.append(f"{here}: secret_env: environment variable {name} must hold the client's secret "
                        "(at least 32 characters)")
        return None
    return hashlib.sha256(value.encode()).digest()
