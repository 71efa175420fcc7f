"""A pupil's relatives, and which of them are legal guardians.

`ENTElevePersRelEleve` = `relative$link$financial$legal$contact$payment`: the
relative's jointure (required), the link code, then four yes/no fields. The
brief says legal = 1 marks a legal guardian; the sample export also has `2`
there (the second legal representative), so any value but empty, `0` or `N`
counts (`aaf_values.flag`), and so for the other three.
"""

from __future__ import annotations

from .aaf_values import fields, flag

ATTRIBUTE = "ENTElevePersRelEleve"


def relative_membership(value: str) -> dict:
    """One `ENTElevePersRelEleve` value as the pupil's `relative` membership."""
    parts = fields(ATTRIBUTE, value, 6, required=1)
    return {
        "kind": "relative",
        "person": parts[0],
        "link": parts[1] or None,
        "financial": flag(parts[2]),
        "legal_guardian": flag(parts[3]),
        "contact": flag(parts[4]),
        "payment": flag(parts[5]),
    }
