"""The SSO service's bus events, written to the transactional outbox in the caller's transaction.

`sso.login.succeeded`, `sso.login.failed`, `sso.logout`, `sso.cas.ticket.validated`,
`sso.saml.response.sent`, `sso.oidc.token.issued` (schemas in contracts/schemas/). Payloads never carry session ids,
tickets, assertion contents, URLs with their query strings, names, e-mails or addresses: a
session is named by its public `ref`, a person by their directory jointure, a CAS service or
a SAML platform by its id in the configuration. The usage statistics count by the `profile`,
`structure` (UAI) and `level` the session keeps (rules/usage_facts.py), null when unknown.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection

from relais.bus.envelope import Event, new_event_id
from relais.bus.outbox import add_events

from .rules.usage_facts import UsageFacts

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


def login_succeeded(conn: Connection, *, session: str, person: str, auth_source: str, usage: UsageFacts,
                    now: datetime, tenant: str) -> Event:
    """A session opened (`session`: its public ref) for `person` through the IdP family `auth_source`."""
    return emit(conn, "sso.login.succeeded", {"session": session, "person": person, "auth_source": auth_source,
                                              **usage.payload()}, tenant=tenant, now=now)


def cas_ticket_validated(conn: Connection, *, session: str, person: str, service: str, usage: UsageFacts,
                         now: datetime, tenant: str) -> Event:
    """A CAS service ticket was validated: `service` is the registry's id of the service, never its URL."""
    return emit(conn, "sso.cas.ticket.validated", {"session": session, "person": person, "service": service,
                                                   **usage.payload()}, tenant=tenant, now=now)


def oidc_token_issued(conn: Connection, *, session: str, person: str, client: str, usage: UsageFacts,
                      now: datetime, tenant: str) -> Event:
    """A code was exchanged for tokens: `client` is the configuration's id of the OIDC client (refreshes: none)."""
    return emit(conn, "sso.oidc.token.issued", {"session": session, "person": person, "client": client,
                                                **usage.payload()}, tenant=tenant, now=now)


def saml_response_sent(conn: Connection, *, session: str, person: str, platform: str, usage: UsageFacts,
                       now: datetime, tenant: str) -> Event:
    """The SAML IdP sent an assertion for `person` to `platform` (the configuration's id of the platform)."""
    return emit(conn, "sso.saml.response.sent", {"session": session, "person": person, "platform": platform,
                                                 **usage.payload()}, tenant=tenant, now=now)
