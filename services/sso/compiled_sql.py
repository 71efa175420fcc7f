"""The login path's statements: SQLAlchemy Core statements compiled once per dialect, run on the driver's cursor.

A federated login runs about a dozen small statements (replay cache, pending
request, session, ticket...). SQLAlchemy's execution machinery (an execution
context, parameter and result objects, events) costs several times what SQLite
takes to run each of them, so these statements skip it:

- the statement is still written with SQLAlchemy Core and compiled by
  SQLAlchemy, once per dialect (SQLite, PostgreSQL), with bound parameters;
- parameters go through the column types' own bind processors and results
  through their result processors, so what is stored and read back is exactly
  what `Connection.execute` would store and read (other code, e.g. purges,
  keeps using `Connection.execute` on the same rows);
- the transaction stays the caller's SQLAlchemy `Connection`'s (`writer(engine).begin()`
  emits BEGIN IMMEDIATE on SQLite, commits, rolls back): only the statement goes
  straight to the DB-API cursor of that connection.

Driver errors are raised as SQLAlchemy's (`sqlalchemy.exc.IntegrityError`...), and a lost
connection is invalidated, as `Connection.execute` does. SQLAlchemy's statement events
(`before_cursor_execute`...) do not see these statements; its transaction events do.
Statements with expanding (IN-list) parameters are not supported here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection
from sqlalchemy.engine.interfaces import DBAPIModule, Dialect
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.sql.dml import UpdateBase
from sqlalchemy.sql.selectable import Select

_Processor = Callable[[Any], Any] | None
_Statement = Select[Any] | UpdateBase  # SELECT, or INSERT / UPDATE / DELETE (RETURNING or not)


@dataclass(frozen=True)
class _Compiled:
    sql: str
    positional: bool
    names: tuple[str, ...]  # bind names, in the order of the SQL's markers when positional
    keys: tuple[str, ...]  # the caller's parameter key for each bind name
    fixed: tuple[Any, ...]  # the value of a bind the caller does not give (a literal, e.g. kind == "Eleve"; None
    # for an insert's column), or _GIVEN: the caller must give it
    binds: tuple[_Processor, ...]
    columns: tuple[str, ...]  # result column keys (SELECT columns or RETURNING)
    results: tuple[_Processor, ...]


_GIVEN = object()


class Statement:
    """One Core statement (or one per dialect name), compiled on first use with each dialect.

    `first` / `all` return rows as dicts keyed by column key; `run` returns how many rows the statement
    changed (an INSERT, UPDATE or DELETE without RETURNING).
    """

    def __init__(self, statement: _Statement | Mapping[str, _Statement]) -> None:
        self._statements = statement if isinstance(statement, Mapping) else None
        self._statement = None if isinstance(statement, Mapping) else statement
        self._compiled: dict[str, _Compiled] = {}

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect.name)
        if compiled is None:
            compiled = self._compiled[dialect.name] = self._compile(dialect)
        return compiled

    def _compile(self, dialect: Dialect) -> _Compiled:
        if self._statements is not None:
            if dialect.name not in self._statements:
                raise ValueError(f"no form of this statement for the {dialect.name} dialect")
            statement = self._statements[dialect.name]
        elif self._statement is not None:
            statement = self._statement
        else:  # __init__ sets one or the other
            raise ValueError("no statement")
        column_keys: list[str] = []
        table = getattr(statement, "table", None)
        if getattr(statement, "is_insert", False) and not getattr(statement, "_values", None) and table is not None:
            # insert(t): every column is a parameter; one the caller leaves out is NULL, as when
            # `Connection.execute` omits it (the database refuses it if the column is NOT NULL). Defaults
            # and generated keys would be skipped that way: a table with any is refused.
            defaulted = [c.key for c in table.c if c.default is not None or c.server_default is not None
                         or c is table.autoincrement_column]
            if defaulted:
                raise ValueError(f"insert into {table.name}: columns with defaults are not supported: {defaulted}")
            column_keys = [c.key for c in table.c]
        compiled = statement.compile(dialect=dialect, column_keys=column_keys or None)
        if getattr(compiled, "escaped_bind_names", None):
            raise ValueError(f"bind names needing escapes are not supported: {sorted(compiled.escaped_bind_names)}")
        names = tuple(compiled.positiontup or ()) if compiled.positional else tuple(compiled.binds)
        keys: list[str] = []
        fixed: list[Any] = []
        binds: list[_Processor] = []
        for name in names:
            bind = compiled.binds[name]
            if bind.expanding:
                raise ValueError(f"expanding parameter {bind.key!r} is not supported here")
            keys.append(bind.key)
            if bind.key in column_keys:
                fixed.append(None)
            else:
                fixed.append(_GIVEN if bind.required or bind.value is None else bind.effective_value)
            binds.append(bind.type.dialect_impl(dialect).bind_processor(dialect))
        columns = tuple(statement.exported_columns)  # SELECT columns, or RETURNING ones (none without)
        result_keys: list[str] = []
        for column in columns:
            if column.key is None:
                raise ValueError(f"result columns need a name: {column}")
            result_keys.append(column.key)
        return _Compiled(
            sql=compiled.string, positional=compiled.positional, names=names, keys=tuple(keys),
            fixed=tuple(fixed), binds=tuple(binds), columns=tuple(result_keys),
            results=tuple(c.type.dialect_impl(dialect).result_processor(dialect, None) for c in columns))

    def _run(self, conn: Connection, params: Mapping[str, Any]) -> tuple[list[dict[str, Any]], int]:
        c = self._for(conn.dialect)
        values = []
        for key, fixed, process in zip(c.keys, c.fixed, c.binds, strict=True):
            if fixed is _GIVEN:
                try:
                    value = params[key]
                except KeyError:
                    raise KeyError(f"parameter {key!r} missing for: {c.sql[:80]}") from None
            else:
                value = params.get(key, fixed)
            values.append(value if process is None or value is None else process(value))
        dbapi_connection = conn.connection.dbapi_connection
        assert dbapi_connection is not None  # a connection in use has its driver connection
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(c.sql, tuple(values) if c.positional else dict(zip(c.names, values, strict=True)))
            raw = cursor.fetchall() if c.columns else ()
            count = cursor.rowcount
        except conn.dialect.loaded_dbapi.Error as exc:
            raise _as_sqlalchemy_error(conn, dbapi_connection, c.sql, exc) from exc
        finally:
            cursor.close()
        rows = [{key: value if process is None or value is None else process(value)
                 for key, process, value in zip(c.columns, c.results, row, strict=True)} for row in raw]
        return rows, count

    def first(self, conn: Connection, params: Mapping[str, Any]) -> dict[str, Any] | None:
        rows, _ = self._run(conn, params)
        return rows[0] if rows else None

    def all(self, conn: Connection, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        return self._run(conn, params)[0]

    def run(self, conn: Connection, params: Mapping[str, Any]) -> int:
        return self._run(conn, params)[1]


def _as_sqlalchemy_error(conn: Connection, dbapi_connection: Any, sql: str, exc: DBAPIModule.Error) -> StatementError:
    """The driver's error as `Connection.execute` would raise it (IntegrityError, OperationalError...), without
    the parameters (they hold personal data); a lost connection is invalidated, so the pool replaces it."""
    invalidated = conn.dialect.is_disconnect(exc, dbapi_connection, None)
    if invalidated:
        conn.invalidate(exc)
    return DBAPIError.instance(sql, None, exc, conn.dialect.loaded_dbapi.Error, hide_parameters=True,
                               connection_invalidated=invalidated, dialect=conn.dialect)
