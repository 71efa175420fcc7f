"""Small hand-written AAF files for tests."""

from __future__ import annotations

from pathlib import Path
from xml.sax.saxutils import escape

CATEGORY_ATTR = {
    "Eleve": "categoriePersonne", "PersRelEleve": "categoriePersonne", "PersEducNat": "categoriePersonne",
    "EtabEducNat": "categorieStructure", "MefEducNat": "categorieMef", "MatEducNat": "categorieMatiere",
}
HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n<!DOCTYPE ficAlimMENESR SYSTEM "ficAlimMENESR.dtd">\n<ficAlimMENESR>\n'


def _values(values) -> str:
    return "".join(f"<value>{escape(v)}</value>" for v in values) or "<value/>"


def add(category: str, ident: str | None, **attrs) -> str:
    ident_xml = f"<identifier><id>{'' if ident is None else ident}</id></identifier>"
    body = "".join(f'<attr name="{k}">{_values(v if isinstance(v, list) else [v])}</attr>\n' for k, v in attrs.items())
    return (f'<addRequest>\n<operationalAttributes><attr name="{CATEGORY_ATTR.get(category, "categoriePersonne")}">'
            f"<value>{category}</value></attr></operationalAttributes>\n{ident_xml}\n<attributes>\n{body}</attributes>\n"
            "</addRequest>\n")


def modify(category: str, ident: str, **attrs) -> str:
    body = "".join(f'<modification name="{k}" operation="replace">{_values(v if isinstance(v, list) else [v])}'
                   f"</modification>\n" for k, v in attrs.items())
    return (f'<modifyRequest>\n<operationalAttributes><attr name="{CATEGORY_ATTR[category]}"><value>{category}</value>'
            f"</attr></operationalAttributes>\n<identifier><id>{ident}</id></identifier>\n<modifications>\n{body}"
            "</modifications>\n</modifyRequest>\n")


def delete(category: str, ident: str) -> str:
    return (f'<deleteRequest>\n<operationalAttributes><attr name="{CATEGORY_ATTR[category]}"><value>{category}</value>'
            f"</attr></operationalAttributes>\n<identifier><id>{ident}</id></identifier>\n</deleteRequest>\n")


def write(folder: Path, name: str, *records: str, raw_tail: bytes = b"") -> Path:
    path = folder / name
    path.write_bytes((HEAD + "".join(records) + "</ficAlimMENESR>\n").encode("utf-8") + raw_tail)
    return path


def pupil(jointure: str, structure: str = "S1", klass: str = "3A", relatives=(), **extra) -> str:
    attrs = {
        "ENTPersonJointure": jointure, "sn": f"Nom{jointure}", "givenName": "Élodie",
        "ENTPersonDateNaissance": "01/02/2012", "ENTEleveStructRattachId": f"R{jointure}",
        "ENTPersonStructRattach": structure, "ENTEleveClasses": f"{structure}${klass}",
        "ENTEleveINE": f"INE{jointure}",
        "ENTElevePersRelEleve": [f"{r}$1$1$1$1$0" for r in relatives],
    }
    attrs.update(extra)
    return add("Eleve", jointure, **attrs)


def relative(jointure: str, last: str = "Dupré", first: str = "Hélène") -> str:
    return add("PersRelEleve", jointure, ENTPersonJointure=jointure, sn=last, givenName=first)


def school(jointure: str, uai: str) -> str:
    return add("EtabEducNat", jointure, ENTStructureJointure=jointure, ENTStructureUAI=uai,
               ENTStructureNomCourant=f"COLLEGE {jointure}", ENTStructureTypeStruct="CLG")
