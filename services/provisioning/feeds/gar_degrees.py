"""Which GAR feed a structure and a person belong to: écoles go to the first-degree feed, the rest to the other.

Free of I/O. The GAR takes two feeds from an ENT covering both degrees: the
second-degree one (`GAR-ENT.xsd`) for collèges and lycées, the first-degree
one (`GAR-ENT-1D.xsd`) for écoles. A structure is an école when the
directory's record of it has a `first_degree` object (an aaf1d export's
école: see services/directory/rules/first_degree.py). A person goes into the
feed of each degree where they have a structure, with that degree's
structures only; a person whose every structure is of the other degree is
simply not in this feed (not "left out": they are in the other one).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Degrees:
    """Structure jointure -> UAI, for the second-degree structures and for the écoles."""

    second: dict[str, str]
    first: dict[str, str]


def split_structures(rows: Iterable[tuple[str, str | None, Mapping[str, Any]]]) -> Degrees:
    """From (jointure, UAI, directory Structure record): the structures with a UAI, by degree."""
    second: dict[str, str] = {}
    first: dict[str, str] = {}
    for jointure, uai, record in rows:
        if uai:
            (first if record.get("first_degree") else second)[jointure] = uai
    return Degrees(second, first)


def only_elsewhere(record: Mapping[str, Any], here: Mapping[str, str], elsewhere: Mapping[str, str]) -> bool:
    """Whether a person has no structure of this feed's degree (`here`) and one of the other's (`elsewhere`)."""
    structures = {m.get("structure") for m in record.get("memberships") or () if m.get("kind") == "structure"}
    return not any(s in here for s in structures) and any(s in elsewhere for s in structures)
