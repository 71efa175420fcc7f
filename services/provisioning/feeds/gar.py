"""The GAR feed: the ENT's directory as the GAR (Gestionnaire d'Accès aux Ressources) takes it.

Five kinds of file, valid against the GAR's XSD (`GAR-ENT.xsd`, namespace
http://data.education.fr/ns/gar): `Etab` (structures, their MEF and
subjects), `Eleve`, `Enseignant` (staff), `Groupe` (classes, groups and who
is in them) and `RespAff` (the resource managers of each structure). Each
file holds at most 10,000 elements and is named as the GAR expects:
`<idENT>_GAR-ENT_Complet_<yyyyMMdd_HHmmss>_<Type>_<NNNN>.xml`.

Écoles (first-degree structures) and the people only in écoles are not in it:
they have their own feed, `gar_1d.py`, against `GAR-ENT-1D.xsd` (`gar_degrees.py`
says which goes where).

Written from provisioning's view of the directory, streaming (lxml
`xmlfile`), so memory does not grow with the academy. Records the XSD cannot
take (a person without a name, a manager without an e-mail) are left out and
listed in the report.

**Delta feeds** (`_GAR-ENT_Delta_` files) carry only the records created or
changed since the previous feed for the same ENT id: every feed leaves a
fingerprint of each record it held (`prov_gar_feed`), and the next delta
compares against it. GAR-ENT 1.7 has no way to say that a record is gone, so
when records were removed since the previous feed (a pupil who left, a class
change) a delta would leave them standing at the GAR: the export then writes
a complete feed instead and says why.
"""

from __future__ import annotations

import hashlib
import re
from array import array
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import IO, Any

import orjson
from lxml import etree
from sqlalchemy import Connection, delete, insert, select

from ..adapters import tables as t
from ..adapters.queries import ruleset, staff_records, uai_map
from ..grants.managers import directors, managed_structures
from .gar_degrees import Degrees, only_elsewhere, split_structures
from .gar_exclusions import manager_left_out, person_left_out

NS = "http://data.education.fr/ns/gar"
VERSION = "1.7"
MAX_RECORDS = 10_000
TYPES = ("Etab", "Eleve", "Enseignant", "Groupe", "RespAff")
# What a file of each type counts as its records (a pupil, a structure, a group…); its other
# elements (a pupil's GARPersonMEF, a group's members…) belong to one of these.
RECORD_ELEMENTS = {"Etab": "GAREtab", "Eleve": "GAREleve", "Enseignant": "GAREnseignant", "Groupe": "GARGroupe",
                   "RespAff": "GARRespAff"}

# Directory profiles -> GAR profiles.
_PROFILES = {"National_ELV": "National_elv", "National_ENS": "National_ens", "National_DOC": "National_doc",
             "National_DIR": "National_dir", "National_EVS": "National_evs", "National_ETA": "National_eta"}


@dataclass
class GarReport:
    mode: str = "Complet"  # Complet | Delta: what the files are
    files: list[str] = field(default_factory=list)
    records: dict[str, int] = field(default_factory=dict)  # per type: pupils, staff, structures, groups, managers
    elements: dict[str, int] = field(default_factory=dict)  # per type: every element written (records included)
    skipped: list[dict[str, str]] = field(default_factory=list)
    unchanged: int = 0  # delta: elements left out because the previous feed held them as they are
    removed: int = 0  # elements of the previous feed that are gone
    reason: str | None = None  # why a delta was asked for and a complete feed written
    state: dict[int, int] = field(default_factory=dict, repr=False)  # record key -> fingerprint, for the next delta

    def skip(self, kind: str, ident: str, reason: str) -> None:
        self.skipped.append({"type": kind, "id": ident, "reason": reason})

    def to_dict(self) -> dict[str, Any]:
        out = {"mode": self.mode, "files": self.files, "records": self.records, "elements": self.elements,
               "skipped": self.skipped, "removed_since_previous": self.removed}
        if self.mode == "Delta":
            out["unchanged"] = self.unchanged
        if self.reason:
            out["reason"] = self.reason
        return out


