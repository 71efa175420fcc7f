"""What a failed command says: what failed, where, and what to do, in a few lines without personal data.

`explain(exc, settings)` turns what ended a command into a `Failure`: a
database locked, unreachable, missing or lost mid-command, the broker away, a
file that cannot be read or written, or else an unexpected error. It names the
database or broker from the settings (never a password) and quotes no more of a
database error than the driver's first line: no SQL statement, no parameters
(pupils' ids, names, e-mail addresses), no `DETAIL` row. `app/cli.py` prints it
for every `relais` command, with the traceback (`format_exception`, just as
safe) under `--debug`.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError

from relais.config import Settings, amqp_nodes, redact_url
from relais.db import sqlite_busy_timeout

from .logs import describe_error

BROKER_MODULES = ("amqp", "pika", "kombu", "nameko", "relais.bus")  # whose errors are the broker's


@dataclass(frozen=True)
class Failure:
    """What failed and where (one line), and what to do about it (one line); `known`: a fault of what
    the command reaches (database, broker, files), not an unexpected error."""

    what: str
    todo: str
    known: bool = True

    def render(self, command: str) -> str:
        return f"{command}: {self.what}\n{self.todo}"


def explain(exc: BaseException, settings: Settings | None = None) -> Failure:
    """The `Failure` that `exc` means, for an operator (see the module docstring)."""
    driver = _driver_error(exc)
    if driver is not None:
        return _database(driver, settings)
    if isinstance(exc, DBAPIError | ArgumentError):
        return Failure(f"{_database_where(settings)} failed: {describe_error(exc)}",
                       "Check RELAIS_DATABASE_URL, then run the command again.")
    if _is_broker(exc):
        return Failure(f"{_broker_where(settings)}: {describe_error(exc)}",
                       "Check RELAIS_AMQP_URI and that RabbitMQ runs (`relais status` shows it), "
                       "then run the command again.")
    if isinstance(exc, OSError):
        return _os(exc)
    return Failure(f"failed unexpectedly: {describe_error(exc)}",
                   "Run it again with `relais --debug …` to see where, and report it with that traceback.",
                   known=False)


# -- the database --------------------------------------------------------------------------


def _driver_error(exc: BaseException) -> BaseException | None:
    """The database driver's own error behind `exc` (SQLAlchemy wraps it; a listener may raise it bare)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, DBAPIError) and current.orig is not None:
            return current.orig
        if isinstance(current, sqlite3.Error) or type(current).__module__.split(".")[0] == "psycopg":
            return current
        current = current.__cause__ or current.__context__
    return None


def _database(err: BaseException, settings: Settings | None) -> Failure:
    where = _database_where(settings)
    first = _first_line(err)
    low = first.lower()
    if isinstance(err, sqlite3.Error):
        if "locked" in low:
            return Failure(
                f"{where} is locked: another process held its write lock longer than the busy timeout "
                f"({_busy_timeout()}, RELAIS_SQLITE_BUSY_TIMEOUT).",
                "Let that process finish (an import, a service's outbox relay, a backup) or stop it, "
                "then run the command again.")
        if "unable to open" in low:
            return Failure(f"cannot open {where}.",
                           "Check that RELAIS_DATA_DIR (or RELAIS_DATABASE_URL) names a folder this user can "
                           "write, then run the command again.")
        if "readonly" in low or "read-only" in low:
            return Failure(f"{where} is read-only for this user.",
                           "Give this user write access to the file and its folder (SQLite writes a -wal and a "
                           "-shm file beside it), then run the command again.")
        if "disk" in low or "malformed" in low or "not a database" in low:
            return Failure(f"{where} failed: {first}.",
                           "Check the disk (free space, errors); a damaged file is restored from its last backup "
                           "(deploy/README.md).")
        return Failure(f"{where} failed: {first}.", "Run the command again with `relais --debug …` to see where.")
    name = type(err).__name__
    if name == "InvalidCatalogName" or ("database" in low and "does not exist" in low):
        return Failure(f"{where} does not exist (it may have been dropped): {first}.",
                       "Create it (createdb) or fix RELAIS_DATABASE_URL, then run `relais db upgrade`.")
    if "password authentication failed" in low or name == "InvalidPassword":
        return Failure(f"{where} refused the login: {first}.",
                       "Check the user and password in RELAIS_DATABASE_URL.")
    if name in ("AdminShutdown", "CrashShutdown") or _lost(low):
        return Failure(f"the connection to {where} was lost mid-command: {first}. What the command had not "
                       "committed was rolled back.",
                       "Check that PostgreSQL runs (and that nobody ends Relais's sessions), "
                       "then run the command again.")
    if name in ("OperationalError", "ConnectionTimeout") or "connection" in low:
        return Failure(f"cannot reach {where}: {first}.",
                       "Check RELAIS_DATABASE_URL and that PostgreSQL runs and accepts connections from here, "
                       "then run the command again.")
    return Failure(f"{where} refused the command: {name}: {first}.",
                   "Run the command again with `relais --debug …` to see where, and report it with that traceback.")


def _lost(low: str) -> bool:
    return any(s in low for s in ("terminating connection", "server closed the connection", "consuming input failed",
                                  "connection is lost", "the connection is closed", "ssl syscall error: eof"))


def _database_where(settings: Settings | None) -> str:
    url = (settings or Settings.from_env()).database_url
    try:
        parsed = make_url(url)
    except ArgumentError:
        return f"the database of RELAIS_DATABASE_URL ({redact_url(url)})"
    if parsed.get_backend_name() == "sqlite":
        return f"the SQLite database {parsed.database or ':memory:'}"
    if parsed.get_backend_name() == "postgresql":
        return f"PostgreSQL at {parsed.host or 'localhost'}:{parsed.port or 5432}, database {parsed.database!r}"
    return f"the database {redact_url(parsed.render_as_string(hide_password=False))}"


def _busy_timeout() -> str:
    try:
        return f"{sqlite_busy_timeout():g} s"
    except ValueError:
        return "as configured"


# -- the broker, files ---------------------------------------------------------------------


def _is_broker(exc: BaseException) -> bool:
    module = type(exc).__module__
    return any(module == m or module.startswith(m + ".") for m in BROKER_MODULES)


def _broker_where(settings: Settings | None) -> str:
    try:
        nodes = amqp_nodes((settings or Settings.from_env()).amqp_uri)
    except ValueError as exc:
        return f"RabbitMQ ({exc})"
    return f"RabbitMQ at {', '.join(n.hostport for n in nodes)} (vhost {nodes[0].virtual_host!r})"


def _os(exc: OSError) -> Failure:
    if exc.filename is not None:
        target = f"{exc.filename}" + (f" -> {exc.filename2}" if exc.filename2 is not None else "")
        return Failure(f"{exc.strerror or type(exc).__name__}: {target}",
                       "Check that the path exists and that this user may read (or write) it, "
                       "then run the command again.")
    return Failure(f"{describe_error(exc)}",
                   "Check that what the command reaches runs (RELAIS_DATABASE_URL, RELAIS_AMQP_URI, the object "
                   "store), then run the command again; `relais status` shows what is down.")


def _first_line(err: BaseException) -> str:
    text = (str(err).strip().splitlines() or [type(err).__name__])[0].strip().rstrip(".")
    return text if len(text) <= 300 else text[:300] + "…"
