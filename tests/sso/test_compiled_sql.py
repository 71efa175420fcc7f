"""The login path's compiled statements (services/sso/sql.py): what they store and read is what SQLAlchemy's
own execution stores and reads, on SQLite and PostgreSQL, and the CAS validation that reads the ticket and its
session's start in one statement still refuses a ticket whose session has ended."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from relais.bus.tables import outbox
from relais.db import writer
from services.sso import sessions
from services.sso.cas import tickets as cas
from services.sso.compiled_sql import Statement
from services.sso.config import Lifetimes, parse_config
from services.sso.rules.service_registry import ServiceRegistry
from services.sso.tables import session as session_t
from services.sso.tables import ticket as ticket_t

NOW = datetime(2026, 3, 2, 8, 15, 30, 123456, tzinfo=UTC)


def _ticket_row(key: str, **changes) -> dict:
    return {"ticket_sha256": key, "kind": "ST", "service": "https://app.example.org/", "session_sha256": "s" * 64,
            "person_jointure": "1001", "renewed": True, "proxies": "[]", "issued_at": NOW,
            "expires_at": NOW + timedelta(seconds=10), "consumed_at": None, **changes}


def test_rows_written_and_read_are_the_same_as_through_sqlalchemy(engine):
    fast_insert = Statement(insert(ticket_t))
    fast_find = Statement(select(ticket_t).where(ticket_t.c.ticket_sha256 == bindparam("b_key")))
    with writer(engine).begin() as conn:
        fast_insert.run(conn, _ticket_row("a" * 64))
        conn.execute(insert(ticket_t), _ticket_row("b" * 64))
    with engine.connect() as conn:
        by_sqlalchemy = {r["ticket_sha256"]: dict(r) for r in conn.execute(select(ticket_t)).mappings()}
        fast = {key: fast_find.first(conn, {"b_key": key}) for key in ("a" * 64, "b" * 64)}
        assert fast_find.first(conn, {"b_key": "c" * 64}) is None
    assert set(by_sqlalchemy) == {"a" * 64, "b" * 64}
    for key in by_sqlalchemy:
        assert fast[key] == by_sqlalchemy[key]  # each read the same way by both
    written_fast, written_by_sqlalchemy = by_sqlalchemy["a" * 64], by_sqlalchemy["b" * 64]
    assert {k: v for k, v in written_fast.items() if k != "ticket_sha256"} == \
           {k: v for k, v in written_by_sqlalchemy.items() if k != "ticket_sha256"}  # and stored the same way
    assert written_fast["renewed"] is True
    assert written_fast["issued_at"].replace(tzinfo=UTC) == NOW  # SQLite gives naive UTC back
    assert written_fast["consumed_at"] is None


def test_time_comparisons_in_sql_and_row_counts(engine):
    """Parameters are converted as SQLAlchemy converts them, so SQL compares them rightly with stored values."""
    consume = Statement(update(ticket_t).where(ticket_t.c.ticket_sha256 == bindparam("b_key"),
                                               ticket_t.c.consumed_at.is_(None),
                                               ticket_t.c.expires_at > bindparam("b_now"))
                        .values(consumed_at=bindparam("b_now")))
    with writer(engine).begin() as conn:
        conn.execute(insert(ticket_t), _ticket_row("a" * 64))
        assert consume.run(conn, {"b_key": "a" * 64, "b_now": NOW + timedelta(seconds=10)}) == 0  # expired then
        assert consume.run(conn, {"b_key": "a" * 64, "b_now": NOW + timedelta(seconds=9)}) == 1
        assert consume.run(conn, {"b_key": "a" * 64, "b_now": NOW + timedelta(seconds=9)}) == 0  # already used
        consumed = conn.execute(select(ticket_t.c.consumed_at)).scalar_one()
    assert consumed.replace(tzinfo=UTC) == NOW + timedelta(seconds=9)


def test_literal_values_in_a_statement_are_kept(engine):
    only_pgts = Statement(select(ticket_t.c.ticket_sha256).where(ticket_t.c.kind == "PGT"))
    with writer(engine).begin() as conn:
        conn.execute(insert(ticket_t), [_ticket_row("a" * 64), _ticket_row("b" * 64, kind="PGT")])
        assert only_pgts.all(conn, {}) == [{"ticket_sha256": "b" * 64}]


def test_a_missing_parameter_is_named_and_unsupported_statements_are_refused(sqlite_engine):
    consume = Statement(update(ticket_t).where(ticket_t.c.ticket_sha256 == bindparam("b_key"))
                        .values(consumed_at=bindparam("b_now")))
    with writer(sqlite_engine).begin() as conn:
        with pytest.raises(KeyError, match="b_now"):
            consume.run(conn, {"b_key": "a" * 64})
        with pytest.raises(ValueError, match="expanding"):
            Statement(select(ticket_t).where(ticket_t.c.kind.in_(bindparam("b_kinds", expanding=True)))).all(
                conn, {"b_kinds": ["ST"]})
        with pytest.raises(ValueError, match="sqlite"):
            Statement({"postgresql": select(ticket_t)}).all(conn, {})
        with pytest.raises(ValueError, match=r"defaults are not supported: \['seq', 'events'\]"):
            Statement(insert(outbox)).run(conn, {"event_id": "e", "type": "t", "body": b"{}"})


def test_an_insert_leaving_a_column_out_stores_null_as_sqlalchemy_does(engine):
    fast_insert = Statement(insert(ticket_t))
    row = _ticket_row("a" * 64)
    del row["consumed_at"]  # nullable: NULL
    with writer(engine).begin() as conn:
        fast_insert.run(conn, row)
        assert conn.execute(select(ticket_t.c.consumed_at)).scalar_one() is None
    del row["service"]  # NOT NULL: the database refuses the row
    with pytest.raises(IntegrityError):
        with writer(engine).begin() as conn:
            fast_insert.run(conn, {**row, "ticket_sha256": "b" * 64})


def test_validation_reads_the_session_start_and_refuses_a_ticket_whose_session_ended(engine):
    registry = ServiceRegistry(parse_config({"base_url": "https://ent.example.org", "services": [
        {"id": "app", "prefix": "https://app.example.org/"}]}, "test").services)
    lifetimes = Lifetimes()
    with writer(engine).begin() as conn:
        session = sessions.open_session(conn, person_jointure="1001", auth_source="educonnect", national_id=None,
                                        attributes={}, now=NOW, tenant="test", lifetimes=lifetimes)
        first = cas.issue_service_ticket(conn, session, "https://app.example.org/", renewed=False,
                                         now=NOW + timedelta(seconds=30), lifetimes=lifetimes)
        second = cas.issue_service_ticket(conn, session, "https://app.example.org/", renewed=False,
                                          now=NOW + timedelta(seconds=30), lifetimes=lifetimes)
    with writer(engine).begin() as conn:
        validation, _ = cas.validate(conn, first, "https://app.example.org/", registry=registry,
                                     now=NOW + timedelta(seconds=31), accept_proxy_tickets=False, tenant="test")
    assert validation.user == "1001"
    assert validation.authenticated_at == NOW  # the session's start, not the ticket's issue time
    with writer(engine).begin() as conn:  # the session goes (as a purge of sessions past their end does)
        conn.execute(delete(session_t))
    with writer(engine).begin() as conn:
        with pytest.raises(cas.CasError, match="session of this ST has ended"):
            cas.validate(conn, second, "https://app.example.org/", registry=registry,
                         now=NOW + timedelta(seconds=31), accept_proxy_tickets=False, tenant="test")
    with engine.connect() as conn:  # and the ticket was consumed all the same
        assert conn.execute(select(ticket_t.c.consumed_at).where(
            ticket_t.c.ticket_sha256 == sessions.digest(second))).scalar_one() is not None


def test_driver_errors_are_sqlalchemys_without_the_parameters(engine):
    fast_insert = Statement(insert(ticket_t))
    with writer(engine).begin() as conn:
        fast_insert.run(conn, _ticket_row("a" * 64, person_jointure="secret-jointure"))
    with pytest.raises(IntegrityError) as caught:
        with writer(engine).begin() as conn:
            fast_insert.run(conn, _ticket_row("a" * 64, person_jointure="secret-jointure"))
    assert "secret-jointure" not in str(caught.value)
    with engine.connect() as conn:  # the failed transaction was rolled back, the first row is there
        assert conn.execute(select(ticket_t.c.ticket_sha256)).scalars().all() == ["a" * 64]


def test_a_lost_postgresql_connection_is_invalidated_and_replaced(pg_engine):
    find = Statement(select(ticket_t.c.kind).where(ticket_t.c.ticket_sha256 == bindparam("b_key")))
    with pg_engine.connect() as conn:
        pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        with pg_engine.connect() as killer:  # another connection of the pool ends this one's server process
            killer.exec_driver_sql(f"SELECT pg_terminate_backend({pid})")
        with pytest.raises(DBAPIError) as caught:
            find.first(conn, {"b_key": "x"})
        assert caught.value.connection_invalidated and conn.invalidated
    with pg_engine.connect() as conn:  # the pool gives a live connection again
        assert conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one() != pid
        assert find.first(conn, {"b_key": "x"}) is None
