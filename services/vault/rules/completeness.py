"""After a sync, is every item of the source in the vault, and nothing more? Plain Python, no I/O.

The same per-person check as the contract-end export's verification (`transfer/compare.py`),
on what a sync knows without reading the source again: the ids the source holds (its sync state
after the changes), the vault's live items of that person and vertical, and the blobs the store
holds. Each miss is named by item id and reason; item ids can hold names, so callers keep
misses out of logs and put them in reports only.
"""
from __future__ import annotations

from collections.abc import Container, Iterable, Mapping

NOT_IN_VAULT = "at the source but not in the vault"
NOT_AT_SOURCE = "live in the vault but no longer at the source"
CONTENT_MISSING = "indexed in the vault without its content in the store"


def misses(source_ids: Iterable[str], vault_live: Mapping[str, str | None],
           stored: Container[str]) -> list[dict[str, str]]:
    """``vault_live``: item id -> content sha256 of its latest live version."""
    source = set(source_ids)
    found = [{"item": i, "reason": NOT_IN_VAULT} for i in sorted(source - set(vault_live))]
    found += [{"item": i, "reason": NOT_AT_SOURCE} for i in sorted(set(vault_live) - source)]
    found += [{"item": i, "reason": CONTENT_MISSING} for i, digest in sorted(vault_live.items())
              if i in source and digest is not None and digest not in stored]
    return found
