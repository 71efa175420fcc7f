"""Which directory account a national identity is: plain rules over the DirectoryPort, no I/O of its own.

EduConnect (pupils and parents):
1. `FrEduCtRefId` values `{AAF}academyCode|…|jointure` name the AAF jointure directly.
   A value whose person is of the wrong kind for `FrEduCtPersonAffiliation` (a
   parent's id given for a pupil login) is ignored.
2. Otherwise `FrEduVecteur` values `type|NOM|Prénom|structRattachId|UAI`:
   type 3/4 (pupil 1st/2nd degree) matches the pupil with that SIECLE id in the
   structure of that UAI; type 1/2 (parent) matches the relatives of that pupil
   whose names match, ignoring case and accents (the directory's `find_parents`).
   A parent sends one vector per child: the accounts found are pooled.
The academic agent IdP (staff): the academic e-mail (`mail`, or the attribute
the IdP is configured with), among staff accounts (`PersEducNat`).

One account: log in. Several: the user chooses (never us). None: a page that
says what to do, and an audit event. `Match.notes` says what was tried, for
the audit trail; it holds no names, ids or e-mail addresses.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ..directory_port import DirectoryPort

_PUPIL_VECTORS = {"3", "4"}
_PARENT_VECTORS = {"1", "2"}
_CATEGORY_OF_AFFILIATION = {"eleve": "Eleve", "resp": "PersRelEleve"}
_CATEGORY_LABEL = {"Eleve": "élève", "PersRelEleve": "responsable", "PersEducNat": "personnel"}


@dataclass(frozen=True)
class Candidate:
    """A directory account a national identity may be; `label` is what the choice page shows (set only when
    there is a choice to make)."""

    jointure: str
    label: str
    # The directory record it was found as (the usage facts come from it) and, when an EduConnect vector
    # found it, that vector's UAI.
    record: Mapping[str, Any] | None = field(default=None, compare=False, repr=False)
    via_uai: str | None = None


@dataclass(frozen=True)
class Match:
    method: str | None  # refid | vecteur | email | None (nothing matched)
    candidates: tuple[Candidate, ...]
    notes: tuple[str, ...]

    @property
    def unique(self) -> Candidate | None:
        return self.candidates[0] if len(self.candidates) == 1 else None


def match_identity(kind: str, attributes: dict[str, list[str]], directory: DirectoryPort, *,
                   email_attribute: str = "mail") -> Match:
    """The directory accounts a verified national identity may be (`kind`: educonnect | agents)."""
    notes: list[str] = []
    affiliation = _affiliation(attributes)
    expected = "PersEducNat" if kind == "agents" else _CATEGORY_OF_AFFILIATION.get(affiliation or "")
    found = _by_refid(attributes.get("FrEduCtRefId", []), expected, directory, notes)
    if found:
        return Match("refid", _candidates(found, directory), tuple(notes))
    if kind == "educonnect":
        via: dict[str, str] = {}
        found = _by_vectors(attributes.get("FrEduVecteur", []), affiliation, directory, notes, via)
        if found:
            return Match("vecteur", _candidates(found, directory, via), tuple(notes))
    else:
        found = _by_email(attributes.get(email_attribute, []), directory, notes)
        if found:
            return Match("email", _candidates(found, directory), tuple(notes))
    if not notes:
        wanted = "FrEduVecteur" if kind == "educonnect" else email_attribute
        notes.append(f"the IdP sent none of the attributes accounts are matched on (FrEduCtRefId, {wanted})")
    return Match(None, (), tuple(notes))


def _affiliation(attributes: dict[str, list[str]]) -> str | None:
    """eleve | resp | None, from FrEduCtPersonAffiliation (eleve1d, eleve2d, resp1d, resp2d)."""
    for value in attributes.get("FrEduCtPersonAffiliation", []):
        for prefix in ("eleve", "resp"):
            if value.strip().lower().startswith(prefix):
                return prefix
    return None


def refid_jointure(value: str) -> str | None:
    """The AAF jointure in a `{AAF}academy|…|jointure` value, or None for another kind of reference."""
    if not value.startswith("{AAF}"):
        return None
    fields = value[5:].split("|")
    jointure = fields[-1].strip()
    return jointure if len(fields) >= 2 and jointure else None


def _by_refid(values: list[str], expected: str | None, directory: DirectoryPort, notes: list[str]) -> list[dict]:
    found: list[dict] = []
    refs = [j for j in (refid_jointure(v) for v in values) if j]
    for jointure in dict.fromkeys(refs):
        person = directory.get_person(jointure)
        if person is None:
            continue
        if expected and person.get("category") != expected:
            notes.append(f"FrEduCtRefId: an account of category {person.get('category')} ignored "
                         f"(expected {expected})")
            continue
        found.append(person)
    if refs and not found:
        notes.append(f"FrEduCtRefId: {len(refs)} AAF reference(s), no matching account")
    return found


def _by_vectors(values: list[str], affiliation: str | None, directory: DirectoryPort,
                notes: list[str], via: dict[str, str]) -> list[dict]:
    """The accounts the vectors name; `via` gets each one's UAI (the first vector's that found it)."""
    found: dict[str, dict] = {}
    usable = 0
    for value in values:
        fields = [f.strip() for f in value.split("|")]
        if len(fields) != 5 or not fields[3] or not fields[4]:
            notes.append("FrEduVecteur: a value without the 5 fields type|NOM|Prénom|id|UAI ignored")
            continue
        kind, last, first, attachment, uai = fields
        if kind in _PUPIL_VECTORS and affiliation != "resp":
            people = directory.find_pupils(attachment, uai)
        elif kind in _PARENT_VECTORS and affiliation != "eleve":
            if not last or not first:
                notes.append("FrEduVecteur: a parent vector without names ignored")
                continue
            people = directory.find_parents(attachment, uai, last, first)
        else:
            notes.append(f"FrEduVecteur: a vector of type {kind!r} ignored"
                         + (f" for a login of affiliation {affiliation}" if affiliation else ""))
            continue
        usable += 1
        for person in people:
            found.setdefault(person["jointure"], person)
            via.setdefault(person["jointure"], uai)
    if usable and not found:
        notes.append(f"FrEduVecteur: {usable} vector(s), no matching account")
    return list(found.values())


def _by_email(values: list[str], directory: DirectoryPort, notes: list[str]) -> list[dict]:
    found: dict[str, dict] = {}
    for value in values:
        for person in directory.find_by_email(value.strip()):
            if person.get("category") == "PersEducNat":
                found.setdefault(person["jointure"], person)
    if values and not found:
        notes.append(f"e-mail: {len(values)} address(es), no matching staff account")
    return list(found.values())


def _candidates(people: list[dict], directory: DirectoryPort,
                via: Mapping[str, str] | None = None) -> tuple[Candidate, ...]:
    """The accounts found; labelled (more directory queries) only when the user has to choose among them."""
    people = sorted(people, key=lambda p: p["jointure"])
    via = via or {}
    if len(people) == 1:
        return (Candidate(people[0]["jointure"], "", people[0], via.get(people[0]["jointure"])),)
    return tuple(Candidate(p["jointure"], _label(p, directory), p, via.get(p["jointure"])) for p in people)


def _label(person: dict, directory: DirectoryPort) -> str:
    """'Prénom NOM, élève, COLLEGE X (0750001A)': enough for a user to recognise their account."""
    name = " ".join(p for p in (person.get("first_name"), person.get("last_name")) if p) or person["jointure"]
    parts = [name, _CATEGORY_LABEL.get(person.get("category") or "", person.get("category") or "compte")]
    structure = person.get("structure")
    if structure:
        record = directory.get_structure(structure) or {}
        where = record.get("name") or structure
        parts.append(f"{where} ({record['uai']})" if record.get("uai") else where)
    if person.get("category") == "PersRelEleve":
        children = getattr(directory, "children", None)
        kids = [c.get("first_name") or c["jointure"] for c in children(person["jointure"])] if children else []
        if kids:
            parts.append("responsable de " + ", ".join(sorted(kids)))
    return ", ".join(parts)
