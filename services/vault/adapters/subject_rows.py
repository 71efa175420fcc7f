"""The access log's rows about one person, for a subject request (the item index: `index`)."""
from __future__ import annotations

from sqlalchemy import Connection, update

from .tables import vault_access_log as log_t


def pseudonymize_access_log(conn: Connection, tenant: str, person: str, subject_hash: str) -> int:
    """Who read the person's data and when stays (accountability), under the keyed hash instead of the jointure."""
    return conn.execute(update(log_t).where(log_t.c.tenant == tenant, log_t.c.person == person)
                        .values(person=subject_hash, item_id=None)).rowcount
