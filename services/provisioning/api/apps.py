"""Apps that read rosters from provisioning (OneRoster, SCIM), and what each may see.

An app is an OAuth 2.0 client: an id, a secret (only its scrypt hash is
kept), the APIs it may call (`scopes`: `oneroster`, `scim`) and the resources
it serves. It sees the accounts holding a grant of one of its resources, in
the structures of those grants, and of each account only the attributes its
resources' catalogue entries list (data minimisation: the default is the
opaque id alone). An app with no resource sees nothing.

Apps are loaded all or nothing, like the catalogue and the rules, from an
`apps:` document; `relais provisioning app add` creates one with a generated
secret, printed once.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select

from ..adapters import tables as t
from ..adapters.queries import catalogue, store_config
from ..grants.catalogue import Resource
from ..grants.data_minimisation import attributes_for_app
from ..grants.documents import entries

SCOPES = ("oneroster", "scim")
TOKEN_LIFETIME = timedelta(hours=1)
_SCRYPT = {"n": 2**14, "r": 8, "p": 1}


class AppError(ValueError):
    """The apps document is not valid; nothing of it was applied."""

    def __init__(self, problems: list[str]):
        super().__init__("invalid apps: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class App:
    id: str  # the OAuth client_id
    secret_hash: str  # scrypt$<salt hex>$<hash hex>
    resources: frozenset[str] = frozenset()
    scopes: frozenset[str] = frozenset(SCOPES)
    name: str = ""

    def attributes(self, catalogue: Mapping[str, Resource]) -> frozenset[str]:
        """What this app may receive about an account: the union over its resources (`data_minimisation`)."""
        return attributes_for_app(catalogue[r].attributes for r in self.resources if r in catalogue)

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "secret_hash": self.secret_hash,
                "resources": sorted(self.resources), "scopes": sorted(self.scopes)}


def hash_secret(secret: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(secret.encode(), salt=salt, **_SCRYPT)
    return f"scrypt${salt.hex()}${digest.hex()}"


def check_secret(secret: str, stored: str) -> bool:
    try:
        kind, salt, digest = stored.split("$")
    except ValueError:
        return False
    if kind != "scrypt":
        return False
    got = hashlib.scrypt(secret.encode(), salt=bytes.fromhex(salt), **_SCRYPT)
    return hmac.compare_digest(got.hex(), digest)


def parse_apps(document: Mapping[str, Any], catalogue: Iterable[str]) -> list[App]:
    known = set(catalogue)
    problems: list[str] = []
    apps = []
    for where, entry in entries(document, "apps", "app", problems):
        bad = []
        if not isinstance(entry.get("id"), str) or not entry["id"].strip():
            bad.append("no id")
        stored = entry.get("secret_hash")
        if not isinstance(stored, str) or not stored.startswith("scrypt$") or stored.count("$") != 2:
            bad.append("no secret_hash (scrypt$salt$hash: use `relais provisioning app add` to make one)")
        for key in ("resources", "scopes"):
            if entry.get(key) is not None and not isinstance(entry[key], list):
                bad.append(f"{key} must be a list")
        if not bad:
            for r in sorted(set(entry.get("resources") or ()) - known):
                bad.append(f"resource {r!r} is not in the catalogue")
            for s in sorted(set(entry.get("scopes") or SCOPES) - set(SCOPES)):
                bad.append(f"scope {s!r} is not one of {', '.join(SCOPES)}")
        unknown = set(entry) - {"id", "name", "secret_hash", "resources", "scopes", "description"}
        if unknown:
            bad.append(f"unknown keys {sorted(unknown)}")
        if bad:
            problems.extend(f"{where}: {b}" for b in bad)
            continue
        apps.append(App(id=entry["id"], name=entry.get("name") or entry["id"], secret_hash=entry["secret_hash"],
                        resources=frozenset(entry.get("resources") or ()),
                        scopes=frozenset(entry.get("scopes") or SCOPES)))
    if problems:
        raise AppError(problems)
    return apps


# -- storage ----------------------------------------------------------------------------

def load_apps(conn: Connection) -> dict[str, App]:
    row = conn.execute(select(t.config.c.data).where(t.config.c.name == "apps")).first()
    if row is None:
        return {}
    return {a.id: a for a in parse_apps(orjson.loads(row.data), catalogue(conn))}


def store_apps(conn: Connection, apps: Iterable[App]) -> None:
    store_config(conn, "apps", {"apps": [a.to_dict() for a in sorted(apps, key=lambda a: a.id)]})


def replace_apps(conn: Connection, document: Mapping[str, Any]) -> list[App]:
    """Check and store an `apps:` document (all or nothing). Issued tokens of removed apps stop working."""
    apps = parse_apps(document, catalogue(conn))
    store_apps(conn, apps)
    return apps


def add_app(conn: Connection, app_id: str, resources: Iterable[str], scopes: Iterable[str] = SCOPES,
            name: str = "") -> tuple[App, str]:
    """Create (or re-key) one app; returns it with its new secret, to show once.

    Re-keying revokes the tokens issued under the old secret (the usual reason
    to re-key is a secret that leaked).
    """
    secret = secrets.token_urlsafe(32)
    apps = load_apps(conn)
    doc = {"apps": [a.to_dict() for a in apps.values() if a.id != app_id] + [
        {"id": app_id, "name": name or app_id, "secret_hash": hash_secret(secret),
         "resources": sorted(set(resources)), "scopes": sorted(set(scopes))}]}
    stored = replace_apps(conn, doc)
    conn.execute(delete(t.token).where(t.token.c.app == app_id))  # a new secret ends the old one's tokens
    return next(a for a in stored if a.id == app_id), secret


def remove_app(conn: Connection, app_id: str) -> bool:
    """Remove one app and its tokens; False if there was no such app."""
    known = load_apps(conn)
    if app_id not in known:
        return False
    store_apps(conn, [a for a in known.values() if a.id != app_id])
    conn.execute(delete(t.token).where(t.token.c.app == app_id))
    return True


# -- tokens (OAuth 2.0 client credentials) ----------------------------------------------

def _token_key(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(conn: Connection, app: App, scopes: Iterable[str], now: datetime | None = None) -> tuple[str, int]:
    """A bearer token for `app` with `scopes` (a subset of its own); only its hash is stored."""
    now = now or datetime.now(UTC)
    token = secrets.token_urlsafe(32)
    conn.execute(insert(t.token).values(token_sha256=_token_key(token), app=app.id, scopes=" ".join(sorted(scopes)),
                                        expires_at=now + TOKEN_LIFETIME))
    conn.execute(delete(t.token).where(t.token.c.expires_at < now))
    return token, int(TOKEN_LIFETIME.total_seconds())


@dataclass(frozen=True)
class Caller:
    """An app authenticated by a bearer token, with the scopes that token carries."""

    app: App
    scopes: frozenset[str] = field(default_factory=frozenset)


def authenticate(conn: Connection, token: str, now: datetime | None = None) -> Caller | None:
    now = now or datetime.now(UTC)
    row = conn.execute(select(t.token.c.app, t.token.c.scopes, t.token.c.expires_at)
                       .where(t.token.c.token_sha256 == _token_key(token))).first()
    if row is None:
        return None
    expires = row.expires_at if row.expires_at.tzinfo else row.expires_at.replace(tzinfo=UTC)
    if expires <= now:
        return None
    app = load_apps(conn).get(row.app)
    if app is None:
        return None
    return Caller(app, frozenset(row.scopes.split()) & app.scopes)


# -- what an app sees -------------------------------------------------------------------

def entitled(conn: Connection, app: App) -> dict[str, set[str]]:
    """Person jointure -> UAIs where they hold one of the app's resources."""
    out: dict[str, set[str]] = {}
    if not app.resources:
        return out
    for person, uai in conn.execute(select(t.grant.c.person, t.grant.c.structure)
                                    .where(t.grant.c.resource.in_(sorted(app.resources)))):
        out.setdefault(person, set()).add(uai)
    return out

