"""The SAML SP's state in the database: pending requests, the replay cache, account choices, IdP session links.

Every function works in the caller's transaction. Consuming is done with one
conditional UPDATE (or DELETE) whose row count says who won, so two instances
(or two threads) receiving the same answer cannot both use it. The statements
on the assertion consumer path are compiled once, with bound parameters (compiled_sql.py).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, not_, or_, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ..compiled_sql import Statement
from ..sessions import digest
from ..tables import replay as replay_t
from ..tables import saml_choice as choice_t
from ..tables import saml_request as request_t
from ..tables import saml_session
from ..tables import session as session_t


@dataclass(frozen=True)
class PendingRequest:
    id: str
    kind: str  # authn | logout
    idp: str
    browser_sha256: str | None
    next: str | None
    force_authn: bool
    issued_at: datetime
    expires_at: datetime
    answered_at: datetime | None = None


@dataclass(frozen=True)
class SamlSessionLink:
    session_sha256: str
    idp: str
    name_id: str
    name_id_format: str | None
    name_qualifier: str | None
    sp_name_qualifier: str | None
    session_index: str | None
    return_url: str | None


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


# -- pending requests ------------------------------------------------------------------------

_FIND_REQUEST = Statement(select(request_t).where(request_t.c.id == bindparam("b_id")))
_CONSUME_REQUEST = Statement(update(request_t)
                             .where(request_t.c.id == bindparam("b_id"), request_t.c.answered_at.is_(None),
                                    request_t.c.expires_at > bindparam("b_now"))
                             .values(answered_at=bindparam("b_now")))
_SAVE_REQUEST = Statement(insert(request_t))
_LINK_SESSION = Statement(insert(saml_session))
_REMEMBER = Statement({  # INSERT … ON CONFLICT DO NOTHING RETURNING id, per dialect
    "postgresql": pg_insert(replay_t).on_conflict_do_nothing().returning(replay_t.c.id),
    "sqlite": sqlite_insert(replay_t).on_conflict_do_nothing().returning(replay_t.c.id),
})


def save_request(conn: Connection, request: PendingRequest) -> None:
    _SAVE_REQUEST.run(conn, vars(request))


def find_request(conn: Connection, request_id: str | None) -> PendingRequest | None:
    """A request we sent with this ID (answered or not, expired or not, until purged), or None. Reads only."""
    if not request_id or len(request_id) > 64:
        return None
    row = _FIND_REQUEST.first(conn, {"b_id": request_id})
    if row is None:
        return None
    return PendingRequest(**{**row, "issued_at": _utc(row["issued_at"]), "expires_at": _utc(row["expires_at"]),
                             "answered_at": row["answered_at"] and _utc(row["answered_at"])})


def consume_request(conn: Connection, request_id: str, now: datetime) -> bool:
    """Mark the request answered; False if another instance or thread already did (or it expired)."""
    return _CONSUME_REQUEST.run(conn, {"b_id": request_id, "b_now": now}) == 1


# -- replay cache ------------------------------------------------------------------------------

def replay_key(issuer: str, message_id: str) -> str:
    return hashlib.sha256(f"{issuer}\x00{message_id}".encode()).hexdigest()


def remember_once(conn: Connection, issuer: str, message_id: str, expires_at: datetime) -> bool:
    """Record an accepted assertion (or logout request) id; False if it was already seen (a replay)."""
    # RETURNING rather than rowcount: psycopg reports no row count for INSERT … ON CONFLICT here
    return _REMEMBER.first(conn, {"id": replay_key(issuer, message_id), "expires_at": expires_at}) is not None


# -- account choices ----------------------------------------------------------------------------

def save_choice(conn: Connection, token: str, browser: str, data: dict[str, Any], expires_at: datetime) -> None:
    conn.execute(insert(choice_t).values(token_sha256=digest(token), browser_sha256=digest(browser),
                                         data=json.dumps(data, sort_keys=True), expires_at=expires_at))


def peek_choice(conn: Connection, token: str | None, browser: str | None, now: datetime) -> dict[str, Any] | None:
    """The pending choice for this token in this browser, or None (unknown, expired, other browser)."""
    if not token or not browser or len(token) > 128 or len(browser) > 128:
        return None
    row = conn.execute(select(choice_t).where(choice_t.c.token_sha256 == digest(token))).mappings().first()
    if row is None or _utc(row["expires_at"]) <= now or row["browser_sha256"] != digest(browser):
        return None
    return json.loads(row["data"])


def take_choice(conn: Connection, token: str, now: datetime) -> bool:
    """Use up a choice; False if it was used meanwhile."""
    return conn.execute(delete(choice_t).where(choice_t.c.token_sha256 == digest(token),
                                               choice_t.c.expires_at > now)).rowcount == 1


# -- IdP session links ---------------------------------------------------------------------------

def link_session(conn: Connection, session_id: str, link: SamlSessionLink | dict, expires_at: datetime) -> None:
    values = dict(vars(link)) if isinstance(link, SamlSessionLink) else dict(link)
    _LINK_SESSION.run(conn, {**values, "session_sha256": digest(session_id), "expires_at": expires_at})


def session_link(conn: Connection, session_id: str) -> SamlSessionLink | None:
    row = conn.execute(select(saml_session).where(saml_session.c.session_sha256 == digest(session_id))
                       ).mappings().first()
    return None if row is None else _link(row)


def sessions_named(conn: Connection, idp: str, name_id: str, session_indexes: list[str]) -> list[SamlSessionLink]:
    """The SSO sessions an IdP's LogoutRequest names (by NameID, narrowed to its SessionIndexes if any)."""
    query = select(saml_session).where(saml_session.c.idp == idp, saml_session.c.name_id == name_id)
    if session_indexes:
        query = query.where(saml_session.c.session_index.in_(session_indexes))
    return [_link(row) for row in conn.execute(query).mappings()]


def unlink(conn: Connection, session_sha256: str) -> None:
    conn.execute(delete(saml_session).where(saml_session.c.session_sha256 == session_sha256))


def _link(row) -> SamlSessionLink:
    return SamlSessionLink(**{k: row[k] for k in SamlSessionLink.__dataclass_fields__})


def purge(conn: Connection, now: datetime) -> int:
    """Delete expired requests and choices, and links of sessions that ended; returns rows deleted."""
    n = conn.execute(delete(request_t).where(request_t.c.expires_at < now)).rowcount
    n += conn.execute(delete(choice_t).where(choice_t.c.expires_at < now)).rowcount
    live = select(session_t.c.sid_sha256).where(session_t.c.sid_sha256 == saml_session.c.session_sha256)
    n += conn.execute(delete(saml_session).where(or_(saml_session.c.expires_at < now,
                                                     not_(live.exists())))).rowcount
    return n
