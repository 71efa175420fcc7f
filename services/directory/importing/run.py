"""Importing AAF exports: the directory's main use case, one run from the files to the report.

One run imports a set of files in one database transaction, each file in a
savepoint: a file that turns out malformed or truncated is rolled back alone
and reported with the line where it broke, the others go in. The files are
read into batches (`batches.py`), in this process or in parser processes
(`parser_processes.py`), and written (`writing.py`): an unchanged record
costs a lookup and writes nothing; every change writes its event to the
outbox in the same transaction (`events.py`). After the files, the Complet
sweep (`complet_sweep.py`) deletes persons absent from a Complet export of
their structure, unless that is a mass deletion: then the whole run is
rolled back and the report says why (`force` overrides).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Connection, Engine

from relais.db import analyze, writer

from ..adapters import tables
from ..adapters.aaf.file_names import FileInfo, expand_paths
from ..adapters.aaf.pieces import ChunkUnreadable
from ..adapters.aaf.reader import AafFileError, iter_elements
from ..rules.families import FAMILIES
from .batches import Batch, prepared_batches
from .complet_sweep import ImportRefused, sweep_absent
from .erased_returns import note_returned
from .events import EventMaker, PendingEvents, completed_payload
from .options import ImportOptions, ProgressFn
from .parser_processes import parallel_sources
from .report import FamilyCounts, FileResult, ImportReport
from .stored import families_with_records, forget_seen, save_run, stored_hashes
from .unresolved import note_unresolved
from .writing import BatchWriter, StaleView

log = logging.getLogger(__name__)

ANALYZE_FROM = 10_000  # records changed: from this many, PostgreSQL's statistics are refreshed after the run


class DirectoryImporter:
    def __init__(self, engine: Engine, tenant: str, options: ImportOptions | None = None):
        self.engine = engine
        self.tenant = tenant
        self.options = options or ImportOptions()

    def run(self, paths: Iterable[Path], progress: ProgressFn | None = None) -> ImportReport:
        """Import these files and folders of files; the report says what changed, or why nothing did."""
        infos = expand_paths(paths)
        report = ImportReport(import_id=str(uuid.uuid4()), started_at=_now())
        for fam in FAMILIES:
            report.counts(fam)
        try:
            with writer(self.engine).begin() as conn:
                run = _Run(conn, report, self.options, EventMaker(self.tenant, report.import_id), progress)
                for info, batches in self._sources(infos, run):
                    run.import_file(info, batches)
                sweep_absent(conn, report, run.events, run.complet_ok, run.had_records, self.options)
                note_unresolved(conn, report)
                note_returned(conn, report, self.tenant)  # persons erased on request whom the AAF brings back
                report.status = "completed"
                report.finished_at = _now()
                run.events.add("directory.import.completed", completed_payload(report))
                run.events.write()
                forget_seen(conn, report.import_id)
                save_run(conn, report)
                if sum(c.added + c.updated + c.deleted for c in report.totals.values()) >= ANALYZE_FROM:
                    # What reads the directory next (lookups, the next import) would plan on the statistics
                    # of the tables as they were: empty, for a first import.
                    analyze(conn, tables.person.name, tables.membership.name, tables.structure.name)
        except ImportRefused as exc:
            report.status = "refused"
            report.message = str(exc)
            report.finished_at = _now()
            report.events = 0
            self._record_failed_run(report)
        return report

    def _sources(self, infos: Sequence[FileInfo], run: _Run) -> Iterator[tuple[FileInfo, Iterable[Batch]]]:
        if self.options.workers > 1 and infos:
            url = self.engine.url.render_as_string(hide_password=False)
            yield from parallel_sources(infos, self.options.batch_size, self.options.workers,
                                        self.options.chunk_bytes, url, self.tenant, run.report.import_id)
        else:
            lookup = stored_hashes(run.conn)
            for info in infos:
                yield info, prepared_batches(iter_elements(info.path), self.options.batch_size, lookup, run.maker)

    def _record_failed_run(self, report: ImportReport) -> None:
        with writer(self.engine).begin() as conn:
            save_run(conn, report)


class _Run:
    """One import run inside its transaction: its files, each in a savepoint."""

    def __init__(self, conn: Connection, report: ImportReport, options: ImportOptions, maker: EventMaker,
                 progress: ProgressFn | None):
        self.conn = conn
        self.report = report
        self.options = options
        self.maker = maker
        self.progress = progress
        self.complet_ok: dict[str, bool] = {}  # family -> every Complet file of it imported
        self.had_records = families_with_records(conn)  # family -> it had records before this run
        self.events = PendingEvents(conn, report, maker, options.validate_events)
        self.writer = BatchWriter(conn, report, self.events, self.had_records)

    def import_file(self, info: FileInfo, batches: Iterable[Batch]) -> None:
        result = FileResult(str(info.path), info.family, info.kind)
        self.report.files.append(result)
        try:
            self._apply_file(info, result, batches)
        except (StaleView, ChunkUnreadable) as exc:
            # A parser process compared with the database as it was before this
            # run, and this run changed that record since; or a piece of the
            # file did not parse on its own. Either way: read the file here.
            _drain(batches)
            why = "a record changed earlier in this run" if isinstance(exc, StaleView) else str(exc)
            log.info("import %s: %s read again in process (%s)", self.report.import_id, info.path, why)
            self._apply_file(info, result, prepared_batches(
                iter_elements(info.path), self.options.batch_size, stored_hashes(self.conn), self.maker))

    def _apply_file(self, info: FileInfo, result: FileResult, batches: Iterable[Batch]) -> None:
        counts_before = {f: _copy(c) for f, c in self.report.totals.items()}
        rejected_before, warnings_before, events_before = (
            len(self.report.rejected), len(self.report.warnings), self.report.events)
        complet = info.kind == "Complet"
        result.records = 0
        savepoint = self.conn.begin_nested()

        def undo() -> None:
            savepoint.rollback()
            self.events.discard()
            # Nothing of this file counts: restore the report as it was before it.
            self.report.totals = counts_before
            del self.report.rejected[rejected_before:]
            del self.report.warnings[warnings_before:]
            self.report.events = events_before

        try:
            for batch in batches:
                self.maker.tick()
                self.writer.apply_batch(info, batch, complet)
                result.records += len(batch.items)
                self.events.write(full_rows_only=True)
                if self.progress:
                    self.progress(info, len(batch.items))
            self.events.write()
        except AafFileError as exc:
            undo()
            result.status, result.line, result.error = "failed", exc.line, exc.reason
            if complet and info.family:
                self.complet_ok[info.family] = False
            log.error("import %s: %s rolled back: %s", self.report.import_id, info.path, exc)
            return
        except (StaleView, ChunkUnreadable):
            undo()
            raise
        savepoint.commit()
        result.status = "imported"
        if complet and info.family:
            self.complet_ok.setdefault(info.family, True)


def _drain(batches: Iterable) -> None:
    """Consume what is left of a file's batches (a parser process queued them)."""
    try:
        for _ in batches:
            pass
    except (AafFileError, ChunkUnreadable):
        pass


def _copy(c: FamilyCounts) -> FamilyCounts:
    return FamilyCounts(**vars(c))


def _now() -> str:
    return datetime.now(UTC).isoformat()
