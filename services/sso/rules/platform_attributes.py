"""What the SAML IdP may release to a resource platform, and under which name (plain Python, no I/O).

A platform receives nothing but its pseudonymous NameID unless its
configuration lists attributes. Those come from two families:

- the ENT attributes of `ent_attributes.py` (`ENTPersonProfils`, `ENTEleveClasses`…),
  in the AAF's `$` formats, as CAS apps receive them;
- GAR-style attributes, named after the elements of the GAR-ENT feed
  (`schemas/gar/GAR-ENT.xsd`) and holding values from its value spaces, with
  structures named by UAI rather than by AAF jointure (a platform has no use for
  the academy's internal keys):

  - `GARPersonProfils`: `National_elv`, `National_ens`, `National_doc`, `National_dir`,
    `National_evs`, `National_eta` (relatives have none: the GAR serves pupils and staff);
  - `GARPersonEtab`: the UAI of each school the person belongs to;
  - `GARPersonStructRattach`: the UAI of the school the person is attached to;
  - `GARPersonMEF`: `UAI$MEF code` (pupils);
  - `GARPersonGroupe`: `UAI$code` of each class (division) and group.

Each released attribute may be renamed for a platform that expects another
name (`{attribute: sn, name: "urn:oid:2.5.4.4"}`): a name containing `:` is
sent with the `uri` NameFormat, others with `basic`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .ent_attributes import ENT_ATTRIBUTES

GAR_ATTRIBUTES = ("GARPersonProfils", "GARPersonEtab", "GARPersonStructRattach", "GARPersonMEF", "GARPersonGroupe")
RELEASABLE = ENT_ATTRIBUTES + GAR_ATTRIBUTES

NAME_FORMAT_BASIC = "urn:oasis:names:tc:SAML:2.0:attrname-format:basic"
NAME_FORMAT_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"

# ENT profile -> GARPersonProfil (the GAR-ENT feed's value space); the GAR has no profile for relatives.
GAR_PROFILES = {"National_ELV": "National_elv", "National_ENS": "National_ens", "National_DOC": "National_doc",
                "National_DIR": "National_dir", "National_EVS": "National_evs", "National_ETA": "National_eta"}


@dataclass(frozen=True)
class AttributeRelease:
    """One attribute a platform receives: which one (`attribute`), sent under `saml_name`."""

    attribute: str
    saml_name: str

    @property
    def name_format(self) -> str:
        return NAME_FORMAT_URI if ":" in self.saml_name else NAME_FORMAT_BASIC

    @property
    def friendly_name(self) -> str | None:
        return self.attribute if self.saml_name != self.attribute else None


def gar_attributes(ent: dict[str, list[str]], uai_of: Callable[[str], str | None]) -> dict[str, list[str]]:
    """The GAR-style attributes of a person, from their ENT attributes; `uai_of(structure jointure)`."""
    out: dict[str, list[str]] = {}

    def put(name: str, value: str | None) -> None:
        if value and value not in out.setdefault(name, []):
            out[name].append(value)

    for profile in ent.get("ENTPersonProfils", ()):
        put("GARPersonProfils", GAR_PROFILES.get(profile))
    attached = ent.get("ENTPersonStructRattachUAI")
    rattach = attached[0] if attached else None
    put("GARPersonStructRattach", rattach)
    for uai in [rattach, *ent.get("ENTPersonEtablissementsUAI", ())]:
        put("GARPersonEtab", uai)
    if rattach:
        for mef in ent.get("ENTEleveMEF", ()):
            put("GARPersonMEF", f"{rattach}${mef}")
    for name in ("ENTEleveClasses", "ENTEleveGroupes", "ENTAuxEnsClasses", "ENTAuxEnsGroupes"):
        for value in ent.get(name, ()):
            structure, _, code = value.partition("$")
            uai = uai_of(structure) if code else None
            if uai:  # a class of a structure without a known UAI cannot be named to a platform
                put("GARPersonGroupe", f"{uai}${code}")
    return {k: v for k, v in out.items() if v}


def released(values: dict[str, list[str]], releases: tuple[AttributeRelease, ...]
             ) -> list[tuple[AttributeRelease, list[str]]]:
    """The attributes a platform's policy lists, with their values (attributes without values are left out)."""
    return [(r, values[r.attribute]) for r in releases if values.get(r.attribute)]
