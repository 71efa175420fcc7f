"""A `relais serve` process whose PostgreSQL session is ended mid-statement: said without the statement's data.

The directory answers `get_person(jointure)` over RPC while the test holds a lock on its table,
so the query waits inside PostgreSQL with the pupil's id bound to it; then the session is ended
(`pg_terminate_backend`, as a failover or an operator would). Neither the service's log nor the
error the caller receives may quote that id: SQLAlchemy put a statement's parameters in its
errors, which the caller's RemoteError then carries into whatever logs it.
"""

from __future__ import annotations

import os
import subprocess
import time

import pytest
from sqlalchemy import create_engine, text

from tests.conftest import POSTGRES_ADMIN_URL
from tests.ops_helpers import RELAIS, Service

PUPIL = "2605692"  # the first pupil of the sample's Eleve file
PUPILS_FILE = "FULL_ENTTSSERVICES_Complet_20130117_Eleve_0001.xml"


def test_a_session_ended_mid_rpc_is_logged_and_answered_without_the_pupils_id(pg_engine, amqp_uri, aaf_sample,
                                                                                tmp_path):
    url, database = pg_engine.url.render_as_string(hide_password=False), pg_engine.url.database
    env = {"RELAIS_DATA_DIR": str(tmp_path), "RELAIS_DATABASE_URL": url, "RELAIS_AMQP_URI": amqp_uri,
           "RELAIS_LOG_FORMAT": "json"}
    subprocess.run([RELAIS, "directory", "import", "--no-publish", str(aaf_sample / PUPILS_FILE)],
                   env={**os.environ, **env}, check=True, capture_output=True, timeout=120)
    service = Service("directory", env, tmp_path / "directory.log")
    admin = create_engine(POSTGRES_ADMIN_URL, isolation_level="AUTOCOMMIT")
    locker = create_engine(url).connect()
    try:
        service.wait_alive()
        service.wait_ready()
        locker.execute(text("LOCK TABLE dir_person IN ACCESS EXCLUSIVE MODE"))  # held until rolled back
        call = subprocess.Popen([RELAIS, "rpc", "directory", "get_person", PUPIL], env={**os.environ, **env},
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        deadline = time.monotonic() + 60
        while True:  # the service's query waits on the lock, its parameter bound
            with admin.connect() as conn:
                ended = conn.execute(text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                    "WHERE datname = :d AND wait_event_type = 'Lock'"), {"d": database}).scalar()
            if ended:
                break
            if call.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the call never waited on the lock: {call.communicate()}\n{service.logs()}")
            time.sleep(0.05)
        locker.rollback()
        out, err = call.communicate(timeout=60)
        deadline = time.monotonic() + 20
        while "error handling worker" not in service.logs() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        locker.close()
        admin.dispose()
        service.stop()
    logs = service.logs()
    assert call.returncode != 0, out
    assert "terminating connection due to administrator command" in logs  # it is said...
    for text_ in (logs, out, err):  # ...without the id the statement carried
        assert PUPIL not in text_ and "[parameters" not in text_, text_
