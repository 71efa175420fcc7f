"""The GAR feed for écoles (first degree): the same five files, as `GAR-ENT-1D.xsd` wants them.

Namespace http://data.education.fr/ns/gar/1d. Files named
`<idENT>_GAR-ENT_<Complet|Delta>_<yyyyMMdd_HHmmss>_1D_<Type>_<NNNN>.xml`,
written beside the second-degree feed's, at most 10,000 elements each, with
the same report, exclusions and deltas (`gar.py`; the delta state of this
feed is kept under `<idENT>#1D`). What differs from the second degree:
- `Eleve`: `GAREleve` (identity, écoles, birth date), then each pupil's level
  as `GARPersonMEFSTAT4` (the level code of `first_degree.level`, when the
  export gives one of at most four characters); no MEF, no subjects.
- `Enseignant`: `GAREnseignant` (no e-mail in 1D), then the levels of the
  pupils of the classes each teacher is in (`GARPersonMEFSTAT4`): a teacher
  of a multi-level class has each of its levels.
- `Etab`: `GAREtab` alone (UAI and name).
- `Groupe`: classes (`DIVISION`) and groups (`GROUPE`) with their labels
  (`ENTPersonClasses`' fifth field, else the code), and `GARPersonGroupe` for
  each pupil and teacher in them.
- `RespAff`: the resource managers of the écoles (directors among them).
Only écoles (structures with `first_degree`: `gar_degrees.py`) and the
people who belong to one are in it; the second-degree feed leaves them out.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Connection, select

from ..adapters import tables as t
from .gar import (
    _PROFILES,
    MAX_RECORDS,
    GarReport,
    _el,
    _Feed,
    _identity,
    _opt,
    _v,
    structure_degrees,
)

NS_1D = "http://data.education.fr/ns/gar/1d"
VERSION_1D = "1.4"  # GAR-ENT-1D.xsd's own version
MEFSTAT4_MAX = 4


def state_key(ent_id: str) -> str:
    """Under which name the first-degree feed's delta state is kept (`prov_gar_feed.ent_id`)."""
    return f"{ent_id}#1D"


def has_ecoles(conn: Connection) -> bool:
    return bool(structure_degrees(conn).first)


def level_code(p: dict[str, Any]) -> str | None:
    """The pupil's level as a GARMEFSTAT4Code, or None (no level, no code, or a code longer than the XSD's 4)."""
    level = (p.get("first_degree") or {}).get("level") or {}
    code = level.get("code")
    return code if code and len(code) <= MEFSTAT4_MAX else None


def _mefstat4(uai: str, jointure: str, code: str) -> str:
    """A person's level in a structure: GARPersonMEFSTAT4 (pupils in `Eleve`, their teachers in `Enseignant`)."""
    return _el("GARPersonMEFSTAT4", _v("GARStructureUAI", uai), _v("GARPersonIdentifiant", jointure),
               _v("GARMEFSTAT4Code", code, MEFSTAT4_MAX))


