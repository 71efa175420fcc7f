"""Database engines and schema migrations (SQLAlchemy 2 + Alembic).

SQLite is the embedded default and PostgreSQL the production database; every
table of every service is described once, in SQLAlchemy Core `MetaData`, and
created through the Alembic history in `relais/migrations`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, Connection, Engine, Table, any_, bindparam, create_engine, event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError

if TYPE_CHECKING:
    from alembic.config import Config

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
SQLITE_PAGE_SIZE = 16384
MIGRATION_LOCK_KEY = 0x52454D47  # "REMG": one migration at a time per PostgreSQL database
SQLITE_BUSY_TIMEOUT_S = 60.0  # RELAIS_SQLITE_BUSY_TIMEOUT's default
COPY_FROM_ROWS = 100  # PostgreSQL: rows from which `bulk_insert` COPYs (a multi-row INSERT is one round trip, COPY two)
VALUES_ROWS = 1000  # PostgreSQL: rows in one multi-row INSERT


def sqlite_busy_timeout(env: Mapping[str, str] | None = None) -> float:
    """Seconds a SQLite writer waits for another's write transaction before failing "database is locked".

    `RELAIS_SQLITE_BUSY_TIMEOUT`, default 60: a long import holds the write lock for its whole run,
    and a relay or a command queues up behind it this long.
    """
    env = os.environ if env is None else env
    value = (env.get("RELAIS_SQLITE_BUSY_TIMEOUT") or "").strip()
    if not value:
        return SQLITE_BUSY_TIMEOUT_S
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not 0 <= seconds < 86400:
        raise ValueError(f"RELAIS_SQLITE_BUSY_TIMEOUT={value!r} is not a number of seconds (0 to 86399)")
    return seconds


def make_engine(url: str, **kwargs) -> Engine:
    """An engine for `url`; SQLite gets WAL, a busy timeout (RELAIS_SQLITE_BUSY_TIMEOUT) and its folder created.

    Its errors never quote a statement's parameters (`hide_parameters`): they hold pupils' ids,
    names and e-mail addresses, and errors reach messages, logs and RPC answers.
    """
    kwargs.setdefault("hide_parameters", True)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(url, connect_args={"timeout": sqlite_busy_timeout()}, **kwargs)

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):
            # We emit BEGIN ourselves (below): pysqlite's implicit one breaks SAVEPOINT.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            # A new database only (then fixed): 16 KB pages hold ten directory records where 4 KB
            # pages hold two, so a bulk import splits, logs and checkpoints fewer of them.
            cur.execute(f"PRAGMA page_size={SQLITE_PAGE_SIZE}")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA temp_store=MEMORY")
            cur.execute("PRAGMA cache_size=-16384")  # 16 MB: importer and parser processes each have one
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn):
            # Writers take the write lock up front, so a long import and a relay
            # queue up (busy timeout) instead of failing on a stale snapshot.
            # Readers use deferred transactions: WAL snapshots, never blocked.
            mode = "IMMEDIATE" if conn.get_execution_options().get("relais_writer") else "DEFERRED"
            conn.connection.dbapi_connection.execute(f"BEGIN {mode}")  # to the driver: the cheapest way

        return engine
    if parsed.get_backend_name() == "postgresql" and parsed.drivername == "postgresql":
        # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    return create_engine(parsed, pool_pre_ping=True, **kwargs)


def writer(engine: Engine) -> Engine:
    """The engine for transactions that write: `with writer(engine).begin() as conn:`.

    Made once per engine (an option engine costs more to make than a small transaction takes).
    """
    made = engine.__dict__.get("_relais_writer")
    if made is None:
        made = engine.__dict__["_relais_writer"] = engine.execution_options(relais_writer=True)
    return made


def is_sqlite(engine: Engine) -> bool:
    return engine.dialect.name == "sqlite"


def alembic_config(url: str) -> Config:
    # Alembic is imported by the functions that migrate: it costs 0.15 s and 16 MB to load, which every
    # `relais` command and every worker process would pay otherwise.
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(engine: Engine) -> None:
    """Bring the database schema to the newest revision (idempotent)."""
    from alembic import command

    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with writer(engine).begin() as conn:
        if conn.dialect.name == "postgresql":
            # Instances starting together on a new database: one migrates, the others wait, then find
            # nothing to do. (SQLite writers already queue up: BEGIN IMMEDIATE.)
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({MIGRATION_LOCK_KEY})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "heads")


def current_revisions(engine: Engine) -> tuple[str, ...]:
    """The revisions the database is at, sorted: one per branch of the history (services branch it)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return tuple(sorted(MigrationContext.configure(conn).get_current_heads()))


