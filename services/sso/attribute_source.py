"""A person's ENT attributes, read through the directory port, with the structures' UAIs kept a while.

What the attributes are is rules/ent_attributes.py; this reads what they are made
of (the person, their structures' UAIs, a relative's children) from the directory.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from .directory_port import DirectoryPort
from .rules.ent_attributes import ent_attributes


class AttributeSource:
    """Builds a person's ENT attributes through the directory port, caching structure UAIs.

    `uai_ttl` (seconds): how long a structure's UAI is remembered. 0 keeps it for this object's life (one
    request); an application keeps one source with a few minutes, which spares a directory call per ticket
    validation (a UAI changes, if ever, once a year).
    """

    def __init__(self, directory: DirectoryPort, *, uai_ttl: float = 0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.directory = directory
        self.uai_ttl = uai_ttl
        self._clock = clock
        self._uai: dict[str, tuple[str | None, float]] = {}

    def uai_of(self, structure: str) -> str | None:
        now = self._clock()
        known = self._uai.get(structure)
        if known is None or (self.uai_ttl and now - known[1] >= self.uai_ttl):
            record = self.directory.get_structure(structure)
            known = self._uai[structure] = ((record or {}).get("uai"), now)
        return known[0]

    def for_person(self, jointure: str) -> dict[str, list[str]] | None:
        person = self.directory.get_person(jointure)
        if person is None:
            return None
        attrs = ent_attributes(person, self.uai_of)
        if person.get("category") == "PersRelEleve":
            # A relative's children: the pupils naming them (the directory keeps the link on the pupil).
            children = getattr(self.directory, "children", None)
            if children is not None:
                kids = [c["jointure"] for c in children(jointure)]
                if kids:
                    attrs["ENTAuxPersRelEleveEleve"] = kids
        return attrs
