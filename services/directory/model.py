"""The canonical directory model and its rules, free of I/O.

An AAF record (attribute name -> values) becomes a canonical `Person`,
`Structure`, `Mef` or `Subject` dict shaped exactly as in the bus contracts
(contracts/README.md), so an event payload is the canonical record itself.
Memberships (attachment, classes, groups, teaching, functions, relatives)
are a sorted list of small dicts; comparing two versions of a record gives
the scalar `changes` and the memberships added and removed.
"""

from __future__ import annotations

import hashlib
import unicodedata
from typing import Any

import orjson

Record = dict[str, Any]


class RecordRejected(ValueError):
    """The record breaks a rule; it is reported and skipped, the file goes on."""


# First-degree (aaf1d) exports name some attributes differently.
_ALIASES_1D = {
    "ENTPersonNom": "sn",
    "ENTPersonPrenom": "givenName",
    "ENTPersonMail": "mail",
    "ENTPersonClasses": "ENTEleveClasses",
    "ENTPersonGroupes": "ENTEleveGroupes",
}

PERSON_SCALARS = (
    "category", "profiles", "last_name", "first_name", "title", "birth_date",
    "email", "ine", "struct_rattach_id", "structure", "mef",
)

_FUNCTION_PROFILES = {"ENS": "National_ENS", "DOC": "National_DOC", "DIR": "National_DIR", "EDU": "National_EVS"}


def _first(attrs: dict[str, list[str]], name: str) -> str | None:
    values = attrs.get(name)
    return values[0] if values else None


def _fields(name: str, value: str, count: int, *, required: int | None = None, at_least: bool = False) -> list[str]:
    """Split a `$` value into `count` fields (or more, `at_least`); the first `required` must be set."""
    parts = value.split("$")
    required = count if required is None else required
    ok = len(parts) >= count if at_least else len(parts) == count
    if not ok or not all(parts[:required]):
        expected = f"{count}{' or more' if at_least else ''}"
        raise RecordRejected(
            f"attribute {name} value {value!r}: broken '$' format, expected {expected} fields "
            f"with the first {required} set, got {len(parts)}"
        )
    return parts


def _opt(parts: list[str], index: int) -> str | None:
    return parts[index] or None if index < len(parts) else None


def _iso_date(name: str, value: str | None) -> str | None:
    if not value:
        return None
    parts = value.split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[2]) != 4:
        raise RecordRejected(f"attribute {name} value {value!r}: expected a date dd/mm/yyyy")
    day, month, year = (int(p) for p in parts)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise RecordRejected(f"attribute {name} value {value!r}: not a valid date")
    return f"{year:04d}-{month:02d}-{day:02d}"


def _flag(value: str) -> bool:
    return value not in ("", "0", "N", "n")


def normalize_1d(attrs: dict[str, list[str]]) -> dict[str, list[str]]:
    """Map first-degree attribute names onto second-degree ones (second-degree wins)."""
    if not any(name in attrs for name in _ALIASES_1D):
        return attrs
    out = dict(attrs)
    for old, new in _ALIASES_1D.items():
        if old in attrs and not attrs.get(new):
            out[new] = attrs[old]
    return out


def person_from_attributes(jointure: str, family: str, attrs: dict[str, list[str]]) -> Record:
    attrs = normalize_1d(attrs)
    own = _first(attrs, "ENTPersonJointure")
    if own and own != jointure:
        raise RecordRejected(f"identifier/id {jointure!r} differs from ENTPersonJointure {own!r}")
    structure = _first(attrs, "ENTPersonStructRattach")
    memberships: dict[tuple, dict] = {}

    def add(m: dict) -> None:
        memberships[membership_key(m)] = m

    if structure:
        add({"kind": "structure", "structure": structure})
    teacher = family == "PersEducNat"
    for name in (("ENTAuxEnsClasses",) if teacher else ("ENTEleveClasses",)):
        for v in attrs.get(name, ()):
            s, code = _fields(name, v, 2)
            add({"kind": "class", "structure": s, "code": code})
    for name in (("ENTAuxEnsGroupes",) if teacher else ("ENTEleveGroupes",)):
        for v in attrs.get(name, ()):
            s, code = _fields(name, v, 2)
            add({"kind": "group", "structure": s, "code": code})
    for name, scope in (("ENTAuxEnsClassesMatieres", "class"), ("ENTAuxEnsGroupesMatieres", "group")):
        for v in attrs.get(name, ()):
            s, code, subject = _fields(name, v, 3)
            add({"kind": "teaching", "structure": s, "scope": scope, "code": code, "subject": subject})
    functions = []
    for v in attrs.get("ENTPersonFonctions", ()):
        parts = _fields("ENTPersonFonctions", v, 2, at_least=True)
        functions.append(parts[1])
        add({
            "kind": "function",
            "structure": parts[0],
            "code": parts[1],
            "label": _opt(parts, 2),
            "discipline": _opt(parts, 3),
        })
    for v in attrs.get("ENTElevePersRelEleve", ()):
        parts = _fields("ENTElevePersRelEleve", v, 6, required=1)
        add({
            "kind": "relative",
            "person": parts[0],
            "link": parts[1] or None,
            "financial": _flag(parts[2]),
            "legal_guardian": _flag(parts[3]),
            "contact": _flag(parts[4]),
            "payment": _flag(parts[5]),
        })
    for m in list(memberships.values()):
        if m["kind"] in ("class", "group", "teaching", "function"):
            add({"kind": "structure", "structure": m["structure"]})

    email = _first(attrs, "mail")
    return {
        "jointure": jointure,
        "category": family,
        "profiles": _profiles(family, attrs, functions),
        "last_name": _first(attrs, "sn"),
        "first_name": _first(attrs, "givenName"),
        "title": _first(attrs, "personalTitle"),
        "birth_date": _iso_date("ENTPersonDateNaissance", _first(attrs, "ENTPersonDateNaissance")),
        "email": email,
        "ine": _first(attrs, "ENTEleveINE"),
        "struct_rattach_id": _first(attrs, "ENTEleveStructRattachId"),
        "structure": structure,
        "mef": _first(attrs, "ENTEleveMEF"),
        "memberships": [memberships[k] for k in sorted(memberships)],
    }


