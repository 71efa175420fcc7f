"""A person's rows in the transfer checkpoints, deleted when the person is erased on request (`vault/subject.py`)."""
from __future__ import annotations

from sqlalchemy import Connection, delete

from .tables import vault_transfer_item, vault_transfer_owner


def delete_person_rows(conn: Connection, person: str) -> int:
    n = 0
    for table in (vault_transfer_item, vault_transfer_owner):
        n += conn.execute(delete(table).where(table.c.person == person)).rowcount
    return n
