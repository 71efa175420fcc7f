"""Migrations that rebuild tables keep their rows, on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect, text

from relais.db import make_engine, upgrade, writer
from tests.conftest import migrate_to


def test_outbox_and_grant_rebuilds_keep_rows(empty_engine):
    migrate_to(empty_engine, "0008_gar_feed")
    with writer(empty_engine).begin() as conn:
        conn.execute(text("INSERT INTO relais_outbox (event_id, type, body) VALUES ('e1', 't', :b), ('e2', 't', :b)"),
                     {"b": b'{"x": 1}'})
        conn.execute(text("INSERT INTO prov_grant (person, resource, structure, cause, granted_at) "
                          "VALUES ('p1', 'ark:/1', '0000001A', 'rule:r', '2026-01-01 00:00:00')"))
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT seq, event_id, body FROM relais_outbox ORDER BY seq")).all() == [
            (1, "e1", b'{"x": 1}'), (2, "e2", b'{"x": 1}')]
        assert conn.execute(text("SELECT person, resource, structure, cause FROM prov_grant")).all() == [
            ("p1", "ark:/1", "0000001A", "rule:r")]
        # New rows keep counting from the old ones.
        conn.execute(text("INSERT INTO relais_outbox (event_id, type, body) VALUES ('e3', 't', :b)"), {"b": b"{}"})
        assert conn.execute(text("SELECT max(seq) FROM relais_outbox")).scalar_one() == 3
    schema = inspect(empty_engine)
    assert not [u for u in schema.get_unique_constraints("relais_outbox") if u["column_names"] == ["event_id"]]
    assert not [i for i in schema.get_indexes("relais_outbox") if i["column_names"] == ["event_id"]]
    assert {i["name"] for i in schema.get_indexes("prov_grant")} >= {"ix_prov_grant_pool"}
    if empty_engine.dialect.name == "sqlite":
        with empty_engine.connect() as conn:
            sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = 'prov_grant'")).scalar_one()
        assert "WITHOUT ROWID" in sql


def test_usage_rebuilds_keep_activity_and_aggregates(empty_engine):
    migrate_to(empty_engine, "0018_usage")
    with writer(empty_engine).begin() as conn:
        conn.execute(text("INSERT INTO usage_activity VALUES ('t', '2026-11-02', 'session', 'p1', '0000001A', "
                          "'National_ELV', '6EME', '*', '2026-11', '2026-11-02', 3)"))
        conn.execute(text("INSERT INTO usage_aggregate VALUES ('t', '2026-11', 'month', '2026-11-01', 'connections', "
                          "'0000001A', '*', '*', '*', 37)"))
    upgrade(empty_engine)
    with empty_engine.connect() as conn:
        assert conn.execute(text("SELECT pseudonym, count FROM usage_activity")).all() == [("p1", 3)]
        assert conn.execute(text("SELECT indicator, value FROM usage_aggregate")).all() == [("connections", 37)]
    schema = inspect(empty_engine)
    assert {i["name"] for i in schema.get_indexes("usage_activity")} >= {"ix_usage_activity_period"}
    assert schema.get_pk_constraint("usage_aggregate")["constrained_columns"] == [
        "tenant", "period", "grain", "profile", "level", "resource", "structure", "start", "indicator"]
    if empty_engine.dialect.name == "sqlite":
        with empty_engine.connect() as conn:
            for table in ("usage_activity", "usage_aggregate"):
                sql = conn.execute(text("SELECT sql FROM sqlite_master WHERE name = :t"), {"t": table}).scalar_one()
                assert "WITHOUT ROWID" in sql


def test_instances_migrating_a_new_postgresql_database_together_do_it_once(pg_empty_engine, tmp_path):
    """Several service instances start at once on an empty database: each upgrade succeeds, once.

    (On SQLite, writers already queue up on BEGIN IMMEDIATE.)
    """
    import threading

    empty_engine = pg_empty_engine

    errors: list[BaseException] = []

    def start():
        try:
            upgrade(empty_engine)
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == []
    with empty_engine.connect() as conn:
        versions = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    alone = make_engine(f"sqlite:///{tmp_path / 'alone.db'}")
    upgrade(alone)
    with alone.connect() as conn:
        expected = conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    alone.dispose()
    assert sorted(versions) == sorted(expected)


def test_sso_oidc_tables_match_the_service_tables(empty_engine):
    """0022_sso_oidc makes the OpenID Connect provider's tables as services/sso/tables.py declares them."""
    from services.sso import tables

    upgrade(empty_engine)
    schema = inspect(empty_engine)
    for table in (tables.oidc_code, tables.oidc_token, tables.oidc_jwk):
        assert [c["name"] for c in schema.get_columns(table.name)] == [c.name for c in table.columns]
        assert schema.get_pk_constraint(table.name)["constrained_columns"] == [c.name for c in table.primary_key]
    assert {tuple(i["column_names"]) for i in schema.get_indexes("sso_oidc_token")} >= {
        ("grant_id",), ("session_ref",), ("expires_at",)}
