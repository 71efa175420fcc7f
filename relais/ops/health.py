"""Readiness checks: is the broker, the database, the object store reachable from here?

A check is a function that returns a short description of what it reached,
or raises with what went wrong; each has its own timeout, so a dependency
that hangs makes readiness fail in bounded time instead of hanging the probe.
`run_checks` times them and turns failures into `CheckResult`s naming where
it looked and why it failed; `readiness` makes the `/readyz` answer. No
password reaches a result: URLs are shown with `redact_url`.
"""

from __future__ import annotations

import json
import math
import os
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import amqp
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from relais.config import amqp_nodes, redact_url

from .logs import describe_error

Check = Callable[[], str]
DEFAULT_TIMEOUT = 2.0


class CheckFailed(RuntimeError):
    """A dependency did not answer as it should; the message says where and why."""


@dataclass(frozen=True)
class CheckResult:
    name: str
    ok: bool
    detail: str
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def broker_check(amqp_uri: str, timeout: float = DEFAULT_TIMEOUT) -> Check:
    """Open and close an AMQP connection (login and vhost included): to one node of a cluster's list at least
    (`relais.config.amqp_nodes`), as the bus's clients fail over to any."""
    nodes = amqp_nodes(amqp_uri)

    def check() -> str:
        failures = []
        for params in nodes:
            where = f"RabbitMQ at {params.hostport}, vhost {params.virtual_host!r}"
            conn = _connection(params, timeout)
            try:
                conn.connect()
            except Exception as exc:  # noqa: BLE001 - any failure means not reachable
                _quietly(conn.collect)
                failures.append(f"cannot reach {where}: {describe_error(exc)}")
                continue
            _quietly(conn.close)
            return where + (f" ({'; '.join(failures)})" if failures else "")
        raise CheckFailed("; ".join(failures))

    return check


def consumed_check(amqp_uri: str, queue: str, timeout: float = DEFAULT_TIMEOUT) -> Check:
    """The queue exists and has a consumer (a passive declare: nothing is created), asked of the first node of
    a cluster's list that answers."""
    nodes = amqp_nodes(amqp_uri)

    def check() -> str:
        failures = []
        for params in nodes:
            where = f"queue {queue!r} on RabbitMQ at {params.hostport}, vhost {params.virtual_host!r}"
            conn = _connection(params, timeout)
            try:
                conn.connect()
                _name, _messages, consumers = conn.channel().queue_declare(queue, passive=True)
            except amqp.exceptions.NotFound:
                raise CheckFailed(f"{where} is not declared yet") from None
            except Exception as exc:  # noqa: BLE001 - any failure means not reachable
                failures.append(f"cannot read {where}: {describe_error(exc)}")
                continue
            finally:
                _quietly(conn.collect)
            if not consumers:
                raise CheckFailed(f"{where} has no consumer")
            return f"{where}: {consumers} consumer(s)"
        raise CheckFailed("; ".join(failures))

    return check


def _connection(params: Any, timeout: float) -> amqp.Connection:
    """An AMQP connection, not opened yet, whose every step gives up after `timeout` seconds."""
    return amqp.Connection(**params.connection_kwargs(), connect_timeout=timeout, read_timeout=timeout,
                           write_timeout=timeout, heartbeat=0)


def _quietly(fn: Callable[[], Any]) -> None:
    try:
        fn()
    except Exception:  # noqa: BLE001 - closing what may already be broken
        pass


def database_check(url: str, timeout: float = DEFAULT_TIMEOUT) -> Check:
    """Run `SELECT 1` on a connection of its own (no pool), within `timeout`.

    A SQLite file that does not exist counts as down (opening it would make an empty database).
    """
    parsed = make_url(url)
    where = f"database {redact_url(parsed.render_as_string(hide_password=False))}"
    if parsed.get_backend_name() == "sqlite":
        path = parsed.database
        engine = create_engine(url, poolclass=NullPool, hide_parameters=True, connect_args={"timeout": timeout})
    else:
        path = None
        if parsed.drivername == "postgresql":
            parsed = parsed.set(drivername="postgresql+psycopg")
        engine = create_engine(parsed, poolclass=NullPool, hide_parameters=True, connect_args={
            "connect_timeout": max(1, math.ceil(timeout)),
            "options": f"-c statement_timeout={int(timeout * 1000)}"})

    def check() -> str:
        if path and path != ":memory:" and not Path(path).is_file():
            raise CheckFailed(f"{where}: the file does not exist")
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001
            raise CheckFailed(f"cannot reach {where}: {describe_error(exc)}") from None
        return where

    return check


