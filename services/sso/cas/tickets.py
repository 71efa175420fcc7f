"""CAS tickets (protocol 2.0 and 3.0): issued, validated and proxied over a database connection.

Tickets are `ST-`, `PT-`, `PGT-` (and `PGTIOU-`) followed by 256 random bits;
the database holds only their SHA-256. Service and proxy tickets are
single-use: validation consumes them in one conditional UPDATE, so two
instances racing on one ticket cannot both succeed, and a ticket presented for
the wrong service is burnt too (as the CAS specification asks). Every refusal
is logged with its code and reason, never with the ticket. A validated service
ticket writes `sso.cas.ticket.validated` (the service's registry id, the session's
usage facts) in the validation's transaction; a proxy ticket writes nothing, as it is
a service acting for a visit already counted, not a visit.

The documents that answer these requests are in responses.py; the HTTP side in http.py.
"""

from __future__ import annotations

import json
import logging
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, and_, bindparam, insert, select, update

from .. import events
from ..compiled_sql import Statement
from ..config import Lifetimes
from ..rules.service_registry import RegisteredService, ServiceRegistry, parse_service_url, safe_url
from ..rules.usage_facts import UsageFacts
from ..sessions import Session, digest
from ..tables import session as session_t
from ..tables import session_service
from ..tables import ticket as ticket_t

log = logging.getLogger(__name__)

# CAS error codes (CAS protocol 3.0, sections 2.5.3 and 2.7.2).
INVALID_REQUEST = "INVALID_REQUEST"
INVALID_TICKET_SPEC = "INVALID_TICKET_SPEC"
UNAUTHORIZED_SERVICE_PROXY = "UNAUTHORIZED_SERVICE_PROXY"
INVALID_PROXY_CALLBACK = "INVALID_PROXY_CALLBACK"
INVALID_TICKET = "INVALID_TICKET"
INVALID_SERVICE = "INVALID_SERVICE"
UNAUTHORIZED_SERVICE = "UNAUTHORIZED_SERVICE"
INTERNAL_ERROR = "INTERNAL_ERROR"

MAX_TICKET_LENGTH = 256


class CasError(Exception):
    """A refused CAS request: `code` is the CAS error code, `reason` is safe to log and to show."""

    def __init__(self, code: str, reason: str):
        self.code = code
        self.reason = reason
        super().__init__(f"{code}: {reason}")


@dataclass(frozen=True)
class Validation:
    """A successfully validated ST or PT."""

    user: str
    service: str
    ticket: str
    session_sha256: str
    renewed: bool
    proxies: tuple[str, ...]
    authenticated_at: datetime
    attributes: dict[str, list[str]] = field(default_factory=dict)
    pgt_iou: str | None = None


def new_ticket(prefix: str) -> str:
    return f"{prefix}-{secrets.token_urlsafe(32)}"


# The statements of a login, compiled once and run on the driver's cursor (compiled_sql.py).
_INSERT_TICKET = Statement(insert(ticket_t))
# Consume first, atomically, and read the ticket, its session's start and what its event needs of the
# session in the same statement (UPDATE … RETURNING; `session_created_at` is NULL once the session has ended).


def _of_session(column: Any, label: str) -> Any:
    return (select(column).where(session_t.c.sid_sha256 == ticket_t.c.session_sha256)
            .scalar_subquery().label(label))


_CONSUME = Statement(
    update(ticket_t)
    .where(ticket_t.c.ticket_sha256 == bindparam("b_key"), ticket_t.c.kind == bindparam("b_kind"),
           ticket_t.c.consumed_at.is_(None))
    .values(consumed_at=bindparam("b_now"))
    .returning(*ticket_t.c, _of_session(session_t.c.created_at, "session_created_at"),
               _of_session(session_t.c.ref, "session_ref"), _of_session(session_t.c.profile, "session_profile"),
               _of_session(session_t.c.structure, "session_structure"),
               _of_session(session_t.c.level, "session_level")))
_KNOWN_TICKET = Statement(select(ticket_t.c.kind).where(ticket_t.c.ticket_sha256 == bindparam("b_key")))
_INSERT_SESSION_SERVICE = Statement(insert(session_service))


def _store(conn: Connection, ticket: str, kind: str, service: str, session_sha256: str, person: str, *,
           renewed: bool, proxies: tuple[str, ...], now: datetime, seconds: int) -> None:
    _INSERT_TICKET.run(conn, {
        "ticket_sha256": digest(ticket), "kind": kind, "service": service, "session_sha256": session_sha256,
        "person_jointure": person, "renewed": renewed, "proxies": json.dumps(list(proxies)), "issued_at": now,
        "expires_at": now + timedelta(seconds=seconds)})


def issue_service_ticket(conn: Connection, session: Session, service: str, *, renewed: bool, now: datetime,
                         lifetimes: Lifetimes) -> str:
    """A fresh ST for a registered service (the caller checked the registry)."""
    ticket = new_ticket("ST")
    _store(conn, ticket, "ST", service, digest(session.id), session.person_jointure, renewed=renewed, proxies=(),
           now=now, seconds=lifetimes.service_ticket)
    log.info("ST issued to service %s for session %s", safe_url(service), session.ref)
    return ticket


