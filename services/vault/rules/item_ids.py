"""Which items the vault can keep: the verticals, and the ids, person ids and paths it accepts.

- An item belongs to one of `VERTICALS`.
- Its id (the ENT's stable id for it) is a safe relative path, as the archive format requires
  (an item's file in a bag is `files/<id>`): not empty, no NUL, no backslash, not absolute, no
  `.`, `..` or empty segment; it is kept in Unicode NFC (`check_item`).
- Person ids (AAF jointures), item ids and paths have the lengths of the index's columns and of
  the contracts' schemas (`PERSON_MAX`, `ITEM_MAX`, `PATH_MAX`; migration 0016_vault_item_id_1024).
  The contract-end export refuses an item beyond them, or whose id is not NFC (`refusal`).
"""
from __future__ import annotations

import unicodedata
from pathlib import PurePosixPath

VERTICALS = ("documents", "calendars", "contacts", "messages", "blogs", "homework")
PERSON_MAX, ITEM_MAX, PATH_MAX = 64, 1024, 1024  # as contracts/vault/schemas (relpath); 0016_vault_item_id_1024


class UnsafePath(ValueError):
    """A path (an item id, a bag's payload path) that could escape where it is kept."""


def safe_path(rel: str) -> str:
    """Return the NFC-normalised POSIX form of ``rel`` or raise UnsafePath if it could escape the bag."""
    if not rel or "\x00" in rel or "\\" in rel:
        raise UnsafePath(f"unsafe path {rel!r}: empty, NUL or backslash")
    norm = unicodedata.normalize("NFC", rel)
    p = PurePosixPath(norm)
    if p.is_absolute() or any(part in ("..", ".", "") for part in norm.split("/")):
        raise UnsafePath(f"unsafe path {rel!r}: absolute or contains '.'/'..'/empty segment")
    return norm


def check_item(vertical: str, item_id: str) -> str:
    """The item id in its stored form (NFC, safe path); ValueError naming what is wrong
    (UnsafePath for the id itself)."""
    if vertical not in VERTICALS:
        raise ValueError(f"unknown vertical {vertical!r}; expected one of {', '.join(VERTICALS)}")
    return safe_path(item_id)


def refusal(person: str, vertical: str, item_id: str, path: str | None) -> str | None:
    """Why the vault cannot index this item as it is (ids too long for its index, unsafe id), or None."""
    if len(person) > PERSON_MAX:
        return f"person id longer than {PERSON_MAX} characters"
    if len(item_id) > ITEM_MAX:
        return f"item id longer than {ITEM_MAX} characters"
    if path and len(path) > PATH_MAX:
        return f"path longer than {PATH_MAX} characters"
    try:
        if check_item(vertical, item_id) != item_id:
            return "item id is not in Unicode NFC"
    except ValueError as exc:  # UnsafePath, or a vertical the vault does not know
        return f"item id refused: {exc}"
    return None
