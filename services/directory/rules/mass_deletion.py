"""What a mass deletion is, and when an import refuses one.

A Complet export deletes the records absent from it (`complet_scope.py` says
which records may count as absent). A truncated or partial export must not
wipe a school: when the absent records of one structure are more than
`max_delete_share` of the records it has now (its accounts, absent ones
included), that structure's deletion is a mass deletion, and the import is
refused as a whole: nothing deleted, nothing else changed either, and the
message names every such structure (the first ten). `force` applies the
deletions all the same. A family without structures (structures, MEFs,
subjects), and persons without one, count as one whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from .complet_scope import WHOLE

LISTED = 10  # mass deletions named in a refusal


@dataclass(frozen=True)
class Absentees:
    """One family's records absent from its Complet, in the structures the Complet covers."""

    family: str
    absent: Sequence[tuple[str, str]]  # (key, structure): `WHOLE` for a family without structures
    accounts: Mapping[str, int]  # structure -> the records it has now, the absent ones included


@dataclass(frozen=True)
class MassDeletion:
    """A structure that would lose more than the share allowed."""

    family: str
    structure: str
    absent: int
    accounts: int

    @property
    def share(self) -> float:
        return self.absent / max(self.accounts, 1)

    def __str__(self) -> str:
        where = f"structure {self.structure}" if self.structure != WHOLE else "all records"
        return (f"{self.family}: {self.absent} of {self.accounts} ({self.share:.0%}) in {where} "
                "are absent from the Complet")


@dataclass(frozen=True)
class Verdict:
    """Which deletions happen, and why none do when the import is refused."""

    deletions: list[tuple[str, list[str]]]  # (family, keys) to delete, in order; empty when refused
    mass_deletions: list[MassDeletion]  # above the share (applied all the same when forced)
    refusal: str | None  # the message when the import is refused


def verdict(absentees: Iterable[Absentees], max_delete_share: float, force: bool) -> Verdict:
    """The deletions of these absent records, unless a structure would lose more than `max_delete_share`."""
    deletions: list[tuple[str, list[str]]] = []
    mass: list[MassDeletion] = []
    for family_absent in absentees:
        if not family_absent.absent:
            continue
        mass.extend(_mass_deletions(family_absent, max_delete_share))
        deletions.append((family_absent.family, [key for key, _structure in family_absent.absent]))
    if mass and not force:
        return Verdict([], mass, refusal_message(mass, max_delete_share))
    return Verdict(deletions, mass, None)


def _mass_deletions(family_absent: Absentees, max_delete_share: float) -> list[MassDeletion]:
    per_structure: dict[str, int] = {}
    for _key, structure in family_absent.absent:
        per_structure[structure] = per_structure.get(structure, 0) + 1
    found = []
    for structure, n in per_structure.items():
        deletion = MassDeletion(family_absent.family, structure, n, family_absent.accounts.get(structure, n))
        if deletion.share > max_delete_share:
            found.append(deletion)
    return found


def refusal_message(mass: Sequence[MassDeletion], max_delete_share: float) -> str:
    """Why the import was refused, naming the first mass deletions."""
    listed = "; ".join(str(m) for m in mass[:LISTED]) + ("; …" if len(mass) > LISTED else "")
    return (
        f"refused: the Complet export would delete more than {max_delete_share:.0%} "
        f"of a structure's accounts ({listed}). A truncated export must not wipe a school: "
        "check the files, or run again with --force if the departures are real. Nothing was changed."
    )
