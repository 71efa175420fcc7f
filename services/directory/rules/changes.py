"""What changed between two versions of a record: the `changes` of `.updated` events and the memberships moved.

Scalar fields and raw attributes that differ become `{"before", "after"}`
pairs (attributes under `attributes.<name>`); memberships are compared whole,
so a changed relative flag is one membership removed and one added.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

Record = dict[str, Any]


def diff_memberships(before: list[dict], after: list[dict]) -> tuple[list[dict], list[dict]]:
    """Memberships added and removed (a changed relative flag is one removed + one added)."""
    old = {orjson.dumps(m, option=orjson.OPT_SORT_KEYS): m for m in before}
    new = {orjson.dumps(m, option=orjson.OPT_SORT_KEYS): m for m in after}
    added = [m for k, m in new.items() if k not in old]
    removed = [m for k, m in old.items() if k not in new]
    return added, removed


def diff_fields(before: Record, after: Record, fields: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The fields among `fields` whose values differ."""
    return {
        f: {"before": before.get(f), "after": after.get(f)}
        for f in fields
        if before.get(f) != after.get(f)
    }


def diff_attributes(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Raw AAF attributes that changed, as `attributes.<name>` changes."""
    return {
        f"attributes.{name}": {"before": before.get(name), "after": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }
