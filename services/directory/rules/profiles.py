"""A person's ENT profiles.

`Eleve` -> `National_ELV`, `PersRelEleve` -> `National_TUT`. Staff
(`PersEducNat`) take `ENTPersonProfils` when the export has it, else one
profile per function (`ENS` -> `National_ENS`, `DOC` -> `National_DOC`,
`DIR` -> `National_DIR`, `EDU` -> `National_EVS`, any other `National_ETA`),
plus `National_ENS` when `PersEducNatPresenceDevantEleves` is `O` (or, in a
first-degree export, `ENTPersonCategorieEnseignant` is yes: `teacher`); staff with
none of these are `National_ETA`. A declared `ENTPersonProfils` wins for
every family.
"""

from __future__ import annotations

from .aaf_values import first

FUNCTION_PROFILES = {"ENS": "National_ENS", "DOC": "National_DOC", "DIR": "National_DIR", "EDU": "National_EVS"}


def profiles(family: str, attrs: dict[str, list[str]], functions: list[str], *, teacher: bool = False) -> list[str]:
    """The sorted profiles of a person of `family` with these attributes and function codes."""
    declared = attrs.get("ENTPersonProfils")
    if declared:
        return sorted(set(declared))
    if family == "Eleve":
        return ["National_ELV"]
    if family == "PersRelEleve":
        return ["National_TUT"]
    found = {FUNCTION_PROFILES.get(code, "National_ETA") for code in functions}
    if teacher or first(attrs, "PersEducNatPresenceDevantEleves") == "O":
        found.add("National_ENS")
    return sorted(found) or ["National_ETA"]
