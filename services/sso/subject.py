"""The SSO's share of data-subject requests: one person's sessions, where they logged in, their
pseudonyms per platform, and erasing what is stored.

- `export(conn, jointure, pseudonyms)`: every session still stored (the sessions' history: created,
  last seen, the identity provider and what it said), the services each logged into, the SAML
  sessions with the national IdP, CAS tickets (counts), OpenID Connect grants; and the pseudonymous
  NameID each SAML platform knows the person by (computed, never stored: `pseudonyms`, given
  the deployment secret and the platforms);
- `erase(conn, request)`: those rows, so every session of the person ends; a login choice pending
  that names them goes too. The pseudonyms are not stored: a platform keeps its own data under its
  pseudonym, which the platform's controller erases (the export tells which);
- `consumer(tenant)`: the queue `relais.q.sso-subject` (relais.subject.events).
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, delete, func, inspect, select, text

from relais.runtime import Consumer
from relais.subject.events import Erased, ErasureRequest, consumer_name, erasure_handler

from . import tables as t
from .rules.pseudonyms import persistent_name_id

SERVICE = "sso"
_OIDC = ("sso_oidc_code", "sso_oidc_token")  # the OpenID Connect provider's, when its migration ran


def pseudonyms(secret: bytes, platforms: Sequence[tuple[str, str]], jointure: str) -> dict[str, str]:
    """Platform id -> the NameID the platform knows `jointure` by."""
    return {pid: persistent_name_id(secret, entity_id, jointure) for pid, entity_id in platforms}


def export(conn: Connection, jointure: str, platform_pseudonyms: dict[str, str] | None = None) -> dict[str, Any]:
    s = t.session
    sessions = []
    for r in conn.execute(select(s).where(s.c.person_jointure == jointure).order_by(s.c.created_at)):
        services = [{"service": x.service, "logged_in_at": _iso(x.logged_in_at)} for x in conn.execute(
            select(t.session_service.c.service, t.session_service.c.logged_in_at)
            .where(t.session_service.c.session_sha256 == r.sid_sha256))]
        saml = [{"idp": x.idp, "name_id": x.name_id, "name_id_format": x.name_id_format} for x in conn.execute(
            select(t.saml_session).where(t.saml_session.c.session_sha256 == r.sid_sha256))]
        sessions.append({"ref": r.ref, "auth_source": r.auth_source, "national_id": r.national_id,
                         "attributes": json.loads(r.attributes), "created_at": _iso(r.created_at),
                         "last_seen_at": _iso(r.last_seen_at), "expires_at": _iso(r.expires_at),
                         "profile": r.profile, "structure": r.structure, "level": r.level,
                         "services": services, "national_saml_sessions": saml})
    tickets = conn.execute(select(func.count()).select_from(t.ticket)
                           .where(t.ticket.c.person_jointure == jointure)).scalar_one()
    return {
        "sessions": sessions,
        "cas_tickets_stored": tickets,
        "oidc_grants": {name: _count(conn, name, jointure) for name in _oidc_tables(conn)},
        "platform_pseudonyms": platform_pseudonyms if platform_pseudonyms is not None else
        "not computed: no SSO configuration (RELAIS_SSO_CONFIG and its secret) where the export ran",
        "note": "the SSO keeps sessions until they expire, and no login history beyond them; each platform "
                "knows the person only by the pseudonym above",
    }


def erase(conn: Connection, request: ErasureRequest) -> Erased:
    j = request.person
    s = t.session
    sids = list(conn.execute(select(s.c.sid_sha256).where(s.c.person_jointure == j)).scalars())
    counts = {
        "tickets": conn.execute(delete(t.ticket).where(t.ticket.c.person_jointure == j)).rowcount,
        "services": conn.execute(delete(t.session_service)
                                 .where(t.session_service.c.session_sha256.in_(sids))).rowcount,
        "national_saml_sessions": conn.execute(delete(t.saml_session)
                                               .where(t.saml_session.c.session_sha256.in_(sids))).rowcount,
        "sessions": conn.execute(delete(s).where(s.c.person_jointure == j)).rowcount,
        "pending_choices": conn.execute(delete(t.saml_choice).where(t.saml_choice.c.data.contains(j))).rowcount,
    }
    for name in _oidc_tables(conn):
        counts[name] = conn.execute(text(f"DELETE FROM {name} WHERE person_jointure = :j"), {"j": j}).rowcount
    return Erased(counts, ("pseudonyms are computed, not stored: each SAML platform erases its own data under "
                           "the pseudonym the export gives",))


def consumer(tenant: str) -> Consumer:
    return Consumer(consumer_name(SERVICE), erasure_handler(SERVICE, tenant, erase), batch_size=1)


def _oidc_tables(conn: Connection) -> list[str]:
    names = set(inspect(conn).get_table_names())
    return [n for n in _OIDC if n in names]


def _count(conn: Connection, table: str, jointure: str) -> int:
    return int(conn.execute(text(f"SELECT count(*) FROM {table} WHERE person_jointure = :j"),
                            {"j": jointure}).scalar_one())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
