"""The names people read for the report's machine values: columns, indicators, grains, statuses, profiles.

Files keep the machine names (`licences_used`, `National_ELV`: open-data portals join on them); what
a person reads (a chart, the console) is the label, translated through the catalogue
(relais/locale, msgids marked `N_` here and extracted by the catalogue test). A value with no label
(an unknown profile code, a resource) is shown as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from services.usage.rules.observations import UNKNOWN
from services.usage.rules.rows import ALL


def N_(msgid: str) -> str:
    """Marks a msgid for the catalogue without translating it here (gettext's name for it)."""
    return msgid


COLUMNS = {
    "period": N_("Period"),
    "grain": N_("Grain"),
    "start": N_("Start"),
    "indicator": N_("Indicator"),
    "structure": N_("Structure"),
    "profile": N_("Profile"),
    "level": N_("Level"),
    "resource": N_("Resource or service"),
    "value": N_("Value"),
    "status": N_("Status"),
}
INDICATORS = {
    "connections": N_("Connections"),
    "active_users": N_("Active users"),
    "visits": N_("Visits"),
    "licences_granted": N_("Licences granted"),
    "licences_used": N_("Licences used"),
    "licences_unused": N_("Licences unused"),
    "adoption_rate": N_("Adoption rate"),
    "quota_exhausted": N_("Quota exhausted"),
}
GRAINS = {"day": N_("Day"), "week": N_("Week"), "month": N_("Month")}
STATUSES = {
    "published": N_("Published"),
    "suppressed": N_("Suppressed (statistical confidentiality)"),
    "noisy": N_("Published with noise (differential privacy)"),
}
PROFILES = {
    "National_ELV": N_("Pupils"),
    "National_TUT": N_("Parents and guardians"),
    "National_ENS": N_("Teachers"),
    "National_DOC": N_("Librarians"),
    "National_DIR": N_("Management staff"),
    "National_EVS": N_("School life staff"),
    "National_ETA": N_("Administrative and technical staff"),
}
EVERY = N_("All")  # the label of ALL, every value of a dimension
NOT_KNOWN = N_("Unknown")  # the label of UNKNOWN: the event did not say (no structure, profile or level)


def label(names: Mapping[str, str], value: str, _: Callable[[str], str]) -> str:
    """What a person reads for a machine value: its translated label, "All" for ALL, else the value itself."""
    if value == ALL:
        return _(EVERY)
    if value == UNKNOWN:
        return _(NOT_KNOWN)
    return _(names[value]) if value in names else value
