"""Whose bag an owner's items make, and what the bag is called. Plain Python, no I/O.

The vault keeps items per owner. An owner is a person (an AAF jointure), or a structure's shared
spaces: class and school documents, blogs and pages, the cahier de textes of its classes, which belong
to no one person. Connectors report those under the owner id ``structure:<UAI>``
(contracts/vault/SPEC.md §1), and they go into the structure's bag; everything else is a person's and
goes into that person's bag. A person's own item shared with a class stays in the person's bag (its
``sharing`` says with whom).

A bag is named ``person-<jointure>`` or ``structure-<UAI>``: a folder, a zip (``<name>.zip``) or an S3
prefix. Characters other than ASCII letters, digits, ``.``, ``_`` and ``-`` are percent-encoded, so a
name is the same on every file system and never escapes where bags are written.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

STRUCTURE_PREFIX = "structure:"
PERSON, STRUCTURE = "person", "structure"
_UAI = re.compile(r"^[0-9]{7}[A-Z]$")
_NAME = re.compile(r"^(person|structure)-([A-Za-z0-9._%-]+)$")


class BadOwner(ValueError):
    """An owner id or a bag name that names no person nor structure."""


@dataclass(frozen=True)
class BagOwner:
    """Whose items a bag holds: ``kind`` person or structure, ``id`` the jointure or the UAI."""

    kind: str
    id: str

    @property
    def owner(self) -> str:
        """The owner id the vault keeps the items under."""
        return self.id if self.kind == PERSON else f"{STRUCTURE_PREFIX}{self.id}"

    @property
    def bag_name(self) -> str:
        return f"{self.kind}-{quote(self.id, safe='')}"

    def bag_info(self) -> dict[str, str]:
        """The bag-info.txt fields that say whose bag it is (SPEC §2)."""
        return {"Relais-Person-Jointure": self.id} if self.kind == PERSON else {"Relais-Structure-UAI": self.id}


def owner_of(owner: str) -> BagOwner:
    """The bag owner of a vault owner id: a structure for ``structure:<UAI>``, else a person."""
    if owner.startswith(STRUCTURE_PREFIX):
        return structure(owner[len(STRUCTURE_PREFIX):])
    if not owner:
        raise BadOwner("empty owner id")
    return BagOwner(PERSON, owner)


def structure(uai: str) -> BagOwner:
    """A structure's bag owner; BadOwner unless ``uai`` is a UAI (7 digits and a capital letter)."""
    if not _UAI.match(uai):
        raise BadOwner(f"{uai!r} is not a UAI (7 digits and a capital letter, such as 0690001A)")
    return BagOwner(STRUCTURE, uai)


def from_bag_info(info: dict[str, list[str]], where: str) -> BagOwner:
    """Whose bag this is, from its bag-info.txt; BadOwner naming ``where`` when it says neither or both."""
    person = (info.get("Relais-Person-Jointure") or [""])[0]
    uai = (info.get("Relais-Structure-UAI") or [""])[0]
    if person:
        return BagOwner(PERSON, person)  # a person bag may also name its structure (SPEC §2: optional)
    if uai:
        try:
            return structure(uai)
        except BadOwner as exc:
            raise BadOwner(f"{where}: bag-info.txt Relais-Structure-UAI: {exc}") from None
    raise BadOwner(f"{where}: bag-info.txt has neither Relais-Person-Jointure nor Relais-Structure-UAI")


def from_bag_name(name: str) -> BagOwner:
    """The owner a bag name stands for (``person-2605692``, ``structure-0690001A``)."""
    m = _NAME.match(name)
    if not m:
        raise BadOwner(f"{name!r} is not a bag name (person-<jointure> or structure-<UAI>)")
    return structure(unquote(m[2])) if m[1] == STRUCTURE else BagOwner(PERSON, unquote(m[2]))
