"""How long a deleted item stays restorable, and when its tombstone may be purged.

- A tenant may have a retention policy of its own (`relais vault retention --days N`). A tenant
  without one gets the default: RELAIS_VAULT_RETENTION_DAYS, itself `DEFAULT_DAYS` (90) unless set.
- A deletion is a tombstone restorable until its deletion + the retention in force: its
  `purge_after`. Setting a policy moves the `purge_after` of every tombstone already there to
  its deletion + the new number of days.
- The purge removes an item (all its versions) only when its newest version is a tombstone
  whose `purge_after` has come; a restored item (newest version live) is never purged.
  `adapters/index.py` selects those items in SQL with the same condition (`expired_items`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from ..item_version import ItemVersion

DEFAULT_DAYS = 90  # the default of RELAIS_VAULT_RETENTION_DAYS
DEFAULT_PERIOD = timedelta(days=DEFAULT_DAYS)


@dataclass(frozen=True)
class Retention:
    """The retention in force for a tenant: how long, and whether it is the tenant's own policy
    (`relais vault status` says `tenant`) or the default (`default`)."""

    period: timedelta
    own: bool


def in_force(tenant_days: int | None, default: timedelta = DEFAULT_PERIOD) -> Retention:
    """The tenant's own policy (`tenant_days`) when it has one, else `default`."""
    if tenant_days is None:
        return Retention(default, own=False)
    return Retention(timedelta(days=tenant_days), own=True)


def check_days(days: int) -> int:
    """A policy of `days` days, refused (ValueError) when negative."""
    if days < 0:
        raise ValueError(f"retention of {days} days: expected 0 or more")
    return days


def purge_after(deleted_at: datetime, period: timedelta) -> datetime:
    """Until when a tombstone made at `deleted_at` stays restorable under a retention of `period`."""
    return deleted_at + period


def purgeable(latest: ItemVersion, now: datetime) -> bool:
    """Whether the item whose newest version is `latest` may be purged at `now` (all its versions)."""
    return latest.deleted and latest.purge_after is not None and latest.purge_after <= now
