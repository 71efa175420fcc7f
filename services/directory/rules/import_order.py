"""The order a run applies records in, so that the same record twice in one run ends as the later file says.

- Files go family by family in `FAMILIES` order (structures, MEFs and
  subjects before the persons who refer to them), and within a family by file
  name: AAF names carry the kind and the export's date, so of two exports of
  one kind the later comes later and its version of a record is the one that
  stays (and any Complet comes before any Delta, `Complet` < `Delta`).
- Within a batch, a record whose key came earlier in the batch starts a new
  step (`distinct_key_runs`): each step is compared with the database as the
  steps before it left it, so the second version sees the first.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol, TypeVar

from .families import FAMILIES

_RANK = {f: i for i, f in enumerate(FAMILIES)}


def order_key(family: str | None, file_name: str) -> tuple[int, str]:
    """Sort key of a file: its family's rank (unknown families last), then its name."""
    return _RANK.get(family or "", len(_RANK)), file_name


class Keyed(Protocol):
    @property
    def key(self) -> str: ...


K = TypeVar("K", bound=Keyed)


def distinct_key_runs(items: Sequence[K]) -> Iterator[Sequence[K]]:
    """`items` cut, in order, into runs in which no key appears twice (a run ends before a repeated key)."""
    start = 0
    seen_keys: set[str] = set()
    for i, item in enumerate(items):
        if item.key in seen_keys:
            yield items[start:i]
            start, seen_keys = i, set()
        seen_keys.add(item.key)
    yield items[start:]
