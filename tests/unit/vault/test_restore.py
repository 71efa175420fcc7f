"""Which version a restore brings back (services/vault/rules/restore.py)."""
from __future__ import annotations

import pytest

from services.vault.item_version import ItemVersion
from services.vault.rules.restore import version_to_restore


def v(n: int, sha: str | None) -> ItemVersion:
    return ItemVersion("ac-lyon", "2605692", "documents", "doc-81f3", n, sha)


HISTORY = [v(1, "a" * 64), v(2, "b" * 64), v(3, None)]  # two contents, then deleted


def restore(history, version=None):
    return version_to_restore(history, version, person="2605692", vertical="documents")


def test_by_default_the_last_live_version_comes_back():
    assert restore(HISTORY).version == 2
    assert restore([*HISTORY, v(4, "c" * 64)]).version == 4  # live already: its latest (the change is unchanged)


def test_a_given_version_with_content_comes_back():
    assert restore(HISTORY, 1).content_sha256 == "a" * 64


def test_a_tombstone_or_a_missing_version_is_refused_saying_which():
    with pytest.raises(LookupError, match="version 3 of that documents item is a tombstone: give a version"):
        restore(HISTORY, 3)
    with pytest.raises(LookupError, match=r"documents item of person 2605692 has no version 9 \(versions: 1, 2, 3\)"):
        restore(HISTORY, 9)
    with pytest.raises(LookupError, match=r"has no version 1 \(versions: none\)"):
        restore([], 1)


def test_nothing_to_restore_says_why():
    with pytest.raises(LookupError, match="nothing to restore for documents item of person 2605692: "
                                          "every version is a tombstone"):
        restore([v(1, None)])
    with pytest.raises(LookupError, match=r"no version stored \(or purged\)"):
        restore([])
