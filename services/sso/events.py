"""The SSO service's bus events, written to the transactional outbox in the caller's transaction.

`sso.login.succeeded`, `sso.login.failed`, `sso.logout` (schemas in contracts/schemas/).
Payloads never carry session ids, tickets or assertion contents: a session is named
by its public `ref`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from relais.bus.envelope import Event, new_event_id
from relais.bus.outbox import add_events

SOURCE = "relais.sso"


def emit(conn: Connection, type_: str, payload: dict[str, Any], *, tenant: str, now: datetime,
         correlation_id: str | None = None) -> Event:
    """Validate and write one event to the outbox (it is published if the transaction commits)."""
    event = Event(type=type_, payload=payload, source=SOURCE, tenant=tenant,
                  correlation_id=correlation_id or new_event_id(),
                  occurred_at=now.isoformat(timespec="microseconds").replace("+00:00", "Z"))
    add_events(conn, [event])
    return event


def login_failed(conn: Connection, *, auth_source: str, reason: str, now: datetime, tenant: str,
                 detail: str | None = None) -> Event:
    """Audit a failed national login (e.g. reason `no-account`, `invalid-response`, `account-choice-refused`).

    `detail` is a short human text for the audit trail; never put assertion contents or secrets in it.
    """
    return emit(conn, "sso.login.failed", {"auth_source": auth_source, "reason": reason, "detail": detail},
                tenant=tenant, now=now)
