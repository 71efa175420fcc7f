"""Item ids up to 1024 characters, as the archive format allows (migration 0016_vault_item_id_1024): rows
written before it are kept, on SQLite and PostgreSQL, and a 1024-character id goes through the vault."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import inspect, text

from relais.db import upgrade
from services.vault.adapters.local_store import LocalStore
from services.vault.continuous.events import ItemEventError, item_changed, parse
from services.vault.items import Vault
from tests.conftest import migrate_to

# a deep folder tree with French names: 1024 characters, about 1.3 kB in UTF-8
LONG_ID = "/".join(["Année 2013-2014 — Sciences économiques et sociales, séquence n°"] * 16)[:1023] + "x"


def test_long_ids_fit_after_the_migration_and_older_rows_are_kept(empty_engine):
    migrate_to(empty_engine, "0014_vault_transfer")
    migrate_to(empty_engine, "0011_vault_rights")
    now = datetime.now(UTC)
    with empty_engine.begin() as conn:
        conn.execute(text("INSERT INTO vault_item_version (tenant, person, vertical, item_id, version, "
                          "content_sha256, metadata, created_at) VALUES ('ac-t', 'J1', 'documents', :i, 1, "
                          ":d, '{}', :t)"), {"i": "a" * 512, "d": "0" * 64, "t": now})
    upgrade(empty_engine)
    for table in ("vault_item_version", "vault_access_log", "vault_transfer_item"):
        (col,) = [c for c in inspect(empty_engine).get_columns(table) if c["name"] == "item_id"]
        assert col["type"].length == 1024, table
    with empty_engine.begin() as conn:
        assert conn.execute(text("SELECT item_id FROM vault_item_version")).scalar_one() == "a" * 512
        conn.execute(text("INSERT INTO vault_item_version (tenant, person, vertical, item_id, version, "
                          "content_sha256, metadata, created_at) VALUES ('ac-t', 'J1', 'documents', :i, 1, "
                          ":d, '{}', :t)"), {"i": LONG_ID, "d": "0" * 64, "t": now})
        assert len(conn.execute(text("SELECT item_id FROM vault_item_version WHERE item_id <> :a"),
                                {"a": "a" * 512}).scalar_one()) == 1024


def test_a_1024_character_item_goes_through_events_and_the_vault_not_1025(engine, tmp_path):
    assert len(LONG_ID) == 1024
    store = LocalStore(tmp_path / "vault", "ac-t")
    def event(item):
        return item_changed(tenant="ac-t", source="connector.test", person="J1", vertical="documents", item=item,
                            data=b"contenu", store=store).to_dict()

    assert parse(event(LONG_ID)).item_id == LONG_ID
    vault = Vault(engine, store)
    vault.put("J1", "documents", LONG_ID, b"contenu", {"media_type": "text/plain"})
    (v,) = vault.current("J1")
    assert v.item_id == LONG_ID and vault.read(v) == b"contenu"
    with pytest.raises((ItemEventError, ValueError), match="item"):
        parse(event(LONG_ID + "y"))
