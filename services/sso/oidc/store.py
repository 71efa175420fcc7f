"""Authorization codes and tokens in the database, shared by every instance (tables.py, migration 0022_sso_oidc).

Codes, access tokens and refresh tokens are 256 random bits handed out once and stored as SHA-256 only. A code is
consumed by one conditional UPDATE before anything else is read from it, so a code raced on two instances is
redeemed once; presented again, every token issued from it is revoked (`grant_id`). A refresh token is replaced
at each use (rotation); presented again after that, its whole grant is revoked. The statements of a flow are
compiled once (compiled_sql.py), as the CAS login path's are.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from ..compiled_sql import Statement
from ..sessions import digest
from ..tables import oidc_code as code_t
from ..tables import oidc_token as token_t
from ..tables import session_service

log = logging.getLogger(__name__)
CLIENT_LINK = "oidc:"  # sso_session_service.service of a client that received tokens (back-channel logout)


_INSERT_CODE = Statement(insert(code_t))
_CONSUME_CODE = Statement(update(code_t).where(code_t.c.code_sha256 == bindparam("b_key"),
                                               code_t.c.consumed_at.is_(None)).values(consumed_at=bindparam("b_now")))
_FIND_CODE = Statement(select(code_t).where(code_t.c.code_sha256 == bindparam("b_key")))
_INSERT_TOKEN = Statement(insert(token_t))
_FIND_TOKEN = Statement(select(token_t).where(token_t.c.token_sha256 == bindparam("b_key"),
                                              token_t.c.kind == bindparam("b_kind")))
_ROTATE = Statement(update(token_t).where(token_t.c.token_sha256 == bindparam("b_key"), token_t.c.kind == "refresh",
                                          token_t.c.replaced_at.is_(None), token_t.c.revoked_at.is_(None))
                    .values(replaced_at=bindparam("b_now")))
_FIND_LINK = Statement(select(session_service.c.ticket).where(
    session_service.c.session_sha256 == bindparam("b_session"), session_service.c.ticket == bindparam("b_link")))
_INSERT_LINK = Statement(insert(session_service))


class GrantError(Exception):
    """A code or refresh token refused (`invalid_grant`); `reason` for the log, never the token."""

    def __init__(self, reason: str):
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Grant:
    """What a code or a token was issued for."""

    grant_id: str
    client: str
    session_sha256: str
    session_ref: str
    person_jointure: str
    scope: tuple[str, ...]
    auth_time: datetime
    nonce: str | None = None
    redirect_uri: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None
    expires_at: datetime | None = None


def issue_code(conn: Connection, grant: Grant, *, now: datetime, lifetime: int) -> str:
    """A new one-time authorization code for `grant` (its redirect URI, nonce and PKCE challenge)."""
    code = secrets.token_urlsafe(32)
    _INSERT_CODE.run(conn, {
        "code_sha256": digest(code), "grant_id": grant.grant_id, "client": grant.client,
        "session_sha256": grant.session_sha256, "session_ref": grant.session_ref,
        "person_jointure": grant.person_jointure, "redirect_uri": grant.redirect_uri, "scope": " ".join(grant.scope),
        "nonce": grant.nonce, "code_challenge": grant.code_challenge,
        "code_challenge_method": grant.code_challenge_method, "auth_time": grant.auth_time, "issued_at": now,
        "expires_at": now + timedelta(seconds=lifetime), "consumed_at": None})
    return code


def new_grant_id() -> str:
    return secrets.token_hex(16)


def redeem_code(conn: Connection, code: str | None, now: datetime) -> Grant:
    """Consume a code (first, in one conditional UPDATE) and return what it was issued for.

    A code already consumed revokes the tokens issued from it; an expired one is refused. The caller checks the
    client, the redirect URI and PKCE, and must commit even when it refuses: the code stays consumed.
    """
    if not code or len(code) > 128:
        raise GrantError("no code, or not one of ours")
    key = digest(code)
    consumed = _CONSUME_CODE.run(conn, {"b_key": key, "b_now": now})
    row = _FIND_CODE.first(conn, {"b_key": key})
    if row is None:
        raise GrantError("unknown code")
    if not consumed:
        revoked = revoke_grant(conn, row["grant_id"], now)
        raise GrantError(f"code used twice: the {revoked} token(s) issued from it are revoked")
    if _utc(row["expires_at"]) <= now:
        raise GrantError("expired code")
    return Grant(row["grant_id"], row["client"], row["session_sha256"], row["session_ref"], row["person_jointure"],
                 tuple(row["scope"].split()), _utc(row["auth_time"]), row["nonce"], row["redirect_uri"],
                 row["code_challenge"], row["code_challenge_method"])


def issue_tokens(conn: Connection, grant: Grant, *, now: datetime, access_lifetime: int,
                 refresh_until: datetime | None) -> tuple[str, str | None]:
    """An access token, and a refresh token valid until `refresh_until` (None: no refresh token)."""
    access = secrets.token_urlsafe(32)
    rows = [_token_row(grant, "access", access, now, now + timedelta(seconds=access_lifetime))]
    refresh = None
    if refresh_until is not None:
        refresh = secrets.token_urlsafe(32)
        rows.append(_token_row(grant, "refresh", refresh, now, refresh_until))
    for row in rows:
        _INSERT_TOKEN.run(conn, row)
    _link_client(conn, grant, now)
    return access, refresh


def _token_row(grant: Grant, kind: str, token: str, now: datetime, expires_at: datetime) -> dict[str, object]:
    return {"token_sha256": digest(token), "kind": kind, "grant_id": grant.grant_id, "client": grant.client,
            "session_sha256": grant.session_sha256, "session_ref": grant.session_ref,
            "person_jointure": grant.person_jointure, "scope": " ".join(grant.scope), "auth_time": grant.auth_time,
            "issued_at": now, "expires_at": expires_at, "replaced_at": None, "revoked_at": None}


def _link_client(conn: Connection, grant: Grant, now: datetime) -> None:
    """Remember that this session's client received tokens, for back-channel logout (once per client)."""
    link = CLIENT_LINK + grant.client
    if _FIND_LINK.first(conn, {"b_session": grant.session_sha256, "b_link": link}) is None:
        _INSERT_LINK.run(conn, {"session_sha256": grant.session_sha256, "ticket": link, "service": link,
                                "logged_in_at": now})


