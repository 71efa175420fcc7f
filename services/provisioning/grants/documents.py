"""Walking the entries of a configuration document (catalogue, rules) and naming each in errors."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


def entries(document: Mapping[str, Any], key: str, noun: str, problems: list[str]) -> Iterator[tuple[str, dict]]:
    """Each mapping of `document[key]` with its label ("rule #3 (maths-6a)") for error messages.

    What is not a list, not a mapping or an id seen before goes to `problems`
    instead; the caller refuses the document if `problems` is not empty.
    """
    items = document.get(key)
    if not isinstance(items, list):
        problems.append(f"the document has no '{key}' list")
        return
    seen: set[str] = set()
    for n, entry in enumerate(items, start=1):
        ident = entry.get("id") if isinstance(entry, dict) else None
        where = f"{noun} #{n}" + (f" ({ident})" if ident else "")
        if not isinstance(entry, dict):
            problems.append(f"{where}: not a mapping")
        elif ident in seen:
            problems.append(f"{where}: id {ident!r} appears twice")
        else:
            if isinstance(ident, str):
                seen.add(ident)
            yield where, entry
