"""A synthetic academy export, for benchmarks and load tests.

Writes AAF files shaped like a real anonymised academy export (the sample
`make demo` imports: the same attribute names and value formats, empty
`<value/>` elements, accented names, `$`-separated links): schools, MEF and
subjects, staff with teaching assignments and functions, pupils in classes and
groups, and their relatives.
Streaming and deterministic for a seed; memory stays flat whatever the size.

`generate_first_degree` writes the first-degree (école) side the same way, as
an ONDE-fed aaf1d export names it: écoles with their circonscription (IEN),
commune and RPI; pupils with `ENTPersonNom`/`ENTPersonPrenom`, a level and a
cycle, classes (a third of them multi-level) with entry dates, groups, school
services and `ENTEleveAutoriteParentale`; their parents; teachers and one
director per école (`ENTEnsFonctionDir`). `generate_academy(...,
first_degree_share=0.5)` writes a mixed export: that share of the persons in
écoles (project `<project>1D`), the rest in collèges, in one folder.
The level codes are four-character MEFSTAT4-shaped codes made up for the
generator, not the national nomenclature.
"""

from __future__ import annotations

import json
import random
import sys
from pathlib import Path
from typing import TextIO
from xml.sax.saxutils import escape

HEADER = ('<?xml version="1.0" encoding="UTF-8"?>\n'
          '<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>\n'
          '<!-- versionAF="AAF-VE2407" -->\n\n')
FOOTER = "</ficAlimMENESR>\n"

GIVEN = ["Léonore", "Kù", "Maëlla", "Jérôme", "Noé", "Inès", "Lucas", "Chloé", "Adèle", "Hugo", "Zoé",
         "Théo", "Léa", "Gaël", "Anaïs", "Mathis", "Éloïse", "Nathan", "Camille", "Yanis"]
FAMILY = ["Martin", "Bernard", "Dubois", "Thomas", "Robert", "Richard", "Petit", "Durand", "Leroy", "Moreau",
          "Simon", "Laurent", "Lefèvre", "Michel", "Garcia", "David", "Bertrand", "Roux", "Vincent", "Fournier"]
SUBJECT_LABELS = ["MATHEMATIQUES", "FRANCAIS", "ANGLAIS LV1", "HISTOIRE-GEOGRAPHIE", "SCIENCES PHYSIQUES",
                  "SVT", "EDUCATION PHYSIQUE ET SPORTIVE", "TECHNOLOGIE", "ARTS PLASTIQUES", "ESPAGNOL LV2"]
FUNCTIONS = [("ENS", "ENSEIGNEMENT")] * 8 + [("DOC", "DOCUMENTATION"), ("DIR", "DIRECTION"), ("EDU", "EDUCATION")]

PERSONS_PER_SCHOOL = 800
PUPILS_PER_CLASS = 25


def _attr(name: str, *values: str) -> str:
    if not values:
        return f'<attr name="{name}"><value/></attr>\n'
    return f'<attr name="{name}">' + "".join(f"<value>{escape(v)}</value>" for v in values) + "</attr>\n"


def _record(category_attr: str, category: str, identifier: str, attrs: list[str]) -> str:
    return (f'<addRequest>\n<operationalAttributes><attr name="{category_attr}"><value>{category}</value></attr>'
            f"</operationalAttributes>\n<identifier><id>{identifier}</id></identifier>\n<attributes>\n"
            + "".join(attrs) + "</attributes>\n</addRequest>\n\n")


def _birth_date(rng: random.Random, first_year: int, end_year: int) -> str:
    """DD/MM/YYYY, the year in [first_year, end_year) (days 1 to 28: every month has them)."""
    return f"{rng.randrange(1, 29):02d}/{rng.randrange(1, 13):02d}/{rng.randrange(first_year, end_year)}"