def validate(conn: Connection, ticket: str | None, service: str | None, *, registry: ServiceRegistry,
             now: datetime, accept_proxy_tickets: bool, tenant: str,
             renew: bool = False) -> tuple[Validation, RegisteredService]:
    """Consume an ST (or a PT when `accept_proxy_tickets`) for `service`; raises CasError when refused.

    Records the service against the session for back-channel logout (when its entry asks for logout), and
    an ST's validation as `sso.cas.ticket.validated`.
    """
    try:
        if not ticket or not service:
            raise CasError(INVALID_REQUEST, "ticket and service are required")
        if len(ticket) > MAX_TICKET_LENGTH:
            raise CasError(INVALID_TICKET, "ticket too long")
        kind = ticket.split("-", 1)[0]
        if kind not in ("ST", "PT"):
            raise CasError(INVALID_TICKET_SPEC if kind == "PGT" else INVALID_TICKET,
                           "not a service or proxy ticket")
        if kind == "PT" and not accept_proxy_tickets:
            raise CasError(INVALID_TICKET_SPEC, "a proxy ticket was presented to serviceValidate")
        registered = registry.find(service)
        if registered is None:
            raise CasError(INVALID_SERVICE, f"service {safe_url(service)} is not in the registry")
        key = digest(ticket)
        # Consume first, atomically: whatever happens next, the ticket is spent.
        row = _CONSUME.first(conn, {"b_key": key, "b_kind": kind, "b_now": now})
        if row is None:
            known = _KNOWN_TICKET.first(conn, {"b_key": key}) is not None
            raise CasError(INVALID_TICKET, f"{kind} already used" if known else f"{kind} not recognised")
        if now >= _utc(row["expires_at"]):
            raise CasError(INVALID_TICKET, f"{kind} expired")
        if row["service"] != service:
            raise CasError(INVALID_SERVICE, f"{kind} was issued for another service than {safe_url(service)}")
        if renew and not row["renewed"]:
            raise CasError(INVALID_TICKET, f"renew=true but the {kind} did not come from a fresh authentication")
        if row["session_created_at"] is None:
            raise CasError(INVALID_TICKET, f"the SSO session of this {kind} has ended")
    except CasError as exc:
        log.warning("CAS validation refused: %s (%s)", exc.code, exc.reason)
        raise
    if registered.logout:
        _INSERT_SESSION_SERVICE.run(conn, {"session_sha256": row["session_sha256"], "ticket": ticket,
                                           "service": service, "logged_in_at": now})
    if kind == "ST":
        events.cas_ticket_validated(conn, session=row["session_ref"], person=row["person_jointure"],
                                    service=registered.id, now=now, tenant=tenant,
                                    usage=UsageFacts(row["session_profile"], row["session_structure"],
                                                     row["session_level"]))
    log.info("%s validated for service %s (%s)", kind, registered.id, row["person_jointure"])
    return Validation(user=row["person_jointure"], service=service, ticket=ticket,
                      session_sha256=row["session_sha256"], renewed=bool(row["renewed"]),
                      proxies=tuple(json.loads(row["proxies"])),
                      authenticated_at=_utc(row["session_created_at"])), registered


def check_pgt_url(pgt_url: str, registered: RegisteredService, registry: ServiceRegistry, *,
                  allow_http: bool) -> None:
    """Raise CasError unless this service may ask for a PGT delivered to `pgt_url`."""
    if not registered.proxy:
        raise CasError(UNAUTHORIZED_SERVICE_PROXY, f"service {registered.id} is not allowed to proxy")
    parsed = parse_service_url(pgt_url)
    if parsed is None or (parsed.scheme != "https" and not allow_http):
        raise CasError(INVALID_PROXY_CALLBACK, "pgtUrl must be an https URL")
    callback = registry.find(pgt_url)
    if callback is None or callback.id != registered.id:
        raise CasError(INVALID_PROXY_CALLBACK, f"pgtUrl is not registered for service {registered.id}")


def new_pgt() -> tuple[str, str]:
    """(PGT, PGTIOU) to send to the proxy callback; stored only once the callback answered 200."""
    return new_ticket("PGT"), new_ticket("PGTIOU")


def store_pgt(conn: Connection, pgt: str, pgt_url: str, validation: Validation, *, now: datetime,
              lifetimes: Lifetimes) -> None:
    """Keep a PGT whose callback answered; the proxy chain starts with its pgtUrl."""
    _store(conn, pgt, "PGT", pgt_url, validation.session_sha256, validation.user, renewed=False,
           proxies=(pgt_url, *validation.proxies), now=now, seconds=lifetimes.proxy_granting_ticket)


def issue_proxy_ticket(conn: Connection, pgt: str | None, target_service: str | None, *,
                       registry: ServiceRegistry, now: datetime, lifetimes: Lifetimes) -> str:
    """A PT for `target_service` from a live PGT (the `/proxy` endpoint); raises CasError when refused."""
    try:
        if not pgt or not target_service:
            raise CasError(INVALID_REQUEST, "pgt and targetService are required")
        if len(pgt) > MAX_TICKET_LENGTH or not pgt.startswith("PGT-"):
            raise CasError(INVALID_TICKET, "not a proxy-granting ticket")
        if registry.find(target_service) is None:
            raise CasError(UNAUTHORIZED_SERVICE, f"target service {safe_url(target_service)} is not in the registry")
        row = conn.execute(select(ticket_t).where(and_(ticket_t.c.ticket_sha256 == digest(pgt),
                                                       ticket_t.c.kind == "PGT"))).mappings().first()
        if row is None:
            raise CasError(INVALID_TICKET, "PGT not recognised")
        if now >= _utc(row["expires_at"]):
            raise CasError(INVALID_TICKET, "PGT expired")
    except CasError as exc:
        log.warning("CAS proxy refused: %s (%s)", exc.code, exc.reason)
        raise
    ticket = new_ticket("PT")
    _store(conn, ticket, "PT", target_service, row["session_sha256"], row["person_jointure"], renewed=False,
           proxies=tuple(json.loads(row["proxies"])), now=now, seconds=lifetimes.service_ticket)
    log.info("PT issued to service %s", safe_url(target_service))
    return ticket


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