def object_store_check(target: str, timeout: float = DEFAULT_TIMEOUT) -> Check:
    """An S3 endpoint (`http(s)://host:port`) answering HTTP, or a local store folder that is writable.

    Any HTTP answer below 500 counts as reachable (an anonymous request to S3
    is refused with 403, and that is an answer); MinIO answers
    `/minio/health/live` with 200 when it is up and 503 when it is not.
    """
    if target.startswith(("http://", "https://")):
        url = target.rstrip("/") + "/minio/health/live"
        where = f"object store at {redact_url(target)}"

        def check_http() -> str:
            try:
                with urllib.request.urlopen(urllib.request.Request(url, method="GET"), timeout=timeout):
                    pass
            except urllib.error.HTTPError as exc:
                if exc.code >= 500:
                    raise CheckFailed(f"{where} answered HTTP {exc.code}") from None
            except Exception as exc:  # noqa: BLE001
                raise CheckFailed(f"cannot reach {where}: {describe_error(exc)}") from None
            return where

        return check_http
    folder = Path(target)
    where = f"local object store {folder}"

    def check_folder() -> str:
        if not folder.is_dir():
            raise CheckFailed(f"{where}: no such folder")
        if not os.access(folder, os.W_OK | os.X_OK):
            raise CheckFailed(f"{where}: not writable by this process")
        return where

    return check_folder


def run_checks(checks: Mapping[str, Check]) -> list[CheckResult]:
    """Run each check, timing it."""
    results = []
    for name, check in checks.items():
        started = time.perf_counter()
        try:
            detail, ok = check(), True
        except CheckFailed as exc:
            detail, ok = str(exc), False
        except Exception as exc:  # noqa: BLE001 - a check that breaks is a failed check, not a crash
            detail, ok = f"check failed: {describe_error(exc)}", False
        results.append(CheckResult(name, ok, detail, round(time.perf_counter() - started, 4)))
    return results


def readiness(service: str, results: list[CheckResult]) -> tuple[int, dict[str, Any]]:
    """The `/readyz` answer: 200 when every check passed, else 503 naming what is down."""
    down = [r.name for r in results if not r.ok]
    body = {"service": service, "status": "unavailable" if down else "ready", "down": down,
            "checks": {r.name: {"ok": r.ok, "detail": r.detail, "seconds": r.seconds} for r in results}}
    return (503 if down else 200), body


def probe(service: str, host: str, port: int, *, live: bool = False,
          timeout: float = 5.0) -> tuple[bool, dict[str, Any] | None, str]:
    """Ask a running service's `/readyz` (or `/healthz`): (ok, its JSON answer, a sentence saying what is so).

    Not ok when nothing answers, when the answer is not 200, or when another service answers on that port.
    """
    path = "/healthz" if live else "/readyz"
    url = f"http://{host}:{port}{path}"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            status, body = response.status, json.load(response)
    except urllib.error.HTTPError as exc:
        status = exc.code
        try:
            body = json.load(exc)
        except ValueError:
            body = None
    except Exception as exc:  # noqa: BLE001
        return False, None, f"{service}: nothing answers at {url} ({describe_error(exc)})"
    if not isinstance(body, dict):
        return False, None, f"{service}: {url} answered HTTP {status} without a JSON body"
    if body.get("service") != service:
        return False, body, f"{service}: {url} answers for {body.get('service')!r}, not {service!r}"
    if status != 200:
        down = body.get("down") or []
        details = "; ".join(c.get("detail", "") for c in (body.get("checks") or {}).values() if not c.get("ok"))
        return False, body, f"{service} not ready: {', '.join(down) or 'HTTP ' + str(status)} down ({details})"
    return True, body, f"{service} {'alive' if live else 'ready'} at {url}"