def _profiles(family: str, attrs: dict[str, list[str]], functions: list[str]) -> list[str]:
    declared = attrs.get("ENTPersonProfils")
    if declared:
        return sorted(set(declared))
    if family == "Eleve":
        return ["National_ELV"]
    if family == "PersRelEleve":
        return ["National_TUT"]
    profiles = {_FUNCTION_PROFILES.get(code, "National_ETA") for code in functions}
    if _first(attrs, "PersEducNatPresenceDevantEleves") == "O":
        profiles.add("National_ENS")
    return sorted(profiles) or ["National_ETA"]


def structure_from_attributes(jointure: str, attrs: dict[str, list[str]]) -> Record:
    own = _first(attrs, "ENTStructureJointure")
    if own and own != jointure:
        raise RecordRejected(f"identifier/id {jointure!r} differs from ENTStructureJointure {own!r}")
    return {
        "jointure": jointure,
        "uai": _first(attrs, "ENTStructureUAI") or _first(attrs, "ENTEtablissementUAI"),
        "name": _first(attrs, "ENTStructureNomCourant"),
        "type": _first(attrs, "ENTStructureTypeStruct"),
        "academy": _first(attrs, "ENTServAcAcademie"),
    }


def mef_from_attributes(code: str, attrs: dict[str, list[str]]) -> Record:
    return {"code": code, "label": _first(attrs, "ENTLibelleMef")}


def subject_from_attributes(code: str, attrs: dict[str, list[str]]) -> Record:
    return {"code": code, "label": _first(attrs, "ENTLibelleMatiere")}


def membership_key(m: dict) -> tuple:
    kind = m["kind"]
    if kind == "relative":
        return (kind, m["person"], "", "", "")
    return (kind, m.get("structure") or "", m.get("scope") or "", m.get("code") or "", m.get("subject") or "")


def diff_memberships(before: list[dict], after: list[dict]) -> tuple[list[dict], list[dict]]:
    """Memberships added and removed (a changed relative flag is one removed + one added)."""
    old = {orjson.dumps(m, option=orjson.OPT_SORT_KEYS): m for m in before}
    new = {orjson.dumps(m, option=orjson.OPT_SORT_KEYS): m for m in after}
    added = [m for k, m in new.items() if k not in old]
    removed = [m for k, m in old.items() if k not in new]
    return added, removed


def diff_fields(before: Record, after: Record, fields) -> dict[str, dict[str, Any]]:
    return {
        f: {"before": before.get(f), "after": after.get(f)}
        for f in fields
        if before.get(f) != after.get(f)
    }


def diff_attributes(before: dict[str, list[str]], after: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
    """Raw AAF attributes that changed, as `attributes.<name>` changes."""
    return {
        f"attributes.{name}": {"before": before.get(name), "after": after.get(name)}
        for name in sorted(set(before) | set(after))
        if before.get(name) != after.get(name)
    }


# Bump when the mapping from attributes to canonical records changes: stored
# records then all count as changed on the next import and are rewritten.
MODEL_VERSION = b"directory-model-1"


def attributes_json(attributes: dict[str, list[str]]) -> bytes:
    return orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS)


def fingerprint(family: str, key: str, attributes_json: bytes) -> str:
    """A short stable hash of a record: the canonical record is a function of these."""
    h = hashlib.blake2b(MODEL_VERSION, digest_size=16)
    h.update(f"\0{family}\0{key}\0".encode())
    h.update(attributes_json)
    return h.hexdigest()


def raw_fingerprint(raw: bytes) -> str:
    """A short hash of a record's bytes as written in the export."""
    h = hashlib.blake2b(MODEL_VERSION, digest_size=16)
    h.update(raw)
    return h.hexdigest()


def search_key(text: str | None) -> str:
    """Case- and accent-insensitive form of a name or e-mail, for lookups."""
    if not text:
        return ""
    if text.isascii():
        return " ".join(text.casefold().replace("-", " ").replace("'", " ").split())
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().replace("-", " ").replace("'", " ").split())


def kept_attributes(attrs: dict[str, list[str]]) -> dict[str, list[str]]:
    """The raw attributes worth storing: non-empty ones (AAF sends many empty `<value/>`)."""
    return {k: v for k, v in attrs.items() if v}