def rotate_refresh(conn: Connection, token: str | None, now: datetime) -> Grant:
    """Consume a refresh token (replaced by the caller's new one); a reused one revokes its whole grant."""
    if not token or len(token) > 128:
        raise GrantError("no refresh token, or not one of ours")
    key = digest(token)
    used = _ROTATE.run(conn, {"b_key": key, "b_now": now})
    row = _FIND_TOKEN.first(conn, {"b_key": key, "b_kind": "refresh"})
    if row is None:
        raise GrantError("unknown refresh token")
    if not used:
        if row["revoked_at"] is not None:
            raise GrantError("revoked refresh token")
        revoked = revoke_grant(conn, row["grant_id"], now)
        raise GrantError(f"refresh token reused after rotation: its grant's {revoked} token(s) are revoked")
    if _utc(row["expires_at"]) <= now:
        raise GrantError("expired refresh token")
    return _grant(row, expires_at=_utc(row["expires_at"]))


def revoke_grant(conn: Connection, grant_id: str, now: datetime) -> int:
    """Revoke every token of a grant still valid; how many."""
    return conn.execute(update(token_t).where(token_t.c.grant_id == grant_id, token_t.c.revoked_at.is_(None))
                        .values(revoked_at=now)).rowcount


def revoke_session(conn: Connection, session_ref: str, now: datetime) -> int:
    """Revoke every token issued in an SSO session (it ended; by its public ref); how many."""
    return conn.execute(update(token_t).where(token_t.c.session_ref == session_ref,
                                              token_t.c.revoked_at.is_(None)).values(revoked_at=now)).rowcount


def access_grant(conn: Connection, token: str | None, now: datetime) -> Grant | None:
    """What a live access token was issued for, or None (unknown, expired or revoked)."""
    if not token or len(token) > 128:
        return None
    row = _FIND_TOKEN.first(conn, {"b_key": digest(token), "b_kind": "access"})
    if row is None or row["revoked_at"] is not None or _utc(row["expires_at"]) <= now:
        return None
    return _grant(row)


def _grant(row: dict[str, Any], expires_at: datetime | None = None) -> Grant:
    return Grant(row["grant_id"], row["client"], row["session_sha256"], row["session_ref"], row["person_jointure"],
                 tuple(row["scope"].split()), _utc(row["auth_time"]), expires_at=expires_at)


def purge(conn: Connection, now: datetime) -> int:
    """Delete expired codes and tokens; how many rows went."""
    gone = conn.execute(delete(code_t).where(code_t.c.expires_at < now)).rowcount
    return gone + conn.execute(delete(token_t).where(token_t.c.expires_at < now)).rowcount


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
