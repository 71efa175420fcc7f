"""A synthetic academy export, for benchmarks and load tests.

Writes AAF files shaped like a real anonymised academy export (the sample
`make demo` imports: the same attribute names and value formats, empty
`<value/>` elements, accented names, `$`-separated links): schools, MEF and
subjects, staff with teaching assignments and functions, pupils in classes and
groups, and their relatives.
Streaming and deterministic for a seed; memory stays flat whatever the size.
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
                     project: str = "SYNTH", date: str = "20260901", kind: str = "Complet") -> dict:
    """Write an academy of about `persons` persons (55 % pupils, 38 % relatives, 7 % staff)."""
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


def main(argv: list[str]) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Write a synthetic AAF academy export.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--persons", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--records-per-file", type=int, default=50_000)
    args = parser.parse_args(argv)
    summary = generate_academy(args.out_dir, args.persons, seed=args.seed, records_per_file=args.records_per_file)
    print(json.dumps({k: v for k, v in summary.items() if k != "files"} | {"files": len(summary["files"])}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
