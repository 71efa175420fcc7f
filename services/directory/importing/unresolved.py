"""After the files: references to records not (yet) in the directory, counted and listed as warnings.

A pupil's relative or a person's structure may arrive in a later export: the
link is kept and resolves when the record arrives. The report counts them
and warns of the first hundred of each.
"""

from __future__ import annotations

from sqlalchemy import Connection, func, select

from ..adapters import tables
from .report import ImportReport

LISTED = 100  # warnings per kind of reference


def note_unresolved(conn: Connection, report: ImportReport) -> None:
    """Count references to records not (yet) in the directory; they stay and resolve on arrival."""
    m, p, s = tables.membership, tables.person, tables.structure
    missing_relatives = conn.execute(
        select(m.c.person, m.c.other)
        .select_from(m.outerjoin(p, p.c.jointure == m.c.other))
        .where(m.c.kind == "relative", p.c.jointure.is_(None))
    ).all()
    missing_structures = conn.execute(
        select(m.c.structure, func.count())
        .select_from(m.outerjoin(s, s.c.jointure == m.c.structure))
        .where(m.c.kind == "structure", s.c.jointure.is_(None))
        .group_by(m.c.structure)
    ).all()
    report.unresolved = {
        "relatives": len(missing_relatives),
        "structures": len(missing_structures),
    }
    for pupil, relative in missing_relatives[:LISTED]:
        report.warn(None, None, pupil, f"relative {relative} is not in the directory yet; the link is kept")
    for structure, n in missing_structures[:LISTED]:
        report.warn(None, None, structure, f"structure {structure} ({n} persons) is not in the directory yet")