class _RollingWriter:
    """Writes the elements of one type into numbered files of at most MAX_RECORDS elements.

    A file is written under a `.part` name and renamed when complete, so a
    delivery job never picks up half a file.
    """

    def __init__(self, out: Path, ent_id: str, stamp: str, kind: str, report: GarReport, limit: int,
                 mode: str = "Complet", *, ns: str = NS, version: str = VERSION, degree: str = ""):
        self.out, self.kind, self.report, self.limit = out, kind, report, limit
        self.ns, self.version = ns, version
        # `degree` "1D_" for the écoles' feed: `<idENT>_GAR-ENT_Complet_<stamp>_1D_<Type>_<NNNN>.xml`
        self.prefix = f"{ent_id}_GAR-ENT_{mode}_{stamp}_{degree}{kind}"
        self.number, self.count = 0, 0
        self._file: IO[str] | None = None
        self._path: Path | None = None

    def _open(self) -> IO[str]:
        path = self._path = self.out / f"{self.prefix}_{self.number:04d}.xml"
        file = self._file = open(path.with_name(path.name + ".part"), "w", encoding="utf-8", buffering=1 << 20)
        file.write(f"<?xml version='1.0' encoding='UTF-8'?>\n"
                   f'<men:GAR-ENT-{self.kind} xmlns:men="{self.ns}" Version="{self.version}">')
        return file

    def _close(self) -> None:
        file, path = self._file, self._path
        if file is not None and path is not None:
            file.write(f"</men:GAR-ENT-{self.kind}>")
            file.close()
            path.with_name(path.name + ".part").replace(path)
            self.report.files.append(str(path))
            self._file = None
            self.number += 1
            self.count = 0

    def write(self, record: str, tag: str) -> None:
        file = self._file
        if file is None:
            file = self._open()
        file.write(record)
        self.count += 1
        self.report.elements[self.kind] = self.report.elements.get(self.kind, 0) + 1
        if tag == RECORD_ELEMENTS[self.kind]:
            self.report.records[self.kind] = self.report.records.get(self.kind, 0) + 1
        if self.count >= self.limit:
            self._close()

    def finish(self, empty_file: bool = True) -> None:
        if self._file is None and self.number == 0 and empty_file:
            self._open()  # an empty complete feed is still a file: the GAR then knows there is nothing
        self._close()


def _h64(data: bytes) -> int:
    return int.from_bytes(hashlib.blake2b(data, digest_size=8).digest(), "big")


class _Sink:
    """Where the records of one type go: the complete files, and in delta mode the files of changed records.

    Each element comes with its key (its tag, then what identifies it: a person,
    a person in a group…); its fingerprint is its text, so any change to it shows.
    """

    def __init__(self, complete: _RollingWriter, delta: _RollingWriter | None, previous: dict[int, int],
                 state: dict[int, int], counts: dict[str, int]):
        self.complete, self.delta, self.previous, self.state, self.counts = complete, delta, previous, state, counts

    def write(self, record: str, *key: str) -> None:
        k = _h64("\x1f".join(key).encode())
        fingerprint = _h64(record.encode())
        self.state[k] = fingerprint
        self.complete.write(record, key[0])
        if self.delta is not None:
            if self.previous.get(k) == fingerprint:
                self.counts["unchanged"] += 1
            else:
                self.delta.write(record, key[0])

    def finish(self) -> None:
        self.complete.finish()
        if self.delta is not None:
            self.delta.finish(empty_file=False)


