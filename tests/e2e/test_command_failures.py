"""A database locked, lost or nowhere during `relais directory import`, tried from outside on real processes.

Each run must end with exit status 1 and a few lines naming what failed, where and what to do:
no traceback (unless `--debug`), no SQL, and nothing of the input's people (ids, names, birth
dates) in what it prints or logs, since SQLAlchemy's errors quote a statement's parameters.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_ADMIN_URL
from tests.ops_helpers import RELAIS, free_port

PUPILS_FILE = "FULL_ENTTSSERVICES_Complet_20130117_Eleve_0001.xml"
DEAD_BROKER = "amqp://guest:guest@127.0.0.1:1/"
SQL = re.compile(r"\[SQL|\[parameters|\b(INSERT INTO|SELECT .* FROM|UPDATE \w+ SET|DELETE FROM)\b")


def personal_values(aaf_sample: Path, n: int = 40) -> set[str]:
    """Ids, names and birth dates of the first `n` pupils of the sample: none may be printed or logged."""
    xml = (aaf_sample / PUPILS_FILE).read_text(encoding="utf-8")
    values: set[str] = set()
    for attr in ("ENTPersonJointure", "ENTEleveStructRattachId", "ENTPersonDateNaissance", "ENTPersonNomPatro",
                 "ENTPersonAutresPrenoms", "ENTElevePere", "ENTEleveMere"):
        for block in re.findall(rf'<attr name="{attr}">(.*?)</attr>', xml)[:n]:
            values.update(v for v in re.findall(r"<value>([^<]+)</value>", block) if len(v) >= 5)
    assert len(values) > 100  # what the assertions look for is really there
    return values


def run_import(env: dict[str, str], paths: list[Path], *flags: str) -> subprocess.Popen:
    return subprocess.Popen([RELAIS, *flags, "directory", "import", "--no-publish", *map(str, paths)],
                            env={**os.environ, "RELAIS_AMQP_URI": DEAD_BROKER, "RELAIS_LOG_FORMAT": "json", **env},
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finished(proc: subprocess.Popen, timeout: float = 120) -> tuple[str, str]:
    out, err = proc.communicate(timeout=timeout)
    assert proc.returncode == 1, f"exit status {proc.returncode}\nstdout: {out}\nstderr: {err}"
    return out, err


def assert_said_safely(out: str, err: str, secrets: set[str], *, debug: bool = False) -> None:
    """A short message, no SQL, no personal data; a traceback only under --debug."""
    leaked = sorted(v for v in secrets if v in out or v in err)
    assert not leaked, f"personal data printed: {leaked[:5]}\n{err}"
    assert not SQL.search(err) and not SQL.search(out), err
    assert out == "" and "relais directory import: " in err, err
    before, message = err[:err.rindex("relais directory import: ")], err[err.rindex("relais directory import: "):]
    if debug:
        assert "Traceback (most recent call last)" in before
    else:
        assert "Traceback" not in err
        for line in before.splitlines():  # log lines only (e.g. psycopg's about the broken connection)
            assert json.loads(line)["level"] in ("WARNING", "ERROR"), line
        assert len(err.splitlines()) <= 5, err
    assert len(message.strip().splitlines()) == 2, err  # what failed and where; what to do
    assert "run the command again" in message or "RELAIS_DATABASE_URL" in message, err


# -- (a) SQLite locked by another process --------------------------------------------------


@pytest.mark.parametrize("debug", [False, True], ids=["plain", "debug"])
def test_an_import_on_a_locked_sqlite_database_says_who_holds_it_and_what_to_do(tmp_path, aaf_sample, debug):
    db = tmp_path / "relais.db"
    env = {"RELAIS_DATA_DIR": str(tmp_path), "RELAIS_DATABASE_URL": f"sqlite:///{db}",
           "RELAIS_SQLITE_BUSY_TIMEOUT": "1"}
    subprocess.run([RELAIS, "db", "upgrade"], env={**os.environ, **env}, check=True, capture_output=True)
    holder = sqlite3.connect(db, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write transaction, held
    try:
        out, err = finished(run_import(env, [aaf_sample / PUPILS_FILE], *(["--debug"] if debug else [])))
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_said_safely(out, err, personal_values(aaf_sample), debug=debug)
    assert f"the SQLite database {db} is locked" in err and "RELAIS_SQLITE_BUSY_TIMEOUT" in err
    assert "Let that process finish" in err


# -- (b) PostgreSQL lost mid-import --------------------------------------------------------


def _pg_database(pg_engine) -> tuple[str, str]:
    return pg_engine.url.render_as_string(hide_password=False), pg_engine.url.database


def _when_importing(admin, database: str, proc: subprocess.Popen, timeout: float = 60) -> None:
    """Wait until the import writes the directory's rows (mid-import), or fail if it ended first: its last
    statement an INSERT or a COPY (bulk writes) into a directory table, in its open transaction."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with admin.connect() as conn:
            if conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE datname = :d "
                                 "AND (query LIKE 'INSERT INTO dir_%' OR query LIKE 'COPY dir_%')"),
                            {"d": database}).scalar():
                return
        if proc.poll() is not None:
            pytest.fail(f"the import ended before it could be cut: {proc.communicate()}")
        time.sleep(0.02)
    pytest.fail("the import never wrote to PostgreSQL")


