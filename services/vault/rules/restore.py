"""Which version a restore brings back.

`relais vault restore` (and `Vault.restore`) makes the item's last live version, or the version
asked for, its newest version. There is nothing to restore when the item was never stored (or
was purged), when every version is a tombstone, or when the version asked for is missing or a
tombstone: LookupError saying which. An item already live at that content is left as it is
(the new version would be `unchanged`: `rules/changes.py`).
"""
from __future__ import annotations

from collections.abc import Sequence

from ..item_version import ItemVersion


def version_to_restore(history: Sequence[ItemVersion], version: int | None, *, person: str,
                       vertical: str) -> ItemVersion:
    """The version of `history` (every version of the item, oldest first) to bring back:
    `version`, or the last live one."""
    if version is None:
        live = [v for v in history if not v.deleted]
        if not live:
            raise LookupError(f"nothing to restore for {vertical} item of person {person}: "
                              + ("every version is a tombstone" if history else "no version stored (or purged)"))
        return live[-1]
    source = next((v for v in history if v.version == version), None)
    if source is None:
        raise LookupError(f"{vertical} item of person {person} has no version {version} "
                          f"(versions: {', '.join(str(v.version) for v in history) or 'none'})")
    if source.deleted:
        raise LookupError(f"version {version} of that {vertical} item is a tombstone: give a version with content")
    return source
