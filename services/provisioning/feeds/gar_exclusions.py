"""GAR feed exclusions: the records the GAR's XSD cannot take, left out of the feed and listed with their reason.

Free of I/O. A pupil or a member of staff needs a structure with a known UAI
and a last and a first name; a resource manager needs a name and an e-mail
address. Nothing is invented to fill the gap: the record is left out and
the report says why, so someone can fix it in the directory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def person_left_out(record: Mapping[str, Any], structures: Sequence[str]) -> str | None:
    """Why a pupil's or a staff member's record cannot go into the feed, or None.

    `structures`: the UAIs of the structures the person belongs to that the feed knows.
    """
    if not structures:
        return "no structure with a known UAI"
    if not record.get("last_name") or not record.get("first_name"):
        return "no last or first name (required by the GAR)"
    return None


def manager_left_out(record: Mapping[str, Any] | None) -> str | None:
    """Why a resource manager's record cannot go into the `RespAff` file, or None (`record` None: not in the view)."""
    if record is None:
        return "not in the directory"
    if not record.get("email") or not record.get("last_name") or not record.get("first_name"):
        return "a resource manager needs a name and an e-mail address (required by the GAR)"
    return None