def export_1d(conn: Connection, out_dir: Path, ent_id: str, now: datetime, *, limit: int = MAX_RECORDS,
              delta: bool = False) -> GarReport:
    """Write the écoles' GAR feed into `out_dir`; the report as `gar.export`'s (its `state` under `state_key`)."""
    feed = _Feed(conn, out_dir, ent_id, now, limit, delta, key=state_key(ent_id), name="first-degree feed",
                 files="GAR-ENT-1D", ns=NS_1D, version=VERSION_1D, degree="1D_")
    writer = feed.writer
    degrees = structure_degrees(conn)
    uai_of = degrees.first

    groups: dict[tuple[str, str], tuple[str, str]] = {}  # (UAI, code) -> (DIVISION | GROUPE, label)
    person_groups: set[tuple[str, str, str]] = set()
    class_levels: dict[tuple[str, str], set[str]] = {}  # (UAI, class code) -> its pupils' level codes

    def note_units(p: dict[str, Any]) -> None:
        for m in p["memberships"]:
            if m["kind"] in ("class", "group") and (u := uai_of.get(m["structure"])):
                status = "DIVISION" if m["kind"] == "class" else "GROUPE"
                if (u, m["code"]) not in groups or m.get("label"):
                    groups[(u, m["code"])] = (status, m.get("label") or m["code"])
                person_groups.add((u, p["jointure"], m["code"]))

    eleves = writer("Eleve")
    levels: list[tuple[str, str, str]] = []
    for p, etabs in feed.people(conn, "Eleve", "Eleve", uai_of, degrees.second):  # collégiens: the other feed's
        eleves.write(_el("GAREleve", *_identity(p, etabs, ["National_elv"], uai_of.get(p.get("structure") or "")),
                         *(_v("GARPersonEtab", u) for u in etabs),
                         _opt("GARPersonDateNaissance", p.get("birth_date"))), "GAREleve", p["jointure"])
        note_units(p)
        code = level_code(p)
        if code:
            levels.extend((u, p["jointure"], code) for u in etabs)
            for m in p["memberships"]:
                if m["kind"] == "class" and (u := uai_of.get(m["structure"])):
                    class_levels.setdefault((u, m["code"]), set()).add(code)
    for u, j, code in sorted(set(levels)):
        eleves.write(_mefstat4(u, j, code), "GARPersonMEFSTAT4", u, j, code)
    eleves.finish()

    staff = writer("Enseignant")
    taught: set[tuple[str, str, str]] = set()
    for p, etabs in feed.people(conn, "PersEducNat", "Enseignant", uai_of, degrees.second):
        profiles = sorted({_PROFILES.get(x, "National_eta") for x in p.get("profiles") or ()}) or ["National_eta"]
        specialities: dict[str, set[str]] = {}
        for m in p["memberships"]:
            u = uai_of.get(m.get("structure") or "")
            if m["kind"] == "function" and u and m.get("discipline"):
                specialities.setdefault(u, set()).add(m["discipline"])
            elif m["kind"] == "class" and u:
                taught.update((u, p["jointure"], code) for code in class_levels.get((u, m["code"]), ()))
        staff.write(_el("GAREnseignant", *_identity(p, etabs, profiles, uai_of.get(p.get("structure") or "")),
                        *(_v("GARPersonEtab", u) for u in etabs),
                        _opt("GARPersonDateNaissance", p.get("birth_date")),
                        *(_el("GAREnsSpecialitesPostes", _v("GARStructureUAI", u),
                              *(_v("GAREnsSpecialitePosteCode", d, 255) for d in sorted(ds)))
                          for u, ds in sorted(specialities.items()))), "GAREnseignant", p["jointure"])
        note_units(p)
    for u, j, code in sorted(taught):
        staff.write(_mefstat4(u, j, code), "GARPersonMEFSTAT4", u, j, code)
    staff.finish()

    etab = writer("Etab")
    ecoles = sorted((u, d) for j, u, d in conn.execute(select(t.structure.c.jointure, t.structure.c.uai,
                                                              t.structure.c.data)) if j in uai_of and u)
    for u, data in ecoles:
        rec = orjson.loads(data)
        etab.write(_el("GAREtab", _v("GARStructureUAI", u, 45), _v("GARStructureNomCourant", rec.get("name") or u)),
                   "GAREtab", u)
    etab.finish()

    grp = writer("Groupe")
    for (u, code), (status, label) in sorted(groups.items()):
        grp.write(_el("GARGroupe", _v("GARGroupeCode", code, 255), _v("GARStructureUAI", u, 45),
                      _v("GARGroupeLibelle", label, 255), _v("GARGroupeStatut", status, 31)), "GARGroupe", u, code)
    for u, j, code in sorted(person_groups):
        grp.write(_el("GARPersonGroupe", _v("GARStructureUAI", u), _v("GARPersonIdentifiant", j),
                      _v("GARGroupeCode", code, 255)), "GARPersonGroupe", u, j, code)
    grp.finish()

    ecole_uais = set(uai_of.values())
    feed.managers(conn, lambda uais: uais & ecole_uais)  # the écoles' resource managers (directors among them)
    return feed.done()
