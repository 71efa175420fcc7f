"""First degree (écoles, exports fed from ONDE): what an aaf1d record says that a second-degree one does not.

Names. First-degree exports write `ENTPersonNom`, `ENTPersonPrenom` and
`ENTPersonMail` where second-degree ones write `sn`, `givenName` and `mail`;
a record is read with the second-degree names, and when it has both, the
second-degree value wins (`normalize_1d`).

Classes and groups (`ENTPersonClasses`, `ENTPersonGroupes`, on pupils and on
staff alike) are `structure$…$…$code$label` (five fields, the class's code
fourth and its label fifth) or, shortened, `structure$code`. They count only
when the record has no second-degree classes (`ENTEleveClasses` for pupils,
`ENTAuxEnsClasses` for staff), and groups likewise.

A pupil's first-degree facts go into the person's `first_degree` object,
present only on records of a first-degree export (`is_first_degree`), so that
no second-degree record changes:
- `level` and `cycle` (`ENTEleveNiveau`, `ENTEleveCycle`), each `code$label`
  or a label alone: `{"code", "label"}`; a multi-level class (`ENTEleveTypeClasse`)
  holds pupils of several levels, each with their own;
- `class_type` (`ENTEleveTypeClasse`) as written;
- `entry_date`, `exit_date`: the dates of entry into and exit from the school
  (`ENTEleveDateEntreeStructRattach`, `ENTEleveDateSortieStructRattach`);
- `services`: the school services the pupil uses (canteen, transport, morning
  and evening childcare, supervised study), from their yes/no attributes.
Class entry and exit dates (`ENTEleveDateEntreeClasses`,
`ENTEleveDateSortieClasses`) are `structure$code$dd/mm/yyyy`, or a date alone
for every class of the pupil; they go onto the class memberships
(`entry_date`, `exit_date`). A date for a class the pupil is not in rejects
the record.

Relatives. First-degree pupils have no `ENTElevePersRelEleve`; their legal
guardians are `ENTEleveAutoriteParentale` (the relative's jointure first, any
other `$` fields ignored). When a pupil has no `ENTElevePersRelEleve`, each of
these is a relative membership with `legal_guardian` true.

Staff. `ENTEnsFonctionDir` lists the structures a person directs (the école's
director): a `DIR` function there. `ENTPersonCategorieEnseignant` yes makes
them a teacher (`National_ENS`, `profiles.py`).

Structures. An école carries `ENTEcoleCirconscription` (the circonscription
of its inspector, IEN), `ENTEcoleCommune`, `ENTEcoleSecteur` and `ENTEcoleRPI`
(a regrouping of schools across communes): the structure's `first_degree`
object, present only on first-degree structures; `ENTStructureTypeStruct`
starting `ECOLE` marks one too, and so does a circonscription's own record
(type starting `CIRCONSCRIPTION` or `IEN`: the inspector's office, where
conseillers pédagogiques are attached), which is first degree as well.
"""

from __future__ import annotations

from .aaf_values import RecordRejected, first, flag, iso_date

ALIASES_1D = {
    "ENTPersonNom": "sn",
    "ENTPersonPrenom": "givenName",
    "ENTPersonMail": "mail",
}

CLASSES_1D = "ENTPersonClasses"
GROUPS_1D = "ENTPersonGroupes"
LEVEL = "ENTEleveNiveau"
CYCLE = "ENTEleveCycle"
CLASS_TYPE = "ENTEleveTypeClasse"
CLASS_ENTRY = "ENTEleveDateEntreeClasses"
CLASS_EXIT = "ENTEleveDateSortieClasses"
SCHOOL_ENTRY = "ENTEleveDateEntreeStructRattach"
SCHOOL_EXIT = "ENTEleveDateSortieStructRattach"
PARENTAL_AUTHORITY = "ENTEleveAutoriteParentale"
DIRECTS = "ENTEnsFonctionDir"
TEACHER = "ENTPersonCategorieEnseignant"

# Yes/no attribute -> the school service's name in `first_degree.services`.
SERVICES = {
    "ENTEleveRestaurantScolaire": "canteen",
    "ENTEleveTransport": "transport",
    "ENTEleveGarderieMatin": "morning_childcare",
    "ENTEleveGarderieSoir": "evening_childcare",
    "ENTEleveEtudesSurveillees": "supervised_study",
}

# Attributes only first-degree exports write: any of them with a value makes a person record first degree.
# (`ENTEleveTransport` is not one: second-degree exports write it too.)
MARKERS = frozenset({
    *ALIASES_1D, CLASSES_1D, GROUPS_1D, LEVEL, CYCLE, CLASS_TYPE, CLASS_ENTRY, CLASS_EXIT, SCHOOL_ENTRY, SCHOOL_EXIT,
    DIRECTS, TEACHER, "ENTEleveRestaurantScolaire", "ENTEleveGarderieMatin", "ENTEleveGarderieSoir",
    "ENTEleveEtudesSurveillees",
})

# Structure types (`ENTStructureTypeStruct`, upper case) of the first degree: écoles and circonscriptions.
FIRST_DEGREE_TYPES = ("ECOLE", "CIRCONSCRIPTION", "IEN")

# An école's own attributes -> its `first_degree` field.
SCHOOL_FIELDS = {
    "ENTEcoleCirconscription": "district",
    "ENTEcoleCommune": "town",
    "ENTEcoleSecteur": "sector",
    "ENTEcoleRPI": "rpi",
}