@dataclass(frozen=True)
class MigrationState:
    """Where a database stands against this version's migrations (`migration_state`)."""

    current: tuple[str, ...]  # the revisions it is at; empty: never migrated
    pending: int  # migrations of this version it lacks
    unknown: tuple[str, ...] = ()  # revisions this version does not know (a newer Relais migrated it)


def migration_state(conn: Connection) -> MigrationState:
    """How many of this version's migrations the database lacks (read only: nothing is migrated)."""
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config("sqlite://"))  # the history only: no database opened
    current = tuple(sorted(MigrationContext.configure(conn).get_current_heads()))
    known = {r.revision for r in script.walk_revisions()}
    unknown = tuple(r for r in current if r not in known)
    applied: set[str] = set()
    for head in current:
        if head not in unknown:  # one head at a time: alembic refuses heads whose histories overlap
            applied.update(r.revision for r in script.iterate_revisions(head, "base"))
    return MigrationState(current, len(known - applied), unknown)


def insert_or_update(conn: Connection, table: Table) -> postgresql.Insert | sqlite.Insert:
    """An INSERT into `table` for `conn`'s database, to finish with `.on_conflict_do_update(...)` (or
    `_do_nothing`): PostgreSQL and SQLite each have their own."""
    return postgresql.insert(table) if conn.dialect.name == "postgresql" else sqlite.insert(table)


def key_in(conn: Connection, column: ColumnElement[Any], keys: Sequence[Any]) -> ColumnElement[bool]:
    """`column IN keys`; on PostgreSQL `column = ANY(:keys)`, the keys one array parameter.

    An IN-list is a parameter per key: its statement is compiled anew for each length and its
    hundreds of parameters typed one by one, which cost more than the lookup itself; the array's
    statement is the same whatever the number of keys.
    """
    if conn.dialect.name == "postgresql":
        return column == any_(bindparam(None, list(keys), type_=postgresql.ARRAY(column.type)))
    return column.in_(keys)


def analyze(conn: Connection, *table_names: str) -> None:
    """PostgreSQL: refresh the planner's statistics of tables a bulk write has just filled (in its transaction).

    Autovacuum analyzes them some time after the commit, if it runs at all: until then the planner
    takes them for as small as when last analyzed (empty, after a migration), and scans a million
    grants to find one person's. SQLite's planner needs no statistics to use the indexes.
    """
    if conn.dialect.name == "postgresql" and table_names:
        conn.exec_driver_sql(f"ANALYZE {', '.join(table_names)}")


def bulk_insert(conn: Connection, table_name: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]],
                *, ignore_conflicts: bool = False) -> None:
    """INSERT many rows of tuples, past SQLAlchemy's per-row parameter processing.

    Values must already be plain driver types (str, int, bool, bytes, datetime, None).
    SQLite: the driver's executemany (its own insert costs less than SQLAlchemy's
    processing on the bulk import path). PostgreSQL: one COPY (`copy_rows`), or
    multi-row INSERTs (`_insert_values`) for a few rows (a COPY costs two round
    trips) and with `ignore_conflicts`: executemany there costs a statement per
    row, each executed and answered apart, and made a million persons'
    evaluation or import spend most of its time in the driver.
    """
    if not rows:
        return
    if conn.dialect.name == "postgresql":
        if ignore_conflicts or len(rows) < COPY_FROM_ROWS:
            _insert_values(conn, table_name, columns, rows, " ON CONFLICT DO NOTHING" if ignore_conflicts else "")
        else:
            copy_rows(conn, table_name, columns, rows)
        return
    conn.exec_driver_sql(
        f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES ({', '.join([_mark(conn)] * len(columns))})"
        + (" ON CONFLICT DO NOTHING" if ignore_conflicts else ""),
        rows,
    )


