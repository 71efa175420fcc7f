"""What a reported change does to an item: a new version, nothing (`unchanged`), or nothing (`stale`).

- same content, metadata and path as the latest version: nothing is added (`unchanged`), so the
  same change arriving twice under different event ids does nothing the second time; a
  tombstone over a tombstone is unchanged whatever it says;
- a change the ENT says happened before the latest version's (`changed_at`) is not applied
  (`stale`): it would bring back older content over newer, as when a retried event overtakes
  a later one, or a connector sends an old change again under a new event id; a deletion that
  overtakes its change so keeps the item deleted;
- else a new version (`new`).

Continuous mode, `Vault.put` / `delete` / `restore` and the contract-end export all go through
`plan_change` (`adapters/index.py`: `append`, `append_many`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..item_version import ItemVersion

NEW, UNCHANGED, STALE = "new", "unchanged", "stale"


@dataclass(frozen=True)
class Applied:
    """What a change did: `new` (a version was added), `unchanged` or `stale` (nothing was)."""

    outcome: str
    version: ItemVersion | None  # the version added, else the latest one (None: a stale change of nothing)


def plan_change(latest: ItemVersion | None, digest: str | None, metadata: dict, path: str | None,
                changed_at: datetime | None) -> str:
    """`new`, `unchanged` or `stale`: what storing this state of an item over `latest` means.

    `digest` None is a deletion; `changed_at` None: the change is not checked against the
    latest version's time."""
    if latest is None:
        return NEW
    if changed_at is not None and latest.changed_at is not None and changed_at < latest.changed_at:
        return STALE
    if latest.content_sha256 == digest and (digest is None or (latest.metadata == metadata and latest.path == path)):
        return UNCHANGED  # a tombstone over a tombstone is unchanged whatever it says
    return NEW