class _Writer:
    """Writes records of one family into numbered files of at most `per_file` records."""

    def __init__(self, out: Path, project: str, kind: str, date: str, family: str, per_file: int):
        self.out, self.prefix, self.per_file = out, f"{project}_{kind}_{date}_{family}", per_file
        self.files: list[Path] = []
        self.count = 0
        self._fh: TextIO | None = None

    def write(self, record: str) -> None:
        if self._fh is None or self.count % self.per_file == 0:
            self._close()
            path = self.out / f"{self.prefix}_{len(self.files):04d}.xml"
            self.files.append(path)
            self._fh = open(path, "w", encoding="utf-8", buffering=1 << 20)
            self._fh.write(HEADER)
        self._fh.write(record)
        self.count += 1

    def _close(self) -> None:
        if self._fh is not None:
            self._fh.write(FOOTER)
            self._fh.close()
            self._fh = None

    def close(self) -> None:
        self._close()


def generate_academy(out_dir: Path, persons: int = 1_000_000, *, seed: int = 0, records_per_file: int = 50_000,
                     project: str = "SYNTH", date: str = "20260901", kind: str = "Complet",
                     first_degree_share: float = 0.0) -> dict:
    """Write an academy of about `persons` persons (55 % pupils, 38 % relatives, 7 % staff).

    With `first_degree_share`, that share of them are in écoles (`generate_first_degree`), the rest in collèges.
    """
    first_degree = round(persons * first_degree_share)
    if first_degree:
        one = generate_first_degree(out_dir, first_degree, seed=seed + 1, records_per_file=records_per_file,
                                    project=f"{project}1D", date=date, kind=kind)
        two = _generate_second_degree(out_dir, persons - first_degree, seed=seed, records_per_file=records_per_file,
                                      project=project, date=date, kind=kind)
        counts = {f: one["counts"].get(f, 0) + two["counts"].get(f, 0) for f in two["counts"]}
        return {"persons": one["persons"] + two["persons"], "counts": counts, "files": two["files"] + one["files"],
                "first_degree": {k: v for k, v in one.items() if k != "files"}}
    return _generate_second_degree(out_dir, persons, seed=seed, records_per_file=records_per_file, project=project,
                                   date=date, kind=kind)