class _Feed:
    """One feed being written (this module's, or the écoles' of `gar_1d.py`): its complete files, in delta mode
    those of the records that changed, the people it holds, its resource managers, and at the end which files stay.

    `key` names its delta state (`prov_gar_feed.ent_id`); `name` and `files` say in its report's reasons which feed
    it is and what its files cannot say.
    """

    def __init__(self, conn: Connection, out_dir: Path, ent_id: str, now: datetime, limit: int, delta: bool, *,
                 key: str, name: str, files: str, ns: str = NS, version: str = VERSION, degree: str = ""):
        out_dir.mkdir(parents=True, exist_ok=True)
        self.out_dir, self.ent_id, self.stamp, self.limit = out_dir, ent_id, now.strftime("%Y%m%d_%H%M%S"), limit
        self.name, self.files, self.ns, self.version, self.degree = name, files, ns, version, degree
        self.report, self.delta_report = GarReport(), GarReport(mode="Delta")
        self.previous = previous_feed(conn, key) if delta else None
        if delta and self.previous is None:
            self.report.reason = f"no earlier {name} for ENT id {ent_id!r}: a delta needs one to compare with"
        self.counts = {"unchanged": 0}

    def _rolling(self, kind: str, report: GarReport) -> _RollingWriter:
        return _RollingWriter(self.out_dir, self.ent_id, self.stamp, kind, report, self.limit, report.mode,
                              ns=self.ns, version=self.version, degree=self.degree)

    def writer(self, kind: str) -> _Sink:
        return _Sink(self._rolling(kind, self.report),
                     self._rolling(kind, self.delta_report) if self.previous is not None else None,
                     self.previous or {}, self.report.state, self.counts)

    def people(self, conn: Connection, category: str, kind: str, uai_of: dict[str, str],
               other: dict[str, str]) -> Iterator[tuple[dict[str, Any], list[str]]]:
        """The people of `category` this feed holds, each with the UAIs of its structures (`uai_of`); those only
        in the other degree's structures (`other`) are that feed's, those the XSD cannot take are reported."""
        for p in _persons(conn, category):
            etabs = sorted({u for m in p["memberships"]
                            if m["kind"] == "structure" and (u := uai_of.get(m["structure"]))})
            if not etabs and only_elsewhere(p, uai_of, other):
                continue
            why_not = person_left_out(p, etabs)
            if why_not:
                self.report.skip(kind, p["jointure"], why_not)
                continue
            yield p, etabs

    def managers(self, conn: Connection, keep: Callable[[set[str]], set[str]]) -> None:
        """The RespAff files: each resource manager with the UAIs (`keep` of those they manage) of this feed."""
        rules = ruleset(conn)
        managed = managed_structures(rules, directors(staff_records(conn), rules.manager_functions, uai_map(conn)))
        managers = {j: kept for j, uais in managed.items() if (kept := keep(uais))}
        resp = self.writer("RespAff")
        for j in sorted(managers):
            row = conn.execute(select(t.person.c.data).where(t.person.c.jointure == j)).first()
            manager = orjson.loads(row.data) if row is not None else None
            why_not = manager_left_out(manager)
            if why_not:
                self.report.skip("RespAff", j, why_not)
                continue
            assert manager is not None  # manager_left_out says why a missing one is left out
            resp.write(_el("GARRespAff", _v("GARPersonIdentifiant", j), _v("GARPersonNom", manager["last_name"]),
                           _v("GARPersonPrenom", manager["first_name"]),
                           _opt("GARPersonCivilite", manager.get("title"), 30),
                           _v("GARPersonMail", manager["email"], 255),
                           *(_v("GARRespAffEtab", u) for u in sorted(managers[j]))), "GARRespAff", j)
        resp.finish()

    def done(self) -> GarReport:
        """The report of the files that stay: a delta's, unless records of the previous feed are gone (a delta
        cannot say so: the complete files stay, and the report says why); the other files are removed."""
        report, delta_report, previous = self.report, self.delta_report, self.previous
        if previous is None:
            return report
        report.removed = sum(1 for key in previous if key not in report.state)
        if report.removed:
            report.reason = (f"{report.removed} record(s) of the previous {self.name} are gone, and {self.files} "
                             "files cannot say so in a delta: a complete feed is written instead")
            _remove(delta_report.files)
            return report
        _remove(report.files)
        delta_report.skipped, delta_report.state = report.skipped, report.state
        delta_report.unchanged = self.counts["unchanged"]
        return delta_report


# -- records as text: lxml element trees cost ~4 µs an element, and a feed has millions ------

_ESCAPE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


def _esc(value: str) -> str:
    """`value` as XML character data: markup escaped, characters XML cannot hold dropped."""
    if _NOT_XML.search(value):
        value = _NOT_XML.sub("", value)
    return value.translate(_ESCAPE)


def _el(tag: str, *children: str) -> str:
    return f"<men:{tag}>{''.join(children)}</men:{tag}>"


def _v(tag: str, value: str, limit: int = 500) -> str:
    """A text element (the XSD's maxLength counts characters, hence the cut before escaping)."""
    return f"<men:{tag}>{_esc(value[:limit])}</men:{tag}>"


def _opt(tag: str, value: str | None, limit: int = 500) -> str:
    return _v(tag, value, limit) if value else ""


def _persons(conn: Connection, category: str) -> Iterator[dict[str, Any]]:
    for (data,) in conn.execute(select(t.person.c.data).where(t.person.c.category == category)
                                .order_by(t.person.c.jointure)).yield_per(2000):
        yield orjson.loads(data)


