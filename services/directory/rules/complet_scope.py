"""Which records a Complet export may delete: those of complete families, in the structures it covers.

A Complet export lists every record of its family, so a stored record absent
from it has gone; but only
- in a family every Complet file of which imported in this run: a file that
  failed may hold the records that look absent (`families_to_sweep` leaves
  such a family out, and the run warns);
- in a family that had records before the run: nothing else can be absent;
- for persons, in the structures the Complet covers, those of the persons it
  lists: a person of another school is not absent, only elsewhere. Persons
  without a structure count as one structure, ``""``. Structures, MEFs and
  subjects are one whole each (`WHOLE`).
The covering is worked out in SQL, where the records are, by
`importing/complet_sweep.py` (`absent_records`: persons of the family whose
structure is that of a person seen in the run's Complet); what it finds goes
to the mass-deletion guard (`mass_deletion.py`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .families import FAMILIES

WHOLE = ""  # the one "structure" of a family without structures, and of persons without one


@dataclass(frozen=True)
class Sweep:
    """The families whose absent records may go, and those left out because a Complet file of theirs failed."""

    families: list[str]
    incomplete: list[str]


def families_to_sweep(complet_ok: Mapping[str, bool], had_records: Mapping[str, bool]) -> Sweep:
    """From {family: every Complet file of it imported} (in the order first met) and {family: it had records}."""
    families: list[str] = []
    incomplete: list[str] = []
    for family, ok in complet_ok.items():
        if family not in FAMILIES or not had_records.get(family):
            continue  # not a family, or nothing was there before this run: nothing can be absent
        (families if ok else incomplete).append(family)
    return Sweep(families, incomplete)