def _generate_second_degree(out_dir: Path, persons: int, *, seed: int, records_per_file: int, project: str,
                            date: str, kind: str) -> dict:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    writers = {f: _Writer(out, project, kind, date, f, records_per_file)
               for f in ("EtabEducNat", "MefEducNat", "MatiereEducNat", "PersEducNat", "Eleve", "PersRelEleve")}

    mefs = [f"{rng.randrange(10**10, 10**11):011d}" for _ in range(300)]
    for code in mefs:
        writers["MefEducNat"].write(_record("categorieMef", "MefEducNat", code, [
            _attr("ENTMefJointure", code), _attr("ENTLibelleMef", f"MEF {code[:4]} {rng.choice(SUBJECT_LABELS)}"),
            _attr("ENTMEFRattach", code), _attr("ENTMEFSTAT11", f"{rng.randrange(10**10, 10**11):011d}")]))
    subjects = [f"{i:04d}00" for i in range(1, 201)]
    for code in subjects:
        writers["MatiereEducNat"].write(_record("categorieMatiere", "MatEducNat", code, [
            _attr("ENTMatJointure", code), _attr("ENTLibelleMatiere", f"{rng.choice(SUBJECT_LABELS)} {code}")]))

    schools = max(1, persons // PERSONS_PER_SCHOOL)
    next_id = 3_000_000
    for s in range(schools):
        school = str(60_000 + s)
        uai = f"{rng.randrange(10**6, 10**7):07d}{chr(65 + s % 26)}"
        writers["EtabEducNat"].write(_record("categorieStructure", "EtabEducNat", school, [
            _attr("ENTStructureJointure", school), _attr("ENTStructureUAI", uai), _attr("ENTEtablissementUAI", uai),
            _attr("ENTStructureSIREN"), _attr("ENTStructureNomCourant", f"COLLEGE {rng.choice(FAMILY).upper()} {s}"),
            _attr("ENTStructureTypeStruct", "CLG"), _attr("ENTEtablissementContrat", "PU"), _attr("postOfficeBox"),
            _attr("street", f"{rng.randrange(1, 200)} RUE {rng.choice(FAMILY).upper()}"),
            _attr("postalCode", f"{rng.randrange(1000, 96000):05d}"), _attr("l", "VILLE"), _attr("telephoneNumber"),
            _attr("ENTServAcAcademie", "SYNTH"), _attr("ENTStructureClasses"), _attr("ENTStructureGroupes")]))
        share = persons // schools + (1 if s < persons % schools else 0)
        n_staff, n_pupils = share * 7 // 100, share * 55 // 100
        n_relatives = share - n_staff - n_pupils
        classes = [f"{4 + c // 8}{chr(65 + c % 8)}" for c in range(max(1, n_pupils // PUPILS_PER_CLASS))]
        groups = [f"G{g}" for g in range(max(1, len(classes) // 2))]

        relatives = list(range(next_id, next_id + n_relatives))
        next_id += n_relatives
        for r in relatives:
            last, first = rng.choice(FAMILY), rng.choice(GIVEN)
            writers["PersRelEleve"].write(_record("categoriePersonne", "PersRelEleve", str(r), [
                _attr("ENTPersonJointure", str(r)), _attr("ENTPersonDateNaissance"),
                _attr("ENTPersonNomPatro", last.upper()), _attr("sn", last), _attr("givenName", first),
                _attr("personalTitle", rng.choice(["M.", "Mme"])), _attr("homePhone", "0000000000"),
                _attr("telephoneNumber", "0000000000"),
                _attr("ENTPersonAdresse", "XXXXXXXXXX XXXXXXXXXX XXXXXXXXXX XXXXXXXXXX"),
                _attr("ENTPersonCodePostal", f"{rng.randrange(1000, 96000):05d}"), _attr("ENTPersonVille", "VILLE"),
                _attr("ENTPersonPays", "FRANCE")]))

        for _ in range(n_staff):
            j = str(next_id)
            next_id += 1
            last, first = rng.choice(FAMILY), rng.choice(GIVEN)
            code, label = rng.choice(FUNCTIONS)
            taught = rng.sample(classes, min(len(classes), rng.randrange(1, 5)))
            tgroups = rng.sample(groups, min(len(groups), rng.randrange(0, 3)))
            subject = rng.choice(subjects)
            writers["PersEducNat"].write(_record("categoriePersonne", "PersEducNat", j, [
                _attr("ENTPersonJointure", j),
                _attr("ENTPersonDateNaissance", _birth_date(rng, 1960, 1998)),
                _attr("ENTPersonNomPatro", last.upper()), _attr("sn", last), _attr("givenName", first),
                _attr("personalTitle", rng.choice(["M.", "Mme"])),
                _attr("mail", f"{first.lower()}.{last.lower()}{j[-3:]}@ac-synth.fr"),
                _attr("ENTPersonStructRattach", school), _attr("ENTAuxEnsCategoDiscipline"),
                _attr("ENTAuxEnsDisciplinesPoste"),
                _attr("ENTAuxEnsMEF", *[f"{school}${rng.choice(mefs)}$MEF" for _ in range(2)]),
                _attr("ENTAuxEnsMatiereEnseignEtab", f"{school}${rng.choice(SUBJECT_LABELS)}"),
                _attr("ENTAuxEnsClasses", *[f"{school}${c}" for c in taught]),
                _attr("ENTAuxEnsGroupes", *[f"{school}${g}" for g in tgroups]),
                _attr("ENTAuxEnsClassesMatieres", *[f"{school}${c}${subject}" for c in taught]),
                _attr("ENTAuxEnsGroupesMatieres", *[f"{school}${g}${subject}" for g in tgroups]),
                _attr("ENTAuxEnsClassesPrincipal"),
                _attr("ENTPersonFonctions",
                      f"{school}${code}${label}$L{rng.randrange(1000, 9999)}${rng.choice(SUBJECT_LABELS)}"),
                _attr("PersEducNatPresenceDevantEleves", "O" if code == "ENS" else "N")]))

        for p in range(n_pupils):
            j = str(next_id)
            next_id += 1
            last, first = rng.choice(FAMILY), rng.choice(GIVEN)
            klass = classes[p % len(classes)]
            parents = rng.sample(relatives, min(len(relatives), rng.choice((1, 2, 2)))) if relatives else []
            mef = rng.choice(mefs)
            writers["Eleve"].write(_record("categoriePersonne", "Eleve", j, [
                _attr("ENTPersonJointure", j), _attr("ENTEleveStructRattachId", str(800_000 + next_id)),
                _attr("ENTEleveINE", f"{rng.randrange(10**9, 10**10):010d}{chr(65 + rng.randrange(26))}"),
                _attr("ENTPersonDateNaissance", _birth_date(rng, 2008, 2016)),
                _attr("ENTPersonNomPatro", last.upper()), _attr("sn", last), _attr("givenName", first),
                _attr("ENTPersonAutresPrenoms", rng.choice(GIVEN)), _attr("personalTitle", rng.choice(["M.", "Mlle"])),
                _attr("ENTEleveParents", *map(str, parents)),
                _attr("ENTElevePere", *(str(parents[0]),) if parents else ()),
                _attr("ENTEleveMere", *(str(parents[-1]),) if len(parents) > 1 else ()),
                _attr("ENTEleveAutoriteParentale", *map(str, parents)),
                _attr("ENTElevePersRelEleve1"), _attr("ENTEleveQualitePersRelEleve1"),
                _attr("ENTElevePersRelEleve2"), _attr("ENTEleveQualitePersRelEleve2"),
                _attr("ENTElevePersRelEleve", *[f"{r}${i + 1}${i % 2}$1$1$0" for i, r in enumerate(parents)]),
                _attr("ENTEleveBoursier", "N"), _attr("ENTEleveRegime", "EXTERNE LIBRE"),
                _attr("ENTEleveTransport", "N"), _attr("ENTEleveStatutEleve", "SCOLAIRE"),
                _attr("ENTEleveMEF", mef), _attr("ENTEleveLibelleMEF", f"MEF {mef[:4]}"),
                _attr("ENTEleveNivFormation", "COLLEGE"), _attr("ENTEleveFiliere", "GENERALE"),
                _attr("ENTEleveEnseignements", *rng.sample(SUBJECT_LABELS, 4)),
                _attr("ENTEleveCodeEnseignements", *rng.sample(subjects, 4)),
                _attr("ENTPersonStructRattach", school), _attr("ENTEleveClasses", f"{school}${klass}"),
                _attr("ENTEleveGroupes", f"{school}${rng.choice(groups)}")]))

    for w in writers.values():
        w.close()
    return {
        "persons": sum(writers[f].count for f in ("PersEducNat", "Eleve", "PersRelEleve")),
        "counts": {f: w.count for f, w in writers.items()},
        "files": [str(p) for w in writers.values() for p in w.files],
    }


# First degree: levels in the order pupils go through them, with their cycle; an école's classes.
LEVELS_1D = [("0001", "TPS", "C1"), ("0002", "PS", "C1"), ("0003", "MS", "C1"), ("0004", "GS", "C1"),
             ("0011", "CP", "C2"), ("0012", "CE1", "C2"), ("0013", "CE2", "C2"), ("0021", "CM1", "C3"),
             ("0022", "CM2", "C3")]
CYCLES_1D = {"C1": "CYCLE 1", "C2": "CYCLE 2", "C3": "CYCLE 3"}
PERSONS_PER_ECOLE = 300
PUPILS_PER_CLASS_1D = 24
ECOLES_PER_DISTRICT = 40


def _ecole_classes(school: str, n_pupils: int) -> list[tuple[str, str, list[int]]]:
    """(code, label, level indexes) per class: elementary levels in turn, one class in three multi-level."""
    classes = []
    for c in range(max(1, n_pupils // PUPILS_PER_CLASS_1D)):
        first = 8 - c % 8  # CM2 down to PS
        levels = [first, first + 1] if c % 3 == 2 and first < 8 else [first]
        label = "-".join(LEVELS_1D[i][1] for i in levels)
        classes.append((f"{school}C{c:02d}", f"{label} {chr(65 + c // 5)}", levels))
    return classes


def generate_first_degree(out_dir: Path, persons: int, *, seed: int = 0, records_per_file: int = 50_000,
                          project: str = "SYNTH1D", date: str = "20260901", kind: str = "Complet") -> dict:
    """Write a first-degree academy of about `persons` persons (50 % pupils, 46 % relatives, 4 % staff)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rng = random.Random(seed)
    writers = {f: _Writer(out, project, kind, date, f, records_per_file)
               for f in ("EtabEducNat", "PersEducNat", "Eleve", "PersRelEleve")}
    ecoles = max(1, persons // PERSONS_PER_ECOLE)
    next_id = 9_000_000
    pupils_by_level = {label: 0 for _code, label, _cycle in LEVELS_1D}
    for s in range(ecoles):
        school = str(70_000 + s)
        uai = f"{rng.randrange(10**6, 10**7):07d}{chr(65 + s % 26)}"
        town = f"COMMUNE {s // 3}"
        writers["EtabEducNat"].write(_record("categorieStructure", "EtabEducNat", school, [
            _attr("ENTStructureJointure", school), _attr("ENTStructureUAI", uai), _attr("ENTStructureSIREN"),
            _attr("ENTStructureNomCourant", f"ECOLE ELEMENTAIRE {rng.choice(FAMILY).upper()} {s}"),
            _attr("ENTStructureTypeStruct", "ECOLE ELEMENTAIRE PUBLIQUE"), _attr("ENTEtablissementContrat", "PU"),
            _attr("ENTStructureAdresse", f"{rng.randrange(1, 200)} RUE {rng.choice(FAMILY).upper()}"),
            _attr("ENTStructureCodePostal", f"{rng.randrange(1000, 96000):05d}"), _attr("ENTStructureVille", town),
            _attr("ENTServAcAcademie", "SYNTH"), _attr("ENTEcoleSecteur", "PU"),
            _attr("ENTEcoleCirconscription", f"{0 + s // ECOLES_PER_DISTRICT:07d}C"), _attr("ENTEcoleCommune", town),
            *([_attr("ENTEcoleRPI", f"RPI{s // 3}")] if s % 10 == 0 else [_attr("ENTEcoleRPI")]),
            _attr("ENTStructureEmail", f"ce.{uai.lower()}@ac-synth.fr")]))
        share = persons // ecoles + (1 if s < persons % ecoles else 0)
        n_staff, n_pupils = max(1, share * 4 // 100), share * 50 // 100
        n_relatives = share - n_staff - n_pupils
        classes = _ecole_classes(school, n_pupils)
        groups = [(f"{school}G{g}", label) for g, label in enumerate(("CHORALE", "APC", "ULIS"))]

        relatives = list(range(next_id, next_id + n_relatives))
        next_id += n_relatives
        for r in relatives:
            last, first = rng.choice(FAMILY), rng.choice(GIVEN)
            writers["PersRelEleve"].write(_record("categoriePersonne", "PersRelEleve", str(r), [
                _attr("ENTPersonJointure", str(r)), _attr("ENTPersonDateNaissance"),
                _attr("ENTPersonNomPatro", last.upper()), _attr("ENTPersonNom", last),
                _attr("ENTPersonPrenom", first), _attr("ENTPersonCivilite", rng.choice(["M.", "Mme"])),
                _attr("ENTPersonTelPerso", "0000000000"), _attr("ENTPersRelEleveTelMobile"),
                _attr("ENTPersonAdresse", "XXXXXXXXXX XXXXXXXXXX XXXXXXXXXX"),
                _attr("ENTPersonCodePostal", f"{rng.randrange(1000, 96000):05d}"), _attr("ENTPersonVille", town),
                _attr("ENTPersonPays", "FRANCE"),
                _attr("ENTPersonMail", f"parent{r}@example.org") if r % 2 else _attr("ENTPersonMail")]))

        for i in range(n_staff):
            j = str(next_id)
            next_id += 1
            last, first = rng.choice(FAMILY), rng.choice(GIVEN)
            director = i == 0
            taught = [classes[i % len(classes)]] if i < len(classes) else []
            writers["PersEducNat"].write(_record("categoriePersonne", "PersEducNat", j, [
                _attr("ENTPersonJointure", j), _attr("ENTPersonDateNaissance", _birth_date(rng, 1960, 1998)),
                _attr("ENTPersonNomPatro", last.upper()), _attr("ENTPersonNom", last), _attr("ENTPersonPrenom", first),
                _attr("ENTPersonCivilite", rng.choice(["M.", "Mme"])),
                _attr("ENTPersonMail", f"{first.lower()}.{last.lower()}{j[-3:]}@ac-synth.fr"),
                _attr("ENTPersonStructRattach", school),
                _attr("ENTPersonFonctions", f"{school}$ENS$ENSEIGNEMENT$$" if taught or not director
                      else f"{school}$DIR$DIRECTION$$"),
                _attr("ENTEnsFonctionDir", *([school] if director else [])),
                _attr("ENTPersonCategorieEnseignant", "O" if taught else "N"),
                _attr("ENTPersonClasses", *[f"{school}$2026$-${c}${label}" for c, label, _lv in taught])]))

        for p in range(n_pupils):
            j = str(next_id)
            next_id += 1
            last, first = rng.choice(FAMILY), rng.choice(GIVEN)
            code, label, levels = classes[p % len(classes)]
            level_code, level, cycle = LEVELS_1D[levels[p // len(classes) % len(levels)]]
            pupils_by_level[level] += 1
            parents = rng.sample(relatives, min(len(relatives), rng.choice((1, 2, 2)))) if relatives else []
            group = rng.choice(groups) if p % 4 == 0 else None
            writers["Eleve"].write(_record("categoriePersonne", "Eleve", j, [
                _attr("ENTPersonJointure", j),
                _attr("ENTEleveINE", f"{rng.randrange(10**9, 10**10):010d}{chr(65 + rng.randrange(26))}"),
                _attr("ENTPersonDateNaissance", _birth_date(rng, 2015, 2022)),
                _attr("ENTPersonNomPatro", last.upper()), _attr("ENTPersonNom", last), _attr("ENTPersonPrenom", first),
                _attr("ENTPersonAutresPrenoms", rng.choice(GIVEN)), _attr("ENTPersonCivilite"),
                _attr("ENTEleveAutoriteParentale", *map(str, parents)),
                _attr("ENTPersonStructRattach", school),
                _attr("ENTPersonClasses", f"{school}$2026${label.split()[0]}${code}${label}"),
                _attr("ENTPersonGroupes", *([f"{school}$2026$-${group[0]}${group[1]}"] if group else [])),
                _attr("ENTEleveNiveau", f"{level_code}${level}"), _attr("ENTEleveCycle", f"{cycle}${CYCLES_1D[cycle]}"),
                _attr("ENTEleveTypeClasse", "MULTINIVEAU" if len(levels) > 1 else "SIMPLE"),
                _attr("ENTEleveDateEntreeClasses", f"{school}${code}$01/09/2026"), _attr("ENTEleveDateSortieClasses"),
                _attr("ENTEleveDateEntreeStructRattach", f"0{rng.randrange(1, 5)}/09/{rng.randrange(2020, 2027)}"),
                _attr("ENTEleveRestaurantScolaire", rng.choice("ON")), _attr("ENTEleveTransport", "N"),
                _attr("ENTEleveGarderieMatin", rng.choice("NNO")), _attr("ENTEleveGarderieSoir", rng.choice("NNO")),
                _attr("ENTEleveEtudesSurveillees", "N")]))

    for w in writers.values():
        w.close()
    return {
        "persons": sum(writers[f].count for f in ("PersEducNat", "Eleve", "PersRelEleve")),
        "ecoles": ecoles,
        "pupils_by_level": pupils_by_level,
        "counts": {f: w.count for f, w in writers.items()},
        "files": [str(p) for w in writers.values() for p in w.files],
    }


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Write a synthetic AAF academy export.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--records-per-file", type=int, default=50_000)
    parser.add_argument("--first-degree-share", type=float, default=0.0,
                        help="share of the persons in écoles (first degree), e.g. 0.5")
    args = parser.parse_args(argv)
    summary = generate_academy(args.out_dir, args.persons, seed=args.seed, records_per_file=args.records_per_file,
                               first_degree_share=args.first_degree_share)
    print(json.dumps({k: v for k, v in summary.items() if k != "files"} | {"files": len(summary["files"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
