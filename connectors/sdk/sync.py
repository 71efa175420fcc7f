"""Incremental sync: what changed at a source for one owner since the last time it was asked.

A scheduled sync must not read the whole ENT every hour. An exporter answers
:meth:`Exporter.changes` with a :class:`Changes`: the items new or changed since ``state`` (to
fetch), the ids deleted since, and the new state to keep for next time (plain JSON, stored by the
caller: the vault keeps it in its database). Two ways, declared in :attr:`Exporter.sync_modes`:

* ``etag`` (every exporter, the default): the owner is listed, and each item's ETag compared
  with the one in ``state``; only items whose ETag moved, or that have none, are returned. One
  listing, no content read for what did not change.
* ``sync-collection`` (WebDAV's RFC 6578 REPORT, CalDAV and CardDAV): the server itself says
  what changed since a token; nothing else is listed. A connector that declares it overrides
  :meth:`Exporter.changes`; when the server refuses a token (expired), it lists in full again.

The state: ``{"etags": {item id: etag or ""}, "tokens": {collection: token}}``; ``etags`` always
names every item the source holds, so the caller can check completeness (every item at the
source is kept) after applying the changes. Pure functions here; no I/O.
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .items import ItemRef

ETAG, SYNC_COLLECTION = "etag", "sync-collection"
SYNC_MODES = (ETAG, SYNC_COLLECTION)


@dataclass
class Changes:
    """What changed at the source for one owner (see the module's docstring)."""

    changed: list[ItemRef] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    state: dict[str, Any] = field(default_factory=dict)
    mode: str = ETAG  # how it was found out: etag | sync-collection
    full: bool = False  # the owner was listed in full (first sync, or a token refused)

    @property
    def source_ids(self) -> set[str]:
        """Every item the source holds after these changes."""
        return set(known_etags(self.state))


def known_etags(state: Mapping[str, Any] | None) -> dict[str, str]:
    """The ``etags`` of a state (empty when there is none or it is not a state)."""
    if not isinstance(state, Mapping):
        return {}
    etags = state.get("etags")
    if not isinstance(etags, Mapping):
        return {}
    return {str(k): str(v) for k, v in etags.items()}


def diff_listing(refs: Iterable[ItemRef], state: Mapping[str, Any] | None) -> Changes:
    """The ``etag`` way: ``refs`` are the owner's whole listing; an item is changed when it is new,
    its ETag differs from the state's, or either side has none; deleted when the state has it and the
    listing does not."""
    before = known_etags(state)
    changed: list[ItemRef] = []
    etags: dict[str, str] = {}
    for ref in refs:
        tag = ref.etag or ""
        etags[ref.id] = tag
        if not tag or before.get(ref.id) != tag:
            changed.append(ref)
    deleted = sorted(set(before) - set(etags))
    return Changes(changed, deleted, {"etags": etags}, ETAG, full=not before)


__all__ = ["Changes", "ETAG", "SYNC_COLLECTION", "SYNC_MODES", "diff_listing", "known_etags"]
