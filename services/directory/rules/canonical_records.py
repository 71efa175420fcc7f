"""AAF attributes -> the canonical Person, Structure, Mef and Subject records.

An AAF record (attribute name -> values) becomes a canonical `Person`,
`Structure`, `Mef` or `Subject` dict shaped exactly as in the bus contracts
(contracts/README.md), so an event payload is the canonical record itself.
Memberships (attachment, classes, groups, teaching, functions, relatives)
are a sorted list of small dicts, one per `membership_key`; every structure a
person has a class, group, teaching or function in is one of theirs too.
A value that breaks its format rejects the record (`RecordRejected`).
"""

from __future__ import annotations

from typing import Any

from . import first_degree as d1
from .aaf_values import RecordRejected, fields, first, iso_date, optional
from .profiles import profiles
from .relatives import ATTRIBUTE as RELATIVES
from .relatives import relative_membership

Record = dict[str, Any]

# A person's fields other than `jointure` and `memberships`: those an `.updated` event compares one by one.
PERSON_SCALARS = (
    "category", "profiles", "last_name", "first_name", "other_first_names", "title", "birth_date",
    "email", "ine", "struct_rattach_id", "structure", "mef", "first_degree",
)
# A structure's fields other than `jointure`: those its `.updated` event compares.
STRUCTURE_SCALARS = ("uai", "name", "type", "academy", "first_degree")


def person_from_attributes(jointure: str, family: str, attrs: dict[str, list[str]]) -> Record:
    attrs = d1.normalize_1d(attrs)
    first_degree = d1.is_first_degree(attrs)
    own = first(attrs, "ENTPersonJointure")
    if own and own != jointure:
        raise RecordRejected(f"identifier/id {jointure!r} differs from ENTPersonJointure {own!r}")
    structure = first(attrs, "ENTPersonStructRattach")
    memberships: dict[tuple, dict] = {}

    def add(m: dict) -> None:
        memberships[membership_key(m)] = m

    if structure:
        add({"kind": "structure", "structure": structure})
    teacher = family == "PersEducNat"
    for kind, name in (("class", "ENTAuxEnsClasses" if teacher else "ENTEleveClasses"),
                       ("group", "ENTAuxEnsGroupes" if teacher else "ENTEleveGroupes")):
        split = (fields(name, v, 2) for v in attrs.get(name, ()))
        units = [{"kind": kind, "structure": f[0], "code": f[1]} for f in split]
        units = units or d1.unit_memberships(kind, attrs)
        if kind == "class" and first_degree:
            units = d1.date_classes(units, attrs)
        for m in units:
            add(m)
    for name, scope in (("ENTAuxEnsClassesMatieres", "class"), ("ENTAuxEnsGroupesMatieres", "group")):
        for v in attrs.get(name, ()):
            s, code, subject = fields(name, v, 3)
            add({"kind": "teaching", "structure": s, "scope": scope, "code": code, "subject": subject})
    functions = []
    for m in d1.directorships(attrs):
        functions.append(m["code"])
        add(m)
    for v in attrs.get("ENTPersonFonctions", ()):
        parts = fields("ENTPersonFonctions", v, 2, at_least=True)
        functions.append(parts[1])
        add({
            "kind": "function",
            "structure": parts[0],
            "code": parts[1],
            "label": optional(parts, 2),
            "discipline": optional(parts, 3),
        })
    for v in attrs.get(RELATIVES, ()):
        add(relative_membership(v))
    if not attrs.get(RELATIVES):  # a first-degree pupil's relatives: their legal guardians
        for m in d1.guardians(attrs):
            add(m)
    for m in list(memberships.values()):
        if m["kind"] in ("class", "group", "teaching", "function"):
            add({"kind": "structure", "structure": m["structure"]})

    email = first(attrs, "mail")
    # The AAF's other given names (ENTPersonAutresPrenoms), as it lists them; absent when it gives none, as
    # in the records stored before the field existed, so the field's arrival changed no one who has none.
    other_first_names = [v for v in attrs.get("ENTPersonAutresPrenoms", ()) if v.strip()]
    return {
        "jointure": jointure,
        "category": family,
        "profiles": profiles(family, attrs, functions, teacher=d1.is_teacher(attrs)),
        "last_name": first(attrs, "sn"),
        "first_name": first(attrs, "givenName"),
        "title": first(attrs, "personalTitle"),
        "birth_date": iso_date("ENTPersonDateNaissance", first(attrs, "ENTPersonDateNaissance")),
        "email": email,
        "ine": first(attrs, "ENTEleveINE"),
        "struct_rattach_id": first(attrs, "ENTEleveStructRattachId"),
        "structure": structure,
        "mef": first(attrs, "ENTEleveMEF"),
        **({"other_first_names": other_first_names} if other_first_names else {}),
        # A first-degree export's facts, absent from second-degree records (which they leave unchanged).
        **({"first_degree": d1.pupil_facts(attrs)} if first_degree else {}),
        "memberships": [memberships[k] for k in sorted(memberships)],
    }


def structure_from_attributes(jointure: str, attrs: dict[str, list[str]]) -> Record:
    own = first(attrs, "ENTStructureJointure")
    if own and own != jointure:
        raise RecordRejected(f"identifier/id {jointure!r} differs from ENTStructureJointure {own!r}")
    return {
        "jointure": jointure,
        "uai": first(attrs, "ENTStructureUAI") or first(attrs, "ENTEtablissementUAI"),
        "name": first(attrs, "ENTStructureNomCourant"),
        "type": first(attrs, "ENTStructureTypeStruct"),
        "academy": first(attrs, "ENTServAcAcademie"),
        **({"first_degree": school} if (school := d1.school_facts(attrs)) is not None else {}),
    }


def mef_from_attributes(code: str, attrs: dict[str, list[str]]) -> Record:
    return {"code": code, "label": first(attrs, "ENTLibelleMef")}


def subject_from_attributes(code: str, attrs: dict[str, list[str]]) -> Record:
    return {"code": code, "label": first(attrs, "ENTLibelleMatiere")}


def membership_key(m: dict) -> tuple:
    """What makes two memberships one: a relative by the person, the others by structure, scope, code, subject."""
    kind = m["kind"]
    if kind == "relative":
        return (kind, m["person"], "", "", "")
    return (kind, m.get("structure") or "", m.get("scope") or "", m.get("code") or "", m.get("subject") or "")
