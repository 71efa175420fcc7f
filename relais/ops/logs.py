"""Log lines as text or JSON, carrying the bus context of the message being handled, without personal data.

`RELAIS_LOG_FORMAT` is `text` or `json`; unset, logs are text on a terminal
and JSON otherwise (a container, a systemd journal, a pipe), one object a
line: `timestamp` (UTC), `level`, `service`, `logger`, `message`, and while a
consumer handles a message its `event_id`, `event_type`, `correlation_id` and
`causation_id` (for a batch: the `correlation_id` its events share, if they
do, and `batch_size`); an HTTP request's access line (logger `relais.http.access`)
adds `http_method`, `http_path`, `http_status`, `http_bytes` and `duration_ms`
(relais/ops/server.py). `RELAIS_LOG_LEVEL` sets the level (`DEBUG`, `INFO`,
`WARNING`, `ERROR`).

Personal data stays out: log calls name people by opaque ids only (jointures,
session refs), and errors are logged through `describe_error`, which drops
what a database error quotes of the data (SQL parameters, PostgreSQL's
`DETAIL: Failing row contains (...)`). The handler's filter applies it to
exceptions passed as log arguments and to tracebacks, as a safety net.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
import weakref
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson
from sqlalchemy.exc import StatementError

FORMATS = ("text", "json")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")

_bus_context: ContextVar[Mapping[str, Any] | None] = ContextVar("relais_bus_context", default=None)


# -- the bus context -----------------------------------------------------------------------


@contextmanager
def event_context(event: Mapping[str, Any]) -> Iterator[None]:
    """Log records made inside carry this event's ids (set by the consumer around its handler)."""
    token = _bus_context.set({
        "event_id": event.get("id"), "event_type": event.get("type"),
        "correlation_id": event.get("correlation_id"), "causation_id": event.get("causation_id"),
    })
    try:
        yield
    finally:
        _bus_context.reset(token)


@contextmanager
def batch_context(events: Sequence[Mapping[str, Any]]) -> Iterator[None]:
    """Like `event_context` for a batch: its size, and the correlation id its events share, if one."""
    correlations = {e.get("correlation_id") for e in events}
    token = _bus_context.set({
        "correlation_id": correlations.pop() if len(correlations) == 1 else None, "batch_size": len(events)})
    try:
        yield
    finally:
        _bus_context.reset(token)


def bus_context() -> dict[str, Any]:
    """The ids of the message being handled in this thread (or green thread); empty outside a handler."""
    return {k: v for k, v in (_bus_context.get() or {}).items() if v is not None}


# -- errors, safe to log -------------------------------------------------------------------


def describe_error(exc: BaseException, limit: int = 300) -> str:
    """`Type: message` of an exception, without what database errors quote of the data.

    SQLAlchemy renders the statement's parameters into its errors, and
    PostgreSQL adds `DETAIL` lines that can hold a whole row (names, e-mail
    addresses): for those only the driver's first line is kept, e.g.
    `IntegrityError (NotNullViolation): null value in column "x" of relation "y" violates not-null constraint`.
    """
    if isinstance(exc, StatementError) and exc.orig is not None:
        return f"{type(exc).__name__} ({type(exc.orig).__name__}): {_first_line(exc.orig, limit)}"
    if type(exc).__module__.split(".")[0] in ("psycopg", "sqlite3"):
        return f"{type(exc).__name__}: {_first_line(exc, limit)}"
    text = str(exc).replace("\n", " ")
    text = text if len(text) <= limit else text[:limit] + "…"
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _first_line(exc: BaseException, limit: int) -> str:
    text = (str(exc).strip().splitlines() or [""])[0]
    return text if len(text) <= limit else text[:limit] + "…"


def format_exception(exc: BaseException) -> str:
    """A traceback whose exception lines go through `describe_error` (causes and contexts included)."""
    chain: list[tuple[BaseException, str | None]] = []
    seen: set[int] = set()
    current: BaseException | None = exc
    link: str | None = None
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append((current, link))
        if current.__cause__ is not None:
            current, link = current.__cause__, "The above exception was the direct cause of the following exception:"
        elif current.__context__ is not None and not current.__suppress_context__:
            current, link = current.__context__, "During handling of the above exception, another exception occurred:"
        else:
            current = None
    parts: list[str] = []
    for i, (err, _link) in enumerate(reversed(chain)):
        if i:
            parts.append(f"\n{chain[len(chain) - i][1]}\n\n")
        parts.append("Traceback (most recent call last):\n")
        parts.extend(traceback.format_tb(err.__traceback__))
        parts.append(describe_error(err, limit=1000) + "\n")
        parts.extend(f"{note}\n" for note in getattr(err, "__notes__", ()) if isinstance(note, str))
    return "".join(parts).rstrip("\n")