def normalize_1d(attrs: dict[str, list[str]]) -> dict[str, list[str]]:
    """Map first-degree attribute names onto second-degree ones (second-degree wins)."""
    if not any(name in attrs for name in ALIASES_1D):
        return attrs
    out = dict(attrs)
    for old, new in ALIASES_1D.items():
        if old in attrs and not attrs.get(new):
            out[new] = attrs[old]
    return out


def is_first_degree(attrs: dict[str, list[str]]) -> bool:
    """Whether a person record comes from a first-degree export (it has a value only those write)."""
    return any(attrs.get(name) for name in MARKERS)


def unit_memberships(kind: str, attrs: dict[str, list[str]]) -> list[dict]:
    """The classes (`kind` "class") or groups ("group") of `ENTPersonClasses` / `ENTPersonGroupes`."""
    name = CLASSES_1D if kind == "class" else GROUPS_1D
    out = []
    for value in attrs.get(name, ()):
        parts = value.split("$")
        if len(parts) == 5 and parts[0] and parts[3]:
            out.append({"kind": kind, "structure": parts[0], "code": parts[3],
                        **({"label": parts[4]} if parts[4] else {})})
        elif len(parts) == 2 and all(parts):
            out.append({"kind": kind, "structure": parts[0], "code": parts[1]})
        else:
            raise RecordRejected(
                f"attribute {name} value {value!r}: broken '$' format, expected structure$code or "
                f"structure$…$…$code$label (5 fields, the 1st and 4th set), got {len(parts)} fields")
    return out


def date_classes(classes: list[dict], attrs: dict[str, list[str]]) -> list[dict]:
    """The class memberships with their entry and exit dates (`ENTEleveDateEntreeClasses`, …Sortie…)."""
    dated = {(m["structure"], m["code"]): dict(m) for m in classes}
    for name, field in ((CLASS_ENTRY, "entry_date"), (CLASS_EXIT, "exit_date")):
        for value in attrs.get(name, ()):
            parts = value.split("$")
            if len(parts) == 1:
                for m in dated.values():
                    m[field] = iso_date(name, value)
                continue
            if len(parts) != 3 or not all(parts):
                raise RecordRejected(f"attribute {name} value {value!r}: expected structure$class$dd/mm/yyyy "
                                     f"or a date dd/mm/yyyy, got {len(parts)} fields")
            key = (parts[0], parts[1])
            if key not in dated:
                raise RecordRejected(f"attribute {name} value {value!r}: class {parts[1]!r} of structure "
                                     f"{parts[0]!r} is not one of the pupil's classes")
            dated[key][field] = iso_date(name, parts[2])
    return list(dated.values())


def code_and_label(value: str | None) -> dict | None:
    """`code$label` or a label alone, as `{"code", "label"}` (None when empty)."""
    if not value:
        return None
    code, sep, label = value.partition("$")
    if not sep:
        return {"code": None, "label": value}
    if "$" in label or not label:
        raise RecordRejected(f"value {value!r}: expected code$label or a label alone")
    return {"code": code or None, "label": label}


def _level(name: str, attrs: dict[str, list[str]]) -> dict | None:
    try:
        return code_and_label(first(attrs, name))
    except RecordRejected as e:
        raise RecordRejected(f"attribute {name} {e}") from None


def pupil_facts(attrs: dict[str, list[str]]) -> dict:
    """A person's `first_degree` object: level, cycle, class type, school entry and exit, services."""
    return {
        "level": _level(LEVEL, attrs),
        "cycle": _level(CYCLE, attrs),
        "class_type": first(attrs, CLASS_TYPE) or None,
        "entry_date": iso_date(SCHOOL_ENTRY, first(attrs, SCHOOL_ENTRY)),
        "exit_date": iso_date(SCHOOL_EXIT, first(attrs, SCHOOL_EXIT)),
        "services": sorted(service for name, service in SERVICES.items() if flag(first(attrs, name) or "")),
    }


def guardians(attrs: dict[str, list[str]]) -> list[dict]:
    """`ENTEleveAutoriteParentale` as relative memberships, each a legal guardian (jointure first)."""
    out = []
    for value in attrs.get(PARENTAL_AUTHORITY, ()):
        jointure = value.split("$", 1)[0]
        if not jointure:
            raise RecordRejected(f"attribute {PARENTAL_AUTHORITY} value {value!r}: no relative's jointure first")
        out.append({"kind": "relative", "person": jointure, "link": None, "financial": False,
                    "legal_guardian": True, "contact": False, "payment": False})
    return out


def directorships(attrs: dict[str, list[str]]) -> list[dict]:
    """`ENTEnsFonctionDir`: a `DIR` function in each structure the person directs (its jointure first)."""
    out = []
    for value in attrs.get(DIRECTS, ()):
        structure = value.split("$", 1)[0]
        if not structure:
            raise RecordRejected(f"attribute {DIRECTS} value {value!r}: no structure's jointure first")
        out.append({"kind": "function", "structure": structure, "code": "DIR", "label": "DIRECTION",
                    "discipline": None})
    return out


def is_teacher(attrs: dict[str, list[str]]) -> bool:
    return flag(first(attrs, TEACHER) or "")


def school_facts(attrs: dict[str, list[str]]) -> dict | None:
    """An école's `first_degree` object (circonscription, commune, sector, RPI); None for other structures."""
    facts = {field: first(attrs, name) or None for name, field in SCHOOL_FIELDS.items()}
    kind = (first(attrs, "ENTStructureTypeStruct") or "").upper()
    if not any(facts.values()) and not kind.startswith(FIRST_DEGREE_TYPES):
        return None
    return facts
