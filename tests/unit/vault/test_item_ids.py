"""The verticals, item ids, person ids and paths the vault accepts (services/vault/rules/item_ids.py)."""
from __future__ import annotations

import unicodedata

import pytest

from services.vault.rules.item_ids import (
    ITEM_MAX,
    PATH_MAX,
    PERSON_MAX,
    VERTICALS,
    UnsafePath,
    check_item,
    refusal,
    safe_path,
)


def test_unicode_normalised_nfc():
    nfd = unicodedata.normalize("NFD", "Élève/été.txt")
    assert safe_path(nfd) == unicodedata.normalize("NFC", "Élève/été.txt")


@pytest.mark.parametrize("bad", ["../etc/passwd", "/abs", "a/../b", "a//b", "a\\b", "", "a/./b", "a\x00b", "dir/"])
def test_unsafe_paths_are_refused(bad):
    with pytest.raises(UnsafePath, match="unsafe path"):
        safe_path(bad)


def test_an_item_is_of_a_known_vertical_with_a_safe_id():
    assert VERTICALS == ("documents", "calendars", "contacts", "messages", "blogs", "homework")
    assert check_item("documents", unicodedata.normalize("NFD", "Classe 6ᵉ/é.odt")) == \
        unicodedata.normalize("NFC", "Classe 6ᵉ/é.odt")
    with pytest.raises(ValueError, match="unknown vertical 'photos'; expected one of documents, calendars") as err:
        check_item("photos", "a.jpg")
    assert not isinstance(err.value, UnsafePath)
    with pytest.raises(UnsafePath):
        check_item("documents", "../a")


def test_what_the_export_refuses_to_index():
    assert refusal("2605692", "documents", "Cours/td.pdf", "Cours/td.pdf") is None
    assert refusal("p" * PERSON_MAX, "documents", "i" * ITEM_MAX, "x" * PATH_MAX) is None  # at the limits
    assert refusal("p" * (PERSON_MAX + 1), "documents", "a", None) == "person id longer than 64 characters"
    assert refusal("p", "documents", "i" * (ITEM_MAX + 1), None) == "item id longer than 1024 characters"
    assert refusal("p", "documents", "a", "x" * (PATH_MAX + 1)) == "path longer than 1024 characters"
    assert refusal("p", "documents", unicodedata.normalize("NFD", "é.txt"), None) == "item id is not in Unicode NFC"
    assert refusal("p", "documents", "../a", None).startswith("item id refused: unsafe path '../a'")
