"""Which deployment secret the IdP's pseudonymous NameIDs derive from, kept in the database.

Every persistent NameID depends on the deployment secret (rules/pseudonyms.py). A
secret changed by mistake (a new vault entry, a typo in a new deployment, a
vendor switch that forgot to carry it over) would give every person a new
identity on every platform: their progress and documents there would seem lost.
So the first NameID issued records the secret's fingerprint, and from then on
the IdP refuses to answer with any other secret (`SecretChanged`) until an
operator accepts the change (`accept_secret`, `relais sso idp-secret --accept-change`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, insert, select, update
from sqlalchemy.exc import IntegrityError

from ..rules.pseudonyms import secret_fingerprint
from ..tables import idp_secret as secret_t

log = logging.getLogger(__name__)
PURPOSE = "nameid"


@dataclass(frozen=True)
class SecretRecord:
    fingerprint: str
    since: datetime
    previous_fingerprint: str | None


class SecretChanged(Exception):
    """The deployment secret is not the one the NameIDs issued so far derive from."""

    def __init__(self, recorded: SecretRecord, current: str):
        self.recorded = recorded
        self.current = current
        super().__init__(
            f"the deployment secret (fingerprint {current[:16]}) is not the one this IdP's pseudonymous NameIDs "
            f"have been derived from since {recorded.since:%Y-%m-%d %H:%M} UTC (fingerprint "
            f"{recorded.fingerprint[:16]}): with it, every person would appear as a new user on every platform. "
            "Restore the previous secret, or, if the change is meant, run `relais sso idp-secret --accept-change` "
            "(see the sso README, 'Pseudonymous identifiers')")


def recorded_secret(conn: Connection) -> SecretRecord | None:
    row = conn.execute(select(secret_t.c.fingerprint, secret_t.c.since, secret_t.c.previous_fingerprint)
                       .where(secret_t.c.purpose == PURPOSE)).first()
    return None if row is None else SecretRecord(row.fingerprint, _utc(row.since), row.previous_fingerprint)


def check_secret(conn: Connection, secret: bytes, now: datetime) -> SecretRecord:
    """The record NameIDs derive from; the first call records `secret`. Raises `SecretChanged` on a mismatch."""
    ours = secret_fingerprint(secret)
    record = recorded_secret(conn)
    if record is None:
        try:
            with conn.begin_nested():  # another instance may record it at the same moment
                conn.execute(insert(secret_t).values(purpose=PURPOSE, fingerprint=ours, since=now))
        except IntegrityError:
            record = recorded_secret(conn)
        else:
            log.info("first pseudonymous NameID: the deployment secret (fingerprint %s) is now recorded", ours[:16])
            return SecretRecord(ours, now, None)
    assert record is not None
    if record.fingerprint != ours:
        raise SecretChanged(record, ours)
    return record


def accept_secret(conn: Connection, secret: bytes, now: datetime) -> tuple[SecretRecord | None, SecretRecord]:
    """Make `secret` the one NameIDs derive from (an operator's decision); returns (before, after)."""
    ours = secret_fingerprint(secret)
    before = recorded_secret(conn)
    if before is None:
        conn.execute(insert(secret_t).values(purpose=PURPOSE, fingerprint=ours, since=now))
        after = SecretRecord(ours, now, None)
    elif before.fingerprint == ours:
        return before, before
    else:
        conn.execute(update(secret_t).where(secret_t.c.purpose == PURPOSE)
                     .values(fingerprint=ours, since=now, previous_fingerprint=before.fingerprint))
        after = SecretRecord(ours, now, before.fingerprint)
        log.warning("deployment secret for pseudonymous NameIDs changed by an operator: %s replaces %s; every "
                    "platform now sees new identifiers", ours[:16], before.fingerprint[:16])
    return before, after


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value
