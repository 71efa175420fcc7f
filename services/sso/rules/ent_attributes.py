"""The ENT attributes of a directory person, and which of them a CAS application receives (pure).

Multi-valued fields keep the AAF's `$`-separated formats the ENT world knows
(`ENTEleveClasses` = `structureJointure$classCode`, `ENTAuxEnsClassesMatieres` =
`structure$class$subject`...), so an app moving from one ENT to another sees the
same values. Every value is a list of strings; empty attributes are left out.
A CAS service receives only those its release policy (`attributes:` in the
registry) lists: `release`. The SAML IdP releases them to platforms too
(platform_attributes.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

ENT_ATTRIBUTES = (
    "uid", "ENTPersonJointure", "ENTPersonProfils", "ENTPersonStructRattach", "ENTPersonStructRattachUAI",
    "ENTPersonEtablissementsUAI", "sn", "givenName", "displayName", "personalTitle", "mail",
    "ENTPersonDateNaissance", "ENTEleveClasses", "ENTEleveGroupes", "ENTEleveMEF", "ENTEleveStructRattachId",
    "ENTEleveINE", "ENTAuxEnsClasses", "ENTAuxEnsGroupes", "ENTAuxEnsClassesMatieres", "ENTAuxEnsGroupesMatieres",
    "ENTPersonFonctions", "ENTEleveParents", "ENTAuxPersRelEleveEleve",
)


def ent_attributes(person: dict[str, Any], uai_of: Callable[[str], str | None]) -> dict[str, list[str]]:
    """The ENT attributes of a canonical directory Person; `uai_of(structure jointure)` gives a UAI or None."""
    teacher = person.get("category") == "PersEducNat"
    out: dict[str, list[str]] = {}

    def put(name: str, *values: str | None) -> None:
        kept = [v for v in values if v]
        if kept:
            out.setdefault(name, [])
            out[name].extend(v for v in kept if v not in out[name])

    jointure = person["jointure"]
    put("uid", jointure)
    put("ENTPersonJointure", jointure)
    put("ENTPersonProfils", *person.get("profiles") or ())
    structure = person.get("structure")
    put("ENTPersonStructRattach", structure)
    if structure:
        put("ENTPersonStructRattachUAI", uai_of(structure))
    put("sn", person.get("last_name"))
    put("givenName", person.get("first_name"))
    put("displayName", " ".join(p for p in (person.get("first_name"), person.get("last_name")) if p) or None)
    put("personalTitle", person.get("title"))
    put("mail", person.get("email"))
    birth = person.get("birth_date")
    if birth and len(birth) == 10:
        put("ENTPersonDateNaissance", f"{birth[8:10]}/{birth[5:7]}/{birth[0:4]}")  # AAF's dd/mm/yyyy
    put("ENTEleveMEF", person.get("mef"))
    put("ENTEleveStructRattachId", person.get("struct_rattach_id"))
    put("ENTEleveINE", person.get("ine"))
    for m in person.get("memberships") or ():
        kind = m["kind"]
        if kind == "structure":
            put("ENTPersonEtablissementsUAI", uai_of(m["structure"]))
        elif kind == "class":
            put("ENTAuxEnsClasses" if teacher else "ENTEleveClasses", f"{m['structure']}${m['code']}")
        elif kind == "group":
            put("ENTAuxEnsGroupes" if teacher else "ENTEleveGroupes", f"{m['structure']}${m['code']}")
        elif kind == "teaching":
            name = "ENTAuxEnsClassesMatieres" if m["scope"] == "class" else "ENTAuxEnsGroupesMatieres"
            put(name, f"{m['structure']}${m['code']}${m['subject']}")
        elif kind == "function":
            put("ENTPersonFonctions", "$".join(v or "" for v in (m["structure"], m["code"], m.get("label"),
                                                                   m.get("discipline"))).rstrip("$"))
        elif kind == "relative":
            put("ENTEleveParents", m["person"])
    return out


def release(attributes: dict[str, list[str]], allowed: tuple[str, ...]) -> dict[str, list[str]]:
    """Only the attributes a service's policy lists (default: none beyond the user id)."""
    return {name: attributes[name] for name in allowed if name in attributes}
