"""`relais db upgrade`, the step every deployment runs before its services start.

docker-compose.yml's `migrate` one-shot, the chart's pre-install/pre-upgrade Job
and deploy/systemd/relais-migrate.service all run it, and a failure stops the
rollout there; so it must succeed on a new database and again on an up-to-date
one, on SQLite and PostgreSQL, with the real command line.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from sqlalchemy import create_engine, inspect, text

from tests.conftest import POSTGRES_ADMIN_URL

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'relais.db'}"
        return
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    name = f"relais_test_{uuid.uuid4().hex[:12]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    yield POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def db_upgrade(database_url: str, data_dir: Path) -> subprocess.CompletedProcess:
    relais = Path(sys.executable).parent / "relais"
    env = {**os.environ, "RELAIS_DATABASE_URL": database_url, "RELAIS_DATA_DIR": str(data_dir)}
    return subprocess.run([str(relais), "db", "upgrade"], capture_output=True, text=True, env=env, timeout=120)


def test_db_upgrade_migrates_a_new_database_then_changes_nothing(database_url, tmp_path):
    for attempt in ("new database", "up to date"):
        run = db_upgrade(database_url, tmp_path)
        assert run.returncode == 0, f"{attempt}: {run.stdout}{run.stderr}"
        assert "revision" in run.stdout
    engine = create_engine(database_url)
    try:
        tables = set(inspect(engine).get_table_names())
    finally:
        engine.dispose()
    assert {"alembic_version", "relais_outbox", "dir_person", "prov_grant", "sso_session"} <= tables
