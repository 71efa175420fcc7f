"""Writing batches: each record checked against what is stored, inside the run's transaction, then written in bulk.

A parser's verdicts (`batches.py`) were made against the database as
committed before the run; each is checked here: an `Unchanged` whose stored
hash moved, or a `Created` whose key is now stored, raises `StaleView`, and
the run reads that file again itself. An add whose fingerprint equals the
stored one is not written (`rules/fingerprints.py`); a modify merges its
attributes into the stored ones; a delete of an unknown record is a warning.
Each change writes its event (`events.py`); the rows go in bulk.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from sqlalchemy import Connection, delete, select

from relais.db import bulk_insert, bulk_update, key_in

from ..adapters import tables
from ..adapters.aaf.file_names import FileInfo
from ..adapters.aaf.reader import RecordError
from ..rules.aaf_values import RecordRejected
from ..rules.changes import diff_attributes, diff_fields, diff_memberships
from ..rules.import_order import distinct_key_runs
from .batches import Batch, Created, Prepared, Unchanged
from .events import PendingEvents
from .kinds import KINDS, MEMBERSHIP_COLUMNS
from .report import ImportReport
from .stored import delete_records, load_records, mark_seen


class StaleView(Exception):
    """A parser process saw a record as it was before a change made earlier in this run."""


class BatchWriter:
    """Applies a run's batches to the database, in its transaction, counting in its report."""

    def __init__(self, conn: Connection, report: ImportReport, events: PendingEvents,
                 had_records: Mapping[str, bool]):
        self.conn = conn
        self.report = report
        self.events = events
        self.had_records = had_records  # family -> it had records before the run (else nothing to mark seen)

    def apply_batch(self, info: FileInfo, batch: Batch, complet: bool) -> None:
        """Apply one batch of a file (`complet`: of a Complet file, whose keys are noted as seen)."""
        if batch.created_events:
            # After the events of earlier batches and before this batch's others (the
            # same record created, then changed later in the batch): the order applied.
            self.events.write()
            self.events.write_created(batch.created_events)
        fname = str(info.path)
        by_family: dict[str, list[Prepared | Created | Unchanged]] = {}
        for item in batch.items:
            if isinstance(item, RecordError):
                self.report.reject(info.family, fname, item.line, item.identifier, item.reason)
                if complet and item.identifier and info.family:
                    self._mark_seen(info.family, [item.identifier])
                continue
            by_family.setdefault(item.family, []).append(item)
        for family, items in by_family.items():
            # A key twice in one batch: apply in two steps so the second sees the first.
            for run in distinct_key_runs(items):
                self.apply_family(fname, family, run, complet)

    def _mark_seen(self, family: str, keys: list[str]) -> None:
        if keys and self.had_records.get(family):
            mark_seen(self.conn, self.report.import_id, family, keys)

    def apply_family(self, fname: str, family: str, items: Sequence[Prepared | Created | Unchanged],
                     complet: bool) -> None:
        """Apply records of one family, no key twice: each checked against the stored one, in this transaction."""
        if not items:
            return
        kind = KINDS[family]
        counts = self.report.counts(family)
        conn = self.conn
        event = self.events.add
        keys = [p.key for p in items]
        stored_hash: dict[str, str] = dict(
            conn.execute(select(kind.key, kind.table.c.record_hash).where(key_in(conn, kind.key, keys))).all())
        if complet:
            self._mark_seen(family, [p.key for p in items if not isinstance(p, Prepared) or p.operation == "add"])

        need_old = [p.key for p in items if p.key in stored_hash and isinstance(p, Prepared)
                    and (p.operation != "add" or stored_hash[p.key] != p.fingerprint)]
        old = load_records(conn, kind, need_old)

        inserts, updates, deletes = [], [], []
        member_rows, member_replaced = [], []
        for p in items:
            if isinstance(p, Unchanged):
                if stored_hash.get(p.key) != p.stored_hash:
                    raise StaleView(p.key)
                counts.unchanged += 1
                continue
            if isinstance(p, Created):
                if p.key in stored_hash:  # stored earlier in this run: needs the full record
                    raise StaleView(p.key)
                inserts.append(p.row)
                counts.added += 1
                if p.memberships:
                    member_rows.extend(p.memberships)
                continue
            before = old.get(p.key)
            if p.operation == "delete":
                if p.key not in stored_hash:
                    counts.unchanged += 1
                    self.report.warn(fname, p.line, p.key, "deleteRequest for a record that is not in the directory")
                    continue
                assert before is not None  # stored, so loaded
                deletes.append(p.key)
                counts.deleted += 1
                event(f"{kind.event_prefix}.deleted",
                      {**kind.identity(before["record"]), "reason": "delta", kind.name: before["record"]})
                continue
            if p.operation == "modify":
                if before is None:
                    self.report.reject(family, fname, p.line, p.key,
                                       "modifyRequest for a record that is not in the directory")
                    continue
                attrs = {**before["attributes"], **p.attributes}
                attrs = {k: v for k, v in attrs.items() if v}
                try:
                    merged = kind.canonical(family, p.key, attrs)
                except RecordRejected as exc:
                    self.report.reject(family, fname, p.line, p.key, str(exc))
                    continue
                p.attributes = attrs
                p.complete(kind, merged)
                if p.fingerprint == stored_hash[p.key]:
                    counts.unchanged += 1
                    continue
            elif stored_hash.get(p.key) == p.fingerprint:
                counts.unchanged += 1
                continue
            record = p.record
            assert record is not None  # an add, or a modify merged above
            if before is None:
                inserts.append(p.row)
                counts.added += 1
                event(f"{kind.event_prefix}.created", {kind.name: record})
                if p.memberships:
                    member_rows.extend(p.memberships)
                continue
            updates.append(p.row[1:] + p.row[:1])
            counts.updated += 1
            changes = diff_fields(before["record"], record, kind.scalar_fields(record))
            changes.update(diff_attributes(before["attributes"], p.attributes))
            if changes:
                event(f"{kind.event_prefix}.updated", {**kind.identity(record), "changes": changes})
            if kind.name == "person":
                added, removed = diff_memberships(before["record"]["memberships"], record["memberships"])
                if added or removed:
                    event("directory.membership.changed", {**kind.identity(record), "added": added, "removed": removed})
                    member_replaced.append(p.key)
                    member_rows.extend(p.memberships or ())

        name = kind.table.name
        if deletes:
            delete_records(conn, kind, deletes)
        if member_replaced:
            conn.execute(delete(tables.membership).where(key_in(conn, tables.membership.c.person, member_replaced)))
        bulk_insert(conn, name, kind.columns, inserts)
        bulk_update(conn, name, kind.columns[0], kind.columns[1:], updates)
        bulk_insert(conn, tables.membership.name, MEMBERSHIP_COLUMNS, member_rows)