def export(conn: Connection, out_dir: Path, ent_id: str, now: datetime, *, limit: int = MAX_RECORDS,
           delta: bool = False) -> GarReport:
    """Write a GAR feed into `out_dir`; returns what was written and what was left out.

    With `delta`, only what changed since the previous feed for `ent_id`
    (`previous_feed`); a complete feed when there is none or when records
    were removed since (see the module's docstring). Either way the report's
    `state` is what `record_feed` keeps for the next delta.
    """
    feed = _Feed(conn, out_dir, ent_id, now, limit, delta, key=ent_id, name="feed", files=f"GAR-ENT {VERSION}")
    writer = feed.writer
    degrees = structure_degrees(conn)
    uai_of = degrees.second  # écoles have their own feed (`gar_1d.py`)
    ecole_uais = set(degrees.first.values())
    labels: dict[tuple[str, str], str | None] = {(k, c): lab for k, c, lab in conn.execute(
        select(t.reference.c.kind, t.reference.c.code, t.reference.c.label))}

    def uai(structure: str | None) -> str | None:
        return uai_of.get(structure) if structure else None

    # Pupils (and what the Etab and Groupe files need from them).
    mefs: dict[str, set[str]] = {}
    groups: dict[tuple[str, str], str] = {}  # (UAI, code) -> DIVISION | GROUPE
    eleves = writer("Eleve")
    person_mef: list[tuple[str, str, str]] = []
    person_groups: set[tuple[str, str, str]] = set()  # a class and a group may share a code
    for p, etabs in feed.people(conn, "Eleve", "Eleve", uai_of, degrees.first):  # pupils only in écoles: gar_1d's
        eleves.write(_el("GAREleve", *_identity(p, etabs, ["National_elv"], uai(p.get("structure"))),
                         *(_v("GARPersonEtab", u) for u in etabs),
                         _opt("GARPersonDateNaissance", p.get("birth_date"))), "GAREleve", p["jointure"])
        for etab_uai in etabs:
            if p.get("mef"):
                person_mef.append((etab_uai, p["jointure"], p["mef"]))
                mefs.setdefault(etab_uai, set()).add(p["mef"])
        for m in p["memberships"]:
            if m["kind"] in ("class", "group") and (u := uai(m["structure"])):
                groups[(u, m["code"])] = "DIVISION" if m["kind"] == "class" else "GROUPE"
                person_groups.add((u, p["jointure"], m["code"]))
    for u, j, mef in person_mef:
        eleves.write(_el("GARPersonMEF", _v("GARStructureUAI", u), _v("GARPersonIdentifiant", j),
                         _v("GARMEFCode", mef)), "GARPersonMEF", u, j, mef)
    eleves.finish()

    # Staff.
    subjects: dict[str, set[str]] = {}
    teaching: dict[tuple[str, str, str, str], set[str]] = {}  # (UAI, person, scope, code) -> subjects
    staff = writer("Enseignant")
    for p, etabs in feed.people(conn, "PersEducNat", "Enseignant", uai_of, degrees.first):
        profiles = sorted({_PROFILES.get(x, "National_eta") for x in p.get("profiles") or ()}) or ["National_eta"]
        postes: dict[str, set[str]] = {}
        for m in p["memberships"]:
            u = uai(m.get("structure"))
            if m["kind"] == "function" and u and m.get("discipline"):
                postes.setdefault(u, set()).add(m["discipline"])
            elif m["kind"] == "teaching" and u:
                teaching.setdefault((u, p["jointure"], m["scope"], m["code"]), set()).add(m["subject"])
                subjects.setdefault(u, set()).add(m["subject"])
                groups.setdefault((u, m["code"]), "DIVISION" if m["scope"] == "class" else "GROUPE")
        staff.write(_el("GAREnseignant", *_identity(p, etabs, profiles, uai(p.get("structure"))),
                        *(_v("GARPersonEtab", u) for u in etabs),
                        _opt("GARPersonDateNaissance", p.get("birth_date")),
                        *(_el("GAREnsDisciplinesPostes", _v("GARStructureUAI", u),
                              *(_v("GAREnsDisciplinePosteCode", d) for d in sorted(ds)))
                          for u, ds in sorted(postes.items())),
                        _opt("GARPersonMail", p.get("email"), 255)), "GAREnseignant", p["jointure"])
    staff.finish()

    # Structures, their MEF and subjects.
    etab = writer("Etab")
    structures = sorted((u, d) for u, d in conn.execute(select(t.structure.c.uai, t.structure.c.data)
                                                        .where(t.structure.c.uai.is_not(None)))
                        if u not in ecole_uais)
    for u, data in structures:
        rec = orjson.loads(data)
        etab.write(_el("GAREtab", _v("GARStructureUAI", u),
                       _v("GARStructureNomCourant", rec.get("name") or u)), "GAREtab", u)
    for u, _data in structures:
        for code in sorted(mefs.get(u, ())):
            etab.write(_el("GARMEF", _v("GARStructureUAI", u), _v("GARMEFCode", code),
                           _v("GARMEFLibelle", labels.get(("mef", code)) or code, 255)), "GARMEF", u, code)
    for u, _data in structures:
        for code in sorted(subjects.get(u, ())):
            etab.write(_el("GARMatiere", _v("GARStructureUAI", u), _v("GARMatiereCode", code),
                           _v("GARMatiereLibelle", labels.get(("subject", code)) or code, 255)), "GARMatiere", u, code)
    etab.finish()

    # Classes and groups, who is in them, who teaches what there.
    grp = writer("Groupe")
    for (u, code), status in sorted(groups.items()):
        grp.write(_el("GARGroupe", _v("GARGroupeCode", code), _v("GARStructureUAI", u),
                      _v("GARGroupeLibelle", code), _v("GARGroupeStatut", status)), "GARGroupe", u, code)
    for u, j, code in sorted(person_groups):
        grp.write(_el("GARPersonGroupe", _v("GARStructureUAI", u), _v("GARPersonIdentifiant", j),
                      _v("GARGroupeCode", code)), "GARPersonGroupe", u, j, code)
    for scope, tag in (("group", "GAREnsGroupeMatiere"), ("class", "GAREnsClasseMatiere")):
        for (u, j, sc, code), subs in sorted(teaching.items()):
            if sc == scope:
                grp.write(_el(tag, _v("GARStructureUAI", u), _v("GARPersonIdentifiant", j),
                              _v("GARGroupeCode", code), *(_v("GARMatiereCode", s) for s in sorted(subs))),
                          tag, u, j, code)
    grp.finish()

    feed.managers(conn, lambda uais: uais - ecole_uais)  # the resource managers
    return feed.done()


