"""INSERT … ON CONFLICT DO UPDATE on the database in use: PostgreSQL and SQLite each have their own."""
from __future__ import annotations

from sqlalchemy import Connection, Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_or_update(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `table` for `conn`'s database, to finish with `.on_conflict_do_update(...)`."""
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)
