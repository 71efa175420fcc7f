"""Single sign-on sessions, stored in the database so every instance of the service shares them.

The session id is a random 256-bit token: the browser holds it in the SSO
cookie, the database only its SHA-256. A session ends `lifetimes.session_idle`
seconds after its last use or `lifetimes.session_max` seconds after login,
whichever comes first.

API (what the SAML SP calls after a successful national login, in the
transaction that writes its own state)::

    with writer(engine).begin() as conn:
        s = open_session(conn, person_jointure="2605692", auth_source="educonnect",
                         national_id="fe0c...", attributes={...}, now=now, tenant=settings.tenant,
                         usage=UsageFacts("National_ELV", "0750001A", "10010012110"))
    set_session_cookie(response, s.id, config)   # cookies.py: with the right flags

    get_session(conn, sid, now)   -> Session | None   (None: unknown, expired or closed)
    close_session(conn, sid, now) -> ClosedSession | None  (with the services to notify)

`open_session` and `close_session` write `sso.login.succeeded` / `sso.logout`
to the outbox in the caller's transaction. The session keeps its usage facts
(rules/usage_facts.py) for the events of what it is used for (CAS validations,
SAML responses). `close_session` logs the session's end; the opening is logged
by the caller, in one line with how the login was made.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, insert, select, update

from . import events
from .compiled_sql import Statement
from .config import Lifetimes
from .rules.session_lifetime import session_end, why_ended
from .rules.usage_facts import NO_FACTS, UsageFacts
from .tables import replay as replay_t
from .tables import session as session_t
from .tables import session_service
from .tables import ticket as ticket_t

log = logging.getLogger(__name__)
DEFAULT_LIFETIMES = Lifetimes()


def digest(secret: str) -> str:
    """The SHA-256 (hex) a secret token is stored as."""
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class Session:
    """A live SSO session. `id` is the secret cookie value; `ref` a public handle for logs and events."""

    id: str
    ref: str
    person_jointure: str
    auth_source: str
    national_id: str | None
    attributes: dict[str, Any]
    created_at: datetime
    expires_at: datetime
    csrf_token: str
    usage: UsageFacts = NO_FACTS  # what the usage statistics count its events by
    last_seen_at: datetime | None = None  # its previous use, as read (None: just opened)

    def check_csrf(self, token: str | None) -> bool:
        """Whether a form's CSRF token is this session's (constant-time)."""
        if not token:
            return False
        return hmac.compare_digest(digest(token), digest(self.csrf_token))


@dataclass(frozen=True)
class ClosedSession:
    ref: str
    person_jointure: str
    services: tuple[tuple[str, str], ...]  # (service URL, the ticket it validated) for back-channel logout


# The login path's statements, compiled once and run on the driver's cursor (compiled_sql.py).
_INSERT = Statement(insert(session_t))
_FIND = Statement(select(session_t).where(session_t.c.sid_sha256 == bindparam("b_key")))
_TOUCH = Statement(update(session_t).where(session_t.c.sid_sha256 == bindparam("b_key"))
                   .values(last_seen_at=bindparam("b_now")))


def _csrf(sid: str) -> str:
    # Derived from the session id, so it needs no storage in clear and dies with the session.
    return hmac.new(sid.encode(), b"relais-sso-csrf", hashlib.sha256).hexdigest()


def open_session(conn: Connection, *, person_jointure: str, auth_source: str, national_id: str | None,
                 attributes: dict[str, Any], now: datetime, tenant: str,
                 lifetimes: Lifetimes = DEFAULT_LIFETIMES, usage: UsageFacts = NO_FACTS) -> Session:
    """Start a session for a matched directory account; writes `sso.login.succeeded`.

    `now` must be timezone-aware. `attributes` are the national IdP's (JSON-serialisable). `usage`: the
    account's profile, structure and level, kept with the session and sent with its events.
    """
    _aware(now)
    sid = secrets.token_urlsafe(32)
    ref = secrets.token_hex(8)
    expires_at = session_end(now, lifetimes.session_max)
    csrf = _csrf(sid)
    _INSERT.run(conn, {
        "sid_sha256": digest(sid), "ref": ref, "person_jointure": person_jointure, "auth_source": auth_source,
        "national_id": national_id, "attributes": json.dumps(attributes, sort_keys=True),
        "csrf_sha256": digest(csrf), "created_at": now, "last_seen_at": now, "expires_at": expires_at,
        "profile": usage.profile, "structure": usage.structure, "level": usage.level})
    events.login_succeeded(conn, session=ref, person=person_jointure, auth_source=auth_source, usage=usage,
                           now=now, tenant=tenant)
    return Session(sid, ref, person_jointure, auth_source, national_id, attributes, now, expires_at, csrf, usage)


def get_session(conn: Connection, sid: str | None, now: datetime, *, lifetimes: Lifetimes = DEFAULT_LIFETIMES,
                touch: bool = True) -> Session | None:
    """The live session with this id, or None. Records its use (idle timeout) unless `touch=False`."""
    _aware(now)
    if not sid or len(sid) > 128:
        return None
    row = _FIND.first(conn, {"b_key": digest(sid)})
    if row is None:
        return None
    expires_at = _utc(row["expires_at"])
    last_seen_at = _utc(row["last_seen_at"])
    ended = why_ended(now, ends_at=expires_at, last_seen_at=last_seen_at, session_idle=lifetimes.session_idle)
    if ended is not None:
        log.info("session %s refused: %s", row["ref"], ended)
        return None
    session = Session(sid, row["ref"], row["person_jointure"], row["auth_source"], row["national_id"],
                      json.loads(row["attributes"]), _utc(row["created_at"]), expires_at, _csrf(sid),
                      UsageFacts(row["profile"], row["structure"], row["level"]), last_seen_at)
    if touch and touch_due(session, now):
        touch_session(conn, session, now)
    return session


def touch_due(session: Session, now: datetime) -> bool:
    """Whether this use of the session must be recorded (its idle timeout counts from it): at most once a second,
    so a login's requests in a row write nothing more."""
    return session.last_seen_at is not None and (now - session.last_seen_at).total_seconds() >= 1


