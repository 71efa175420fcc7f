"""An in-memory directory that satisfies the SSO's DirectoryPort: a port fake for the pure rules' tests.

It answers the port's questions from a few canonical Person records (contracts/README.md), the
way the directory does: pupils by SIECLE id within the structure of a UAI, relatives of a
pupil by name ignoring case and accents, accounts by e-mail ignoring case, a relative's
children by the link kept on the pupil. It also counts the questions asked.
"""

from __future__ import annotations

import unicodedata
from collections import Counter
from typing import Any


def _folded(text: str | None) -> str:
    decomposed = unicodedata.normalize("NFKD", text or "")
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


class InMemoryDirectory:
    def __init__(self, people: list[dict[str, Any]], structures: list[dict[str, Any]]) -> None:
        self.people = {p["jointure"]: p for p in people}
        self.structures = structures
        self.asked: Counter[str] = Counter()

    def get_person(self, jointure: str) -> dict | None:
        self.asked["get_person"] += 1
        return self.people.get(jointure)

    def get_structure(self, key: str) -> dict | None:
        self.asked["get_structure"] += 1
        return next((s for s in self.structures if key in (s["jointure"], s["uai"])), None)

    def find_pupils(self, struct_rattach_id: str, uai: str) -> list[dict]:
        self.asked["find_pupils"] += 1
        structure = self.get_structure(uai)
        return [p for p in self.people.values() if p["category"] == "Eleve"
                and p.get("struct_rattach_id") == struct_rattach_id
                and structure is not None and p.get("structure") == structure["jointure"]]

    def find_parents(self, pupil_struct_rattach_id: str, uai: str, last_name: str, first_name: str) -> list[dict]:
        self.asked["find_parents"] += 1
        relatives = {m["person"] for pupil in self.find_pupils(pupil_struct_rattach_id, uai)
                     for m in pupil.get("memberships", ()) if m["kind"] == "relative"}
        return [self.people[r] for r in sorted(relatives) if r in self.people
                and _folded(self.people[r].get("last_name")) == _folded(last_name)
                and _folded(self.people[r].get("first_name")) == _folded(first_name)]

    def find_by_email(self, email: str) -> list[dict]:
        self.asked["find_by_email"] += 1
        return [p for p in self.people.values() if p.get("email") and p["email"].casefold() == email.casefold()]

    def children(self, relative: str) -> list[dict]:
        self.asked["children"] += 1
        return [p for p in self.people.values() if any(m["kind"] == "relative" and m["person"] == relative
                                                        for m in p.get("memberships", ()))]


def person(jointure: str, category: str, **fields: Any) -> dict[str, Any]:
    return {"jointure": jointure, "category": category, "memberships": [], **fields}


def academy() -> InMemoryDirectory:
    """Two schools; pupils 1001 and 1002 in the first, whose relatives are R1 (of both) and R2 (a homonym of
    R1, of 1001); pupil 2001 in the second, with the same SIECLE id as 1001; a teacher and a secretary."""
    structures = [{"jointure": "S1", "uai": "0750001A", "name": "COLLEGE UN"},
                  {"jointure": "S2", "uai": "0750002B", "name": "LYCEE DEUX"}]
    people = [
        person("1001", "Eleve", first_name="Élodie", last_name="Martin", structure="S1", struct_rattach_id="R1001",
               memberships=[{"kind": "relative", "person": "R1"}, {"kind": "relative", "person": "R2"}]),
        person("1002", "Eleve", first_name="Lucas", last_name="Martin", structure="S1", struct_rattach_id="R1002",
               memberships=[{"kind": "relative", "person": "R1"}]),
        person("2001", "Eleve", first_name="Inès", last_name="Petit", structure="S2", struct_rattach_id="R1001"),
        person("R1", "PersRelEleve", first_name="Hélène", last_name="Dupré"),
        person("R2", "PersRelEleve", first_name="Helene", last_name="DUPRE"),
        person("T1", "PersEducNat", first_name="Anne", last_name="Prof", structure="S1", email="anne.prof@ac-test.fr"),
        person("X1", "PersRelEleve", first_name="Anne", last_name="Autre", email="anne.prof@ac-test.fr"),
    ]
    return InMemoryDirectory(people, structures)
