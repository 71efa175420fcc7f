"""Statements run alone (services/sso/connections.py): what they write is committed, what is written together
stays atomic, and the connection goes back to the pool as it came; /cas/login records a session's use only
when due, with its ticket, on SQLite and on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, insert, select
from werkzeug.test import Client

from relais.db import writer
from services.directory.api import Directory
from services.sso import sessions
from services.sso.app import SsoApp
from services.sso.compiled_sql import Statement
from services.sso.config import parse_config
from services.sso.connections import alone, writing
from services.sso.tables import session as session_t
from services.sso.tables import ticket as ticket_t

NOW = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SERVICE = "https://app.example.org/"
_INSERT = Statement(insert(ticket_t))


def _ticket(key: str) -> dict:
    return {"ticket_sha256": key, "kind": "ST", "service": SERVICE, "session_sha256": "s" * 64,
            "person_jointure": "1001", "renewed": False, "proxies": "[]", "issued_at": NOW,
            "expires_at": NOW + timedelta(seconds=30)}


def _tickets(engine) -> int:
    with engine.connect() as conn:
        return conn.execute(select(func.count()).select_from(ticket_t)).scalar_one()


def test_a_write_alone_is_committed_writes_together_are_atomic_and_the_connection_is_given_back_as_it_came(engine):
    with writer(engine).connect() as conn:
        with alone(conn):
            _INSERT.run(conn, _ticket("a" * 64))
        assert _tickets(engine) == 1  # seen from another connection: committed, no transaction left open
        if engine.dialect.name == "postgresql":
            assert conn.connection.dbapi_connection.autocommit is False
        with pytest.raises(RuntimeError), writing(conn, statements=2):
            _INSERT.run(conn, _ticket("b" * 64))
            _INSERT.run(conn, _ticket("c" * 64))
            raise RuntimeError("the second write's check failed")
        assert _tickets(engine) == 1  # neither of the two
        with writing(conn, statements=2):
            _INSERT.run(conn, _ticket("b" * 64))
            with alone(conn):  # inside a transaction: no effect, the write stays in it
                _INSERT.run(conn, _ticket("c" * 64))
        assert _tickets(engine) == 3


def test_cas_login_records_the_sessions_use_once_due_along_with_its_ticket(engine):
    now = [NOW]
    config = parse_config({"base_url": "https://ent.example.org", "services": [{"id": "a", "prefix": SERVICE}]},
                          "test")
    app = SsoApp(engine, config, directory=Directory(engine, "test"), tenant="test", secret=b"s" * 40,
                 clock=lambda: now[0])
    with writer(engine).begin() as conn:
        sid = sessions.open_session(conn, person_jointure="1001", auth_source="educonnect", national_id=None,
                                    attributes={}, now=NOW, tenant="test").id
    client = Client(app)
    client.set_cookie(config.cookie.name, sid)

    def cas_login_then_last_seen() -> datetime:
        answer = client.get("/cas/login", query_string={"service": SERVICE})
        assert answer.status_code == 302 and "ticket=ST-" in answer.headers["Location"]
        with engine.connect() as conn:
            seen = conn.execute(select(session_t.c.last_seen_at)).scalar_one()
        return seen.replace(tzinfo=UTC) if seen.tzinfo is None else seen

    now[0] = NOW + timedelta(milliseconds=300)  # the login's own redirect: nothing to record
    assert cas_login_then_last_seen() == NOW and _tickets(engine) == 1
    now[0] = NOW + timedelta(minutes=5)  # another app, later: the use is recorded with the ticket
    assert cas_login_then_last_seen() == NOW + timedelta(minutes=5) and _tickets(engine) == 2
    app.close()