@pytest.mark.parametrize(("fault", "debug"), [("terminated", False), ("terminated", True), ("dropped", False)])
def test_an_import_whose_postgresql_goes_away_mid_way_says_so_without_its_rows(pg_engine, aaf_sample, tmp_path,
                                                                               fault, debug):
    url, database = _pg_database(pg_engine)
    pg_engine.dispose()
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    proc = run_import({"RELAIS_DATA_DIR": str(tmp_path), "RELAIS_DATABASE_URL": url}, [aaf_sample],
                      *(["--debug"] if debug else []))
    try:
        _when_importing(admin, database, proc)
        with admin.connect() as conn:
            if fault == "terminated":  # an operator or a failover ending the sessions
                conn.execute(text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :d"),
                             {"d": database})
            else:
                conn.execute(text(f'DROP DATABASE "{database}" WITH (FORCE)'))
        out, err = finished(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
        admin.dispose()
    assert_said_safely(out, err, personal_values(aaf_sample), debug=debug)
    assert f"the connection to PostgreSQL at 127.0.0.1:5432, database '{database}' was lost mid-command" in err
    assert "was rolled back" in err and "Check that PostgreSQL runs" in err
    if fault == "terminated":  # what the message says: the import's one transaction left nothing
        check = create_engine(url)
        with check.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM dir_person")).scalar() == 0
        check.dispose()


# -- (c) a database URL that points nowhere ------------------------------------------------


def test_an_import_on_a_postgresql_url_that_answers_nothing_names_it_without_its_password(tmp_path, aaf_sample):
    port = free_port()
    out, err = finished(run_import({"RELAIS_DATA_DIR": str(tmp_path),
                                    "RELAIS_DATABASE_URL": f"postgresql://relais:s3cret-pw@127.0.0.1:{port}/relais"},
                                   [aaf_sample / PUPILS_FILE]))
    assert_said_safely(out, err, personal_values(aaf_sample) | {"s3cret-pw"})
    assert f"cannot reach PostgreSQL at 127.0.0.1:{port}, database 'relais'" in err and "Connection refused" in err
    assert "Check RELAIS_DATABASE_URL and that PostgreSQL runs" in err


def test_an_import_on_a_postgresql_database_that_does_not_exist_says_to_create_it(tmp_path, aaf_sample):
    url = POSTGRES_ADMIN_URL.rsplit("/", 1)[0] + "/relais_test_never_created"
    out, err = finished(run_import({"RELAIS_DATA_DIR": str(tmp_path), "RELAIS_DATABASE_URL": url},
                                   [aaf_sample / PUPILS_FILE]))
    assert_said_safely(out, err, personal_values(aaf_sample))
    assert "database 'relais_test_never_created' does not exist" in err and "createdb" in err


def test_an_import_on_a_sqlite_path_that_cannot_exist_names_the_path(tmp_path, aaf_sample):
    (tmp_path / "a-file").write_text("not a folder")
    out, err = finished(run_import({"RELAIS_DATA_DIR": str(tmp_path / "a-file" / "var")},
                                   [aaf_sample / PUPILS_FILE]))
    assert_said_safely(out, err, personal_values(aaf_sample))
    assert str(tmp_path / "a-file") in err


# -- `relais serve` on a database that is not there ----------------------------------------


def serve(env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run([RELAIS, "serve", "provisioning"], capture_output=True, text=True, timeout=60,
                          env={**os.environ, "RELAIS_AMQP_URI": DEAD_BROKER, "RELAIS_LOG_FORMAT": "json",
                               "RELAIS_OPS_HOST": "127.0.0.1", "RELAIS_OPS_PORT": str(free_port()), **env})


def test_a_service_whose_postgresql_answers_nothing_logs_where_and_what_to_do_then_exits_1(tmp_path):
    port = free_port()
    ran = serve({"RELAIS_DATA_DIR": str(tmp_path),
                 "RELAIS_DATABASE_URL": f"postgresql://relais:s3cret-pw@127.0.0.1:{port}/relais"})
    assert ran.returncode == 1, ran.stderr
    [line] = [json.loads(x) for x in ran.stderr.splitlines() if "could not start" in x]
    assert line["message"].startswith(f"provisioning could not start: cannot reach PostgreSQL at 127.0.0.1:{port}")
    assert "Check RELAIS_DATABASE_URL" in line["message"] and "s3cret-pw" not in ran.stderr


def test_a_service_whose_sqlite_folder_cannot_be_made_says_which_without_a_traceback(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    ran = serve({"RELAIS_DATA_DIR": str(tmp_path / "a-file" / "var")})
    assert ran.returncode == 1 and "Traceback" not in ran.stderr, ran.stderr
    assert ran.stderr.startswith("relais serve provisioning: ") and str(tmp_path / "a-file") in ran.stderr
    assert len(ran.stderr.splitlines()) == 2