def touch_session(conn: Connection, session: Session, now: datetime) -> None:
    """Record a use of the session now (`get_session` does it itself unless told `touch=False`)."""
    _TOUCH.run(conn, {"b_key": digest(session.id), "b_now": now})


def close_session(conn: Connection, sid: str | None, now: datetime, *, tenant: str,
                  reason: str = "user") -> ClosedSession | None:
    """End a session (and its tickets); writes `sso.logout`. Returns what to notify, or None if unknown."""
    if not sid:
        return None
    return close_session_by_key(conn, digest(sid), now, tenant=tenant, reason=reason)


def close_session_by_key(conn: Connection, key: str, now: datetime, *, tenant: str,
                         reason: str) -> ClosedSession | None:
    """`close_session` for a session known by its stored digest (an IdP's logout request names no cookie)."""
    row = conn.execute(select(session_t.c.ref, session_t.c.person_jointure)
                       .where(session_t.c.sid_sha256 == key)).first()
    if row is None:
        return None
    services = tuple((s, t) for s, t in conn.execute(
        select(session_service.c.service, session_service.c.ticket)
        .where(session_service.c.session_sha256 == key).order_by(session_service.c.logged_in_at)))
    conn.execute(delete(session_service).where(session_service.c.session_sha256 == key))
    conn.execute(delete(ticket_t).where(ticket_t.c.session_sha256 == key))
    conn.execute(delete(session_t).where(session_t.c.sid_sha256 == key))
    events.emit(conn, "sso.logout", {"session": row.ref, "person": row.person_jointure, "reason": reason,
                                     "services": len(services)}, tenant=tenant, now=now)
    log.info("session %s closed (%s), %d service(s) to notify", row.ref, reason, len(services))
    return ClosedSession(row.ref, row.person_jointure, services)


def purge_expired(conn: Connection, now: datetime) -> int:
    """Delete expired tickets, replay-cache entries and sessions past their absolute end.

    Returns how many sessions went. (Sessions that ended by idling are refused by
    `get_session` and go when their absolute end passes.)
    """
    conn.execute(delete(ticket_t).where(ticket_t.c.expires_at < now))
    conn.execute(delete(replay_t).where(replay_t.c.expires_at < now))
    gone = select(session_t.c.sid_sha256).where(session_t.c.expires_at < now)
    conn.execute(delete(session_service).where(session_service.c.session_sha256.in_(gone)))
    return conn.execute(delete(session_t).where(session_t.c.expires_at < now)).rowcount


def _aware(now: datetime) -> None:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (UTC)")


def _utc(value: datetime) -> datetime:
    """SQLite gives naive datetimes back: they were stored in UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