def structure_degrees(conn: Connection) -> Degrees:
    """The view's structures with a UAI, split into second-degree ones and écoles."""
    return split_structures((j, u, orjson.loads(d)) for j, u, d in conn.execute(
        select(t.structure.c.jointure, t.structure.c.uai, t.structure.c.data)))


def _remove(paths: list[str]) -> None:
    for path in paths:
        Path(path).unlink(missing_ok=True)


# -- what the previous feed held (for deltas) ---------------------------------------------

def previous_feed(conn: Connection, ent_id: str) -> dict[int, int] | None:
    """Record key -> fingerprint of the last feed written for `ent_id`, or None if there was none."""
    row = conn.execute(select(t.gar_feed.c.state).where(t.gar_feed.c.ent_id == ent_id)).first()
    if row is None:
        return None
    pairs = array("Q")
    pairs.frombytes(row.state)
    return dict(zip(pairs[0::2], pairs[1::2], strict=True))


def record_feed(conn: Connection, ent_id: str, report: GarReport, now: datetime) -> None:
    """Remember what a feed held, once its files are written, so the next delta compares with it."""
    pairs = array("Q")
    for key, fingerprint in report.state.items():
        pairs.append(key)
        pairs.append(fingerprint)
    conn.execute(delete(t.gar_feed).where(t.gar_feed.c.ent_id == ent_id))
    conn.execute(insert(t.gar_feed).values(ent_id=ent_id, mode=report.mode, written_at=now,
                                           records=len(report.state), state=pairs.tobytes()))


def all_first_names(p: dict[str, Any]) -> list[str]:
    """What GARPersonAutresPrenoms holds, one element each: all the person's first names, the usual one
    included (first), "à défaut le prénom usuel seul" (GAR-ENT.xsd); each name once."""
    usual = p["first_name"]
    names = {usual.casefold(): usual}
    for name in p.get("other_first_names") or ():
        names.setdefault(name.casefold(), name)
    return list(names.values())


def _identity(p: dict[str, Any], etabs: list[str], profiles: list[str], rattach: str | None) -> list[str]:
    """The GARIdentite part, in the XSD's order."""
    return [
        _v("GARPersonIdentifiant", p["jointure"]),
        *(_el("GARPersonProfils", _v("GARStructureUAI", u), _v("GARPersonProfil", prof))
          for u in etabs for prof in profiles),
        _v("GARPersonNom", p["last_name"]),
        _v("GARPersonPrenom", p["first_name"]),
        *(_v("GARPersonAutresPrenoms", name) for name in all_first_names(p)),
        _opt("GARPersonCivilite", p.get("title"), 30),
        _opt("GARPersonStructRattach", rattach, 45),
    ]


def validate(paths: list[str], xsd: Path) -> list[str]:
    """Every XSD violation in the files, as 'file:line: message' (empty: all valid)."""
    schema = etree.XMLSchema(etree.parse(str(xsd), etree.XMLParser(resolve_entities=False, no_network=True)))
    problems: list[str] = []
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    for path in paths:
        doc = etree.parse(path, parser)
        if not schema.validate(doc):
            errors = schema.error_log  # lxml-stubs' _ErrorLog lacks __iter__; lxml's error logs are iterable
            problems.extend(f"{path}:{e.line}: {e.message}" for e in errors)  # type: ignore[attr-defined]
    return problems
