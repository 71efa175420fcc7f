"""One published cell of a usage report: the shape every output (CSV, JSON, charts, the console) reads.

A report is a list of `Row`s, one per cell: an indicator, over one day, week or month of a
period, for one combination of structure, profile, level and resource (`ALL`: every value of that
dimension). `value` is None when disclosure control suppressed the cell (`status` says how it was
published). The data dictionary (services/usage/DATA-DICTIONARY.md) describes each field.
"""

from __future__ import annotations

from datetime import date
from typing import Any, NamedTuple

ALL = "*"  # every value of a dimension

GRAINS = ("day", "week", "month")
DIMENSIONS = ("structure", "profile", "level", "resource")
# How many dimensions a cell may be split by, per grain: every combination for the month; finer grains
# keep fewer, so that an academy's month stays a few million cells (a day by structure and resource
# would be 30 x 1,000 x 25 per indicator) and small cells, suppressed anyway, are not multiplied.
MAX_DIMENSIONS = {"day": 1, "week": 2, "month": 4}
INDICATORS = (
    "connections",  # sessions opened (the national doctrine's connection)
    "active_users",  # distinct people with at least one session, visit or access
    "visits",  # accesses to a resource or service (CAS ticket validated, SAML response sent)
    "licences_granted",  # licences held at the period's end (granted less revoked)
    "licences_used",  # distinct people who reached the resource at least once in the period
    "licences_unused",  # licences_granted - licences_used, never below 0
    "adoption_rate",  # licences_used / licences_granted
    "quota_exhausted",  # times the licence pool refused grants
)
STATUSES = ("published", "suppressed", "noisy")  # noisy: differential privacy added noise


class Row(NamedTuple):
    """A named tuple: immutable, and made fast (a report holds hundreds of thousands)."""

    period: str  # the period it belongs to, "2026-11"
    grain: str  # one of GRAINS
    start: date  # the first day of the day, week (cut at the period's bounds) or month
    indicator: str  # one of INDICATORS
    structure: str = ALL  # UAI
    profile: str = ALL  # national profile (National_ELV, National_ENS, ...)
    level: str = ALL  # the pupil's level (MEF family), else ALL
    resource: str = ALL  # a resource (ark:/...) or a service (CAS service or SAML platform name)
    value: float | None = None  # None: suppressed
    status: str = "published"  # one of STATUSES

    def to_dict(self) -> dict[str, Any]:
        """The row's fields by name, `start` as ISO text (fields are plain values: nothing to copy deeply)."""
        return self._asdict() | {"start": self.start.isoformat()}