# -- formatting ----------------------------------------------------------------------------


class ContextFilter(logging.Filter):
    """Stamps each record with the service and the bus context; exceptions in arguments become safe text."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        record.service = self.service
        record.bus = bus_context()
        args = record.args
        if isinstance(args, tuple) and any(isinstance(a, BaseException) for a in args):
            record.args = tuple(describe_error(a) if isinstance(a, BaseException) else a for a in args)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object a line (see the module docstring for its keys)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds")
            .replace("+00:00", "Z"),
            "level": record.levelname,
            "service": getattr(record, "service", None),
            "logger": record.name,
            "message": record.getMessage(),
        }
        doc.update(getattr(record, "bus", None) or {})
        doc.update(getattr(record, "fields", None) or {})  # a record's own fields (an access log line's)
        if record.exc_info and record.exc_info[1] is not None:
            doc["exception"] = format_exception(record.exc_info[1])
        return orjson.dumps(doc, default=str).decode()


class TextFormatter(logging.Formatter):
    """`time LEVEL service logger: message [correlation_id=… event_id=…]`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(service)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "service"):
            record.service = "-"
        line = super().format(record)
        bus = getattr(record, "bus", None)
        if bus:
            first, _, rest = line.partition("\n")
            line = first + " [" + " ".join(f"{k}={v}" for k, v in bus.items()) + "]" + (f"\n{rest}" if rest else "")
        return line

    def formatException(self, ei) -> str:  # noqa: N802 - logging's name
        return format_exception(ei[1]) if ei and ei[1] is not None else ""


# -- set-up --------------------------------------------------------------------------------


class LogConfigError(ValueError):
    """RELAIS_LOG_FORMAT or RELAIS_LOG_LEVEL holds a value we do not know."""


def log_format(env: Mapping[str, str] | None = None, stream: TextIO | None = None) -> str:
    """`text` or `json`: RELAIS_LOG_FORMAT, else text when `stream` (stderr) is a terminal."""
    env = os.environ if env is None else env
    value = (env.get("RELAIS_LOG_FORMAT") or "").strip().lower()
    if not value:
        stream = sys.stderr if stream is None else stream
        return "text" if getattr(stream, "isatty", lambda: False)() else "json"
    if value not in FORMATS:
        raise LogConfigError(f"RELAIS_LOG_FORMAT={value!r} is not one of {', '.join(FORMATS)}")
    return value


def log_level(default: int, env: Mapping[str, str] | None = None) -> int:
    """RELAIS_LOG_LEVEL if set, else `default`."""
    env = os.environ if env is None else env
    value = (env.get("RELAIS_LOG_LEVEL") or "").strip().upper()
    if not value:
        return default
    if value not in LEVELS:
        raise LogConfigError(f"RELAIS_LOG_LEVEL={value!r} is not one of {', '.join(LEVELS)}")
    return getattr(logging, value)


_installed: weakref.WeakSet[logging.Handler] = weakref.WeakSet()  # handlers configure_logging added


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever `sys.stderr` is when a record comes (a test runner may swap it)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, _value: TextIO) -> None:
        pass


def configure_logging(service: str, *, level: int = logging.INFO, fmt: str | None = None,
                      stream: TextIO | None = None) -> logging.Handler:
    """Send every log record of the process to `stream` (default: stderr) in `fmt`.

    Replaces the handler an earlier call installed, and leaves others (a test
    runner's) alone. `level` applies unless RELAIS_LOG_LEVEL says otherwise.
    Raises `LogConfigError` on an unknown format or level. Returns the handler.
    """
    fmt = fmt or log_format(stream=stream)
    if fmt not in FORMATS:
        raise LogConfigError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    handler = _StderrHandler() if stream is None else logging.StreamHandler(stream)
    handler.addFilter(ContextFilter(service))
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    root = logging.getLogger()
    root.setLevel(log_level(level))
    for old in list(root.handlers):
        if old in _installed:
            root.removeHandler(old)
    root.addHandler(handler)
    _installed.add(handler)
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)  # a line per plugin at each start
    logging.getLogger("pika").setLevel(logging.WARNING)  # a dozen lines per connection opened or closed
    logging.captureWarnings(True)  # Python warnings become log lines in the same format
    return handler
