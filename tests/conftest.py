"""Shared fixtures: real SQLite files, real PostgreSQL databases, real RabbitMQ vhosts.

Nothing here mocks the broker or the database. PostgreSQL tests create a
throw-away database on RELAIS_TEST_POSTGRES_URL (default the local server,
trust auth); broker tests get a throw-away vhost through the RabbitMQ
management API (scripts/ensure-services.sh enables it).
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import sqlite3
import urllib.error
import urllib.parse
import urllib.request
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, make_url, text

from relais.db import alembic_config, make_engine, upgrade, writer

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("RELAIS_SHARED_DIR", ROOT.parent / "shared"))
AAF_SAMPLE = SHARED / "fixtures" / "aaf" / "entcore-2013"

POSTGRES_ADMIN_URL = os.environ.get("RELAIS_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres")
RABBIT_API = os.environ.get("RELAIS_TEST_RABBITMQ_API", "http://guest:guest@127.0.0.1:15672")
AMQP_BASE = os.environ.get("RELAIS_TEST_AMQP_BASE", "amqp://guest:guest@127.0.0.1:5672")


@pytest.fixture(scope="session")
def aaf_sample() -> Path:
    if not AAF_SAMPLE.is_dir():
        pytest.fail(f"the AAF sample export is missing: {AAF_SAMPLE} (shared/ must sit beside the checkout)")
    return AAF_SAMPLE


@pytest.fixture(scope="session")
def _sqlite_migrated(tmp_path_factory) -> Path:
    """A SQLite file migrated once per session: each test gets a copy, not a migration (0.2 s each)."""
    path = tmp_path_factory.mktemp("sqlite-template") / "relais.db"
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    engine.dispose()
    with sqlite3.connect(path) as conn:  # the WAL folded into the file: the file alone is the database
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path


@pytest.fixture
def sqlite_engine(tmp_path, _sqlite_migrated):
    """A fresh SQLite file for one test, migrated (a copy of the session's migrated file)."""
    shutil.copyfile(_sqlite_migrated, tmp_path / "relais.db")
    engine = make_engine(f"sqlite:///{tmp_path / 'relais.db'}")
    upgrade(engine)  # finds nothing to do: says the copy is at the newest revision
    yield engine
    engine.dispose()


_PG_ADMIN: list[Engine] = []  # made on first use: unit tests and machines without PostgreSQL never make it
_PG_DROPS: list[tuple[str, Future]] = []
_PG_DROPPER = ThreadPoolExecutor(1, thread_name_prefix="drop-test-databases")


def _pg_admin() -> Engine:
    if not _PG_ADMIN:
        _PG_ADMIN.append(create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT"))
    return _PG_ADMIN[0]


def _pg_drop(name: str) -> None:
    with _pg_admin().connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def _pg_database(template: str | None = None):
    """A throw-away PostgreSQL database (a copy of `template` if given): its URL.

    Dropped afterwards by a thread of its own, while the next test runs (a drop takes 0.2-1 s on a busy
    machine); `pytest_sessionfinish` waits for every drop and fails the run if one failed.
    """
    name = f"relais_test_{uuid.uuid4().hex[:12]}"
    try:
        with _pg_admin().connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    except Exception as exc:  # noqa: BLE001
        pytest.fail(f"PostgreSQL could not create database {name} at {POSTGRES_ADMIN_URL}: {exc}. "
                    "Run scripts/ensure-services.sh (make test does).")
    try:
        yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        _PG_DROPS.append((name, _PG_DROPPER.submit(_pg_drop, name)))


def pytest_sessionfinish(session, exitstatus):
    """Every test database dropped before the run ends. A drop that failed in its thread (say, one that opened
    a connection while a unit test refused sockets: `unit/conftest.py`) is tried again here; one that fails
    again, a database left behind, fails the run."""
    _PG_DROPPER.shutdown(wait=True)
    left = []
    for name, dropped in _PG_DROPS:
        if dropped.exception() is not None:
            try:
                _pg_drop(name)
            except Exception as exc:  # noqa: BLE001
                left.append(f"{name}: {exc}")
    for engine in _PG_ADMIN:
        engine.dispose()
    if left:
        raise RuntimeError(f"{len(left)} test database(s) could not be dropped on {POSTGRES_ADMIN_URL}: {left[0]}")


@pytest.fixture(scope="session")
def _pg_migrated():
    """A PostgreSQL database migrated once per session, never connected to afterwards: the template
    each test's database is copied from (CREATE DATABASE … TEMPLATE), instead of migrating it (0.7 s each)."""
    with _pg_database() as url:
        engine = make_engine(url)
        upgrade(engine)
        engine.dispose()  # a template with a connection open cannot be copied
        yield make_url(url).database


@pytest.fixture
def pg_engine(_pg_migrated):
    """A fresh PostgreSQL database for one test, migrated, dropped afterwards."""
    with _pg_database(template=_pg_migrated) as url:
        engine = make_engine(url)
        upgrade(engine)  # finds nothing to do: says the copy is at the newest revision
        yield engine
        engine.dispose()


@pytest.fixture
def pg_empty_engine():
    """A fresh, empty PostgreSQL database for one test (no migration run), dropped afterwards."""
    with _pg_database() as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_engine(request, tmp_path):
    """An empty database (no migration run) on SQLite and on PostgreSQL: for migration tests."""
    if request.param == "postgresql":
        yield request.getfixturevalue("pg_empty_engine")
        return
    engine = make_engine(f"sqlite:///{tmp_path / 'relais.db'}")
    yield engine
    engine.dispose()


def migrate_to(engine, revision: str) -> None:
    """Run the migrations up to `revision` only (a migration test's starting point)."""
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with writer(engine).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@pytest.fixture(params=["sqlite", "postgresql"])
def engine(request):
    """The same test on the embedded default and on PostgreSQL."""
    return request.getfixturevalue("sqlite_engine" if request.param == "sqlite" else "pg_engine")


def _rabbit_api(method: str, path: str) -> None:
    parts = urllib.parse.urlsplit(RABBIT_API)
    req = urllib.request.Request(f"{parts.scheme}://{parts.hostname}:{parts.port}{path}", method=method)
    token = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    req.add_header("content-type", "application/json")
    if method == "PUT":
        req.data = json.dumps({}).encode() if "permissions" not in path else json.dumps(
            {"configure": ".*", "write": ".*", "read": ".*"}).encode()
    urllib.request.urlopen(req, timeout=10).read()


@pytest.fixture
def amqp_uri():
    """A throw-away RabbitMQ vhost for one test: its AMQP URI."""
    vhost = f"relais_test_{uuid.uuid4().hex[:12]}"
    try:
        _rabbit_api("PUT", f"/api/vhosts/{vhost}")
        _rabbit_api("PUT", f"/api/permissions/{vhost}/guest")
    except (urllib.error.URLError, OSError) as exc:
        pytest.fail(f"RabbitMQ management API not reachable at {RABBIT_API}: {exc}. "
                    "Run scripts/ensure-services.sh (make test does).")
    yield f"{AMQP_BASE}/{vhost}"
    try:
        _rabbit_api("DELETE", f"/api/vhosts/{vhost}")
    except (urllib.error.URLError, OSError):
        pass


@pytest.fixture
def settings_env(tmp_path, amqp_uri, monkeypatch):
    """Environment for CLI and service tests: a data dir, SQLite in it, a throw-away vhost."""
    monkeypatch.setenv("RELAIS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("RELAIS_DATABASE_URL", raising=False)
    monkeypatch.setenv("RELAIS_AMQP_URI", amqp_uri)
    monkeypatch.setenv("RELAIS_TENANT", "test")
    return {"RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_AMQP_URI": amqp_uri, "RELAIS_TENANT": "test"}


class MotoServer:
    """A real moto S3 server process on a fixed port, which a test may stop and start again.

    moto keeps everything in memory: a restarted server has no bucket nor object left.
    With `log`, its request log (werkzeug's, on stderr) is appended to that file.
    """

    def __init__(self, log: Path | None = None) -> None:
        import socket

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.log, self.proc = log, None

    @property
    def endpoint(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> MotoServer:
        import socket
        import subprocess
        import sys
        import time

        self.proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
                                     stdout=subprocess.DEVNULL,
                                     stderr=open(self.log, "ab") if self.log else subprocess.DEVNULL)
        deadline = time.time() + 20
        while time.time() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        pytest.fail("moto server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope="module")
def moto_s3():
    """A moto S3 server for the tests of one module."""
    server = MotoServer().start()
    yield server
    server.stop()
