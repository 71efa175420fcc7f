"""After the files: deleting the records absent from this run's Complet exports, unless that is a mass deletion.

Which records may count as absent is `rules/complet_scope.py` (complete
families that had records; for persons, the structures the Complet covers),
worked out here in SQL against the keys the run's Complet files listed
(`dir_import_seen`). Whether their deletion goes ahead is
`rules/mass_deletion.py`: when it refuses, `ImportRefused` rolls the whole
run back. Each deleted record has its `.deleted` event (reason
`absent-from-complet`).
"""

from __future__ import annotations

from collections.abc import Mapping

from sqlalchemy import ColumnElement, Connection, and_, func, literal, select, true

from ..adapters import tables
from ..rules.complet_scope import WHOLE, families_to_sweep
from ..rules.mass_deletion import Absentees, verdict
from .events import PendingEvents
from .kinds import KINDS
from .options import ImportOptions
from .report import ImportReport
from .stored import CHUNK, delete_records, load_records


class ImportRefused(Exception):
    """The run would change too much at once; nothing was changed."""


def sweep_absent(conn: Connection, report: ImportReport, events: PendingEvents, complet_ok: Mapping[str, bool],
                 had_records: Mapping[str, bool], options: ImportOptions) -> None:
    """Delete the records absent from this run's Complet exports, or raise `ImportRefused`."""
    sweep = families_to_sweep(complet_ok, had_records)
    for family in sweep.incomplete:
        report.warn(None, None, None,
                    f"no deletions for {family}: a Complet file of it failed, absent records may be in it")
    judged = verdict([absent_records(conn, report.import_id, family) for family in sweep.families],
                     options.max_delete_share, options.force)
    if judged.refusal is not None:
        raise ImportRefused(judged.refusal)
    for family, keys in judged.deletions:
        _delete_absent(conn, report, events, family, keys)


def absent_records(conn: Connection, import_id: str, family: str) -> Absentees:
    """The family's records the run's Complet did not list, in the structures it covers, with their accounts."""
    kind = KINDS[family]
    t = kind.table
    seen_q = select(tables.seen.c.key).where(tables.seen.c.import_id == import_id, tables.seen.c.family == family)
    group_col: ColumnElement[str]
    if kind.name == "person":
        family_filter = t.c.category == family
        group_col = func.coalesce(t.c.structure, WHOLE)
        # Only the structures this Complet covers: a person of another school is not absent.
        covered = select(group_col).where(t.c.jointure.in_(seen_q), family_filter).distinct()
        scope = and_(family_filter, group_col.in_(covered))
    else:
        group_col, scope = literal(WHOLE), true()
    absent = conn.execute(select(kind.key, group_col).where(scope, kind.key.not_in(seen_q))).all()
    if not absent:
        return Absentees(family, [], {})
    accounts = dict(conn.execute(select(group_col, func.count()).where(scope).group_by(group_col)).all())
    return Absentees(family, absent, accounts)


def _delete_absent(conn: Connection, report: ImportReport, events: PendingEvents, family: str,
                   keys: list[str]) -> None:
    kind = KINDS[family]
    for i in range(0, len(keys), CHUNK):
        chunk = keys[i:i + CHUNK]
        old = load_records(conn, kind, chunk)
        for k in chunk:
            rec = old[k]["record"]
            events.add(f"{kind.event_prefix}.deleted",
                       {**kind.identity(rec), "reason": "absent-from-complet", kind.name: rec})
        delete_records(conn, kind, chunk)
        report.counts(family).deleted += len(chunk)
        events.write()
