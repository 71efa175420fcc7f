"""Statements that need no transaction of their own: on PostgreSQL, run in autocommit to save round trips.

With psycopg, the first statement of a transaction costs one more round trip
(BEGIN) and its end another (COMMIT, or the ROLLBACK the pool sends when a
read-only connection goes back): three round trips for one SELECT, each a wait
for the server process to be scheduled on a busy machine. A statement that
stands alone — a read, or one single write — loses nothing by committing on its
own: under READ COMMITTED (PostgreSQL's default, ours) every statement of a
transaction takes its own snapshot anyway, and one statement is atomic by itself.

`alone(conn)` switches the driver connection to autocommit for the statements
run in it and back after; SQLAlchemy does not see it (the statements are
compiled_sql.py's, on the driver's cursor), so the connection goes back to the
pool as it came. On SQLite nothing changes: pysqlite already runs a statement
outside BEGIN on its own, and writers keep taking BEGIN IMMEDIATE.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection


@contextmanager
def alone(conn: Connection) -> Iterator[Connection]:
    """`conn`, its statements each committed alone (PostgreSQL) until the block ends; no effect in a transaction.

    Only for what one statement does by itself: a read, or one write that needs no other to be atomic with.
    """
    driver: Any = conn.connection.dbapi_connection if conn.dialect.name == "postgresql" else None
    if driver is None or driver.autocommit or driver.info.transaction_status != 0:  # 0: IDLE, no transaction
        yield conn
        return
    driver.autocommit = True
    try:
        yield conn
    finally:
        if not driver.closed:  # a lost connection is invalidated: nothing to give back
            driver.autocommit = False


@contextmanager
def writing(conn: Connection, *, statements: int) -> Iterator[Connection]:
    """A transaction on `conn` for several writes (SQLite: BEGIN IMMEDIATE on a `writer` connection); one write
    needs none, and commits alone (`alone`): on PostgreSQL one round trip instead of three."""
    if statements > 1:
        with conn.begin():
            yield conn
    else:
        with alone(conn):
            yield conn