def copy_rows(conn: Connection, table_name: str, columns: Sequence[str], rows: Iterable[tuple[Any, ...]]) -> None:
    """PostgreSQL: the rows into the table in one `COPY … FROM STDIN` (text format), in `conn`'s transaction.

    Each value is written as psycopg writes a parameter, and PostgreSQL reads it as the column's type.
    A driver error is raised as SQLAlchemy raises it (IntegrityError…), without the rows: COPY's
    errors quote the row they stopped at, and rows hold pupils' names.
    """
    sql = f"COPY {table_name} ({', '.join(columns)}) FROM STDIN"
    dbapi_connection = conn.connection.driver_connection  # psycopg's own Connection: it has COPY
    assert dbapi_connection is not None  # a Connection in use holds its driver connection
    try:
        with dbapi_connection.cursor() as cursor, cursor.copy(sql) as copy:
            for row in rows:
                copy.write_row(row)
    except conn.dialect.loaded_dbapi.Error as exc:
        invalidated = conn.dialect.is_disconnect(exc, dbapi_connection, None)
        if invalidated:
            conn.invalidate(exc)
        raise DBAPIError.instance(sql, None, _without_context(exc), conn.dialect.loaded_dbapi.Error,
                                  hide_parameters=True, connection_invalidated=invalidated,
                                  dialect=conn.dialect) from None


def _without_context(exc: Exception) -> Exception:
    """The driver's error with its first line only: the DETAIL and CONTEXT lines of a COPY quote row values."""
    return type(exc)((str(exc).strip().splitlines() or [""])[0])  # psycopg's errors take their message


def _insert_values(conn: Connection, table_name: str, columns: Sequence[str], rows: Sequence[tuple[Any, ...]],
                   tail: str) -> None:
    """PostgreSQL: INSERT … VALUES (…), (…) … `tail`, VALUES_ROWS rows a statement (one round trip each)."""
    one = f"({', '.join(['%s'] * len(columns))})"
    for i in range(0, len(rows), VALUES_ROWS):
        chunk = rows[i:i + VALUES_ROWS]
        conn.exec_driver_sql(
            f"INSERT INTO {table_name} ({', '.join(columns)}) VALUES {', '.join([one] * len(chunk))}{tail}",
            tuple(v for row in chunk for v in row),
        )


def bulk_add(conn: Connection, table_name: str, key: Sequence[str], columns: Sequence[str], add: str,
             rows: Sequence[tuple[Any, ...]]) -> None:
    """INSERT many rows of tuples (`key` then `columns`, `add` among them); a row whose `key` is there already
    adds its `add` to the stored one instead. Values are plain driver types, as for `bulk_insert`."""
    if rows:
        names = [*key, *columns]
        conn.exec_driver_sql(
            f"INSERT INTO {table_name} ({', '.join(names)}) VALUES ({', '.join([_mark(conn)] * len(names))}) "
            f"ON CONFLICT ({', '.join(key)}) DO UPDATE SET {add} = {table_name}.{add} + excluded.{add}",
            rows,
        )


def bulk_update(conn: Connection, table_name: str, key: str, columns: Sequence[str],
                rows: Sequence[tuple[Any, ...]]) -> None:
    """UPDATE many rows; each tuple holds the new `columns` values then the key."""
    if rows:
        m = _mark(conn)
        conn.exec_driver_sql(
            f"UPDATE {table_name} SET {', '.join(f'{c} = {m}' for c in columns)} WHERE {key} = {m}",
            rows,
        )


def bulk_delete(conn: Connection, table_name: str, key: str, keys: Sequence[Any]) -> None:
    """DELETE the rows with these keys, through the driver's executemany."""
    if keys:
        conn.exec_driver_sql(f"DELETE FROM {table_name} WHERE {key} = {_mark(conn)}", [(k,) for k in keys])


def _mark(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"
