"""After an import: persons erased on request (relais subject erase) whom the AAF export brought back.

The academy's export is the directory's source: Relais cannot erase a person there, so a Complet or
Delta that still lists them adds them again. The directory keeps a mark per erasure (keyed hash,
request id: `dir_erased`), and the import that brings a person back warns in its report, naming the
request, once.
"""
from __future__ import annotations

from sqlalchemy import Connection

from relais.config import Settings
from relais.subject.keys import subject_hash, subject_key

from ..adapters import subject_rows
from .report import ImportReport


def note_returned(conn: Connection, report: ImportReport, tenant: str, key: bytes | None = None) -> int:
    """Warn in `report` of each person erased on request that is in the directory again; returns how many.

    Hashes every jointure, only while some erased person has not come back (a million in about a second);
    the key is the deployment's (`relais.subject.keys`, from the environment unless given)."""
    marks = subject_rows.pending_marks(conn)
    if not marks:
        return 0
    key = key if key is not None else subject_key(Settings.from_env())
    back = 0
    for jointure in subject_rows.all_jointures(conn):
        request_id = marks.get(subject_hash(key, tenant, jointure))
        if request_id is not None:
            subject_rows.mark_returned(conn, subject_hash(key, tenant, jointure), report.import_id)
            report.warn(None, None, jointure, f"this person was erased on request {request_id} and the AAF export "
                        "brought them back: erase them again (`relais subject erase`) once the academy has "
                        "removed them, or keep them if they are meant to stay")
            back += 1
    return back
