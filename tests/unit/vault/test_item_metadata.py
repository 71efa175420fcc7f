"""How the vault keeps a connector item's metadata and kind (services/vault/rules/item_metadata.py)."""
from __future__ import annotations

import pytest

from services.vault.item_version import ItemVersion
from services.vault.rules.item_metadata import connector_metadata, item_kind, vault_metadata


def version(metadata: dict) -> ItemVersion:
    return ItemVersion("ac-lyon", "2605692", "calendars", "perso", 1, "a" * 64, metadata)


def test_the_vault_keeps_the_connector_metadata_plus_its_kind_and_gives_it_back_without():
    kept = vault_metadata({"displayname": "Emploi du temps", "extra": {"vendor:x": [1, 2]}}, "folder")
    assert kept == {"displayname": "Emploi du temps", "extra": {"vendor:x": [1, 2]}, "kind": "folder"}
    assert item_kind(version(kept)) == "folder"
    assert connector_metadata(version(kept)) == {"displayname": "Emploi du temps", "extra": {"vendor:x": [1, 2]}}


def test_an_item_without_a_kind_is_a_file():
    assert item_kind(version({"title": "TD"})) == "file"  # stored by continuous mode
    assert item_kind(version({"kind": "something else"})) == "file"


def test_metadata_that_is_not_json_is_refused():
    with pytest.raises(ValueError):
        vault_metadata({"size": float("nan")}, "file")
    with pytest.raises(TypeError):
        vault_metadata({"when": object()}, "file")
    assert vault_metadata({"t": (1, 2)}, "file") == {"t": [1, 2], "kind": "file"}  # as JSON keeps it
