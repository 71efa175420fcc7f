"""Importing AAF exports: the directory's main use case.

One run imports a set of files in one database transaction, each file in a
savepoint: a file that turns out malformed or truncated is rolled back alone
and reported with the line where it broke, the others go in. Records are
compared with what is stored by fingerprint, so an unchanged record costs a
lookup and writes nothing. Every change writes its event to the outbox in the
same transaction. After the files, the Complet deletion sweep removes persons
absent from a Complet export of their structure, unless that would remove
more than `max_delete_share` of a structure's accounts: then the whole run is
rolled back and the report says why (`force` overrides).
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, Engine, and_, delete, func, insert, literal, select, true

from relais.bus.envelope import Event, SharedEnvelope, dumps, loads, new_event_id, utc_now_iso
from relais.bus.outbox import PACK, add_packed, add_serialized, pack, unpack
from relais.db import bulk_insert, bulk_update, writer

from . import model, tables
from .aaf import (
    FAMILIES,
    PERSON_FAMILIES,
    AafFileError,
    AafRecord,
    ChunkUnreadable,
    FileInfo,
    RawRecord,
    RecordError,
    file_info,
    iter_elements,
)
from .report import FileResult, ImportReport, Warning

log = logging.getLogger(__name__)

SOURCE = "relais.directory"
MAX_LISTED_WARNINGS = 1000


class ImportRefused(Exception):
    """The run would change too much at once; nothing was changed."""


class _StaleView(Exception):
    """A parser process saw a record as it was before a change made earlier in this run."""


@dataclass(frozen=True)
class ImportOptions:
    force: bool = False
    max_delete_share: float = 0.10
    batch_size: int = 500  # per parser batch: bounds the memory in flight between processes
    validate_events: bool = False  # tests validate every event; the bulk path trusts the model
    workers: int = 1  # > 1 parses files in worker processes while this one writes
    chunk_bytes: int = 1 << 20  # with workers: files are parsed in pieces of about this size


# -- the four kinds of record --------------------------------------------------------

@dataclass(frozen=True)
class Kind:
    """How one AAF family maps to a table and to events."""

    name: str  # person | structure | mef | subject
    table: Any
    key: Any  # key column
    event_prefix: str

    def canonical(self, family: str, key: str, attrs: dict[str, list[str]]) -> dict:
        if self.name == "person":
            return model.person_from_attributes(key, family, attrs)
        if self.name == "structure":
            return model.structure_from_attributes(key, attrs)
        if self.name == "mef":
            return model.mef_from_attributes(key, attrs)
        return model.subject_from_attributes(key, attrs)

    @property
    def columns(self) -> tuple[str, ...]:
        """Column order of `row()`: the key first."""
        if self.name == "person":
            return ("jointure", "category", "structure", "last_key", "first_key", "email_key", "ine",
                    "struct_rattach_id", "raw_hash", "record_hash", "data")
        if self.name == "structure":
            return ("jointure", "uai", "raw_hash", "record_hash", "data")
        return ("code", "raw_hash", "record_hash", "data")

    def row(self, key: str, record: dict, record_json: bytes, attrs_json: bytes, fingerprint: str,
            raw_hash: str | None) -> tuple:
        # {"record": ..., "attributes": ...} from the parts serialized once for hash, row and event
        data = b'{"record":' + record_json + b',"attributes":' + attrs_json + b"}"
        if self.name == "person":
            return (key, record["category"], record["structure"], model.search_key(record["last_name"]),
                    model.search_key(record["first_name"]), model.search_key(record["email"]) or None,
                    record["ine"], record["struct_rattach_id"], raw_hash, fingerprint, data)
        if self.name == "structure":
            return (key, record["uai"], raw_hash, fingerprint, data)
        return (key, raw_hash, fingerprint, data)

    def identity(self, record: dict) -> dict:
        """The payload fields naming the record in updated/deleted events."""
        if self.name == "person":
            return {"jointure": record["jointure"], "category": record["category"]}
        if self.name == "structure":
            return {"jointure": record["jointure"], "uai": record["uai"]}
        return {"code": record["code"]}

    def scalar_fields(self, record: dict) -> Iterable[str]:
        if self.name == "person":
            return model.PERSON_SCALARS
        return [f for f in record if f not in ("jointure", "code")]


KINDS: dict[str, Kind] = {
    "EtabEducNat": Kind("structure", tables.structure, tables.structure.c.jointure, "directory.structure"),
    "MefEducNat": Kind("mef", tables.mef, tables.mef.c.code, "directory.mef"),
    "MatiereEducNat": Kind("subject", tables.subject, tables.subject.c.code, "directory.subject"),
    **{f: Kind("person", tables.person, tables.person.c.jointure, "directory.person") for f in PERSON_FAMILIES},
}


class EventMaker:
    """Builds this run's events: one correlation id, one timestamp per batch."""

    def __init__(self, tenant: str, correlation_id: str):
        self.tenant = tenant
        self.correlation_id = correlation_id
        self.tick()

    def tick(self) -> None:
        self.now = utc_now_iso()
        self._envelopes: dict[str, SharedEnvelope] = {}

    def created(self, kind: Kind, record_json: bytes) -> tuple[str, str, bytes]:
        """(event id, type, JSON body) of a record's `.created` event, spliced around its JSON (`dumps`)."""
        type_ = f"{kind.event_prefix}.created"
        envelope = self._envelopes.get(type_)
        if envelope is None:
            envelope = self._envelopes[type_] = SharedEnvelope(type_, SOURCE, self.tenant, self.correlation_id,
                                                               self.now)
        event_id = new_event_id()
        return event_id, type_, envelope.body(event_id, b'{"' + kind.name.encode() + b'":' + record_json + b"}")

    def serialized(self, type_: str, payload: dict) -> tuple[str, str, bytes]:
        """(event id, type, JSON body) of a new event, ready for the outbox."""
        ev = Event(type=type_, payload=payload, source=SOURCE, tenant=self.tenant,
                   correlation_id=self.correlation_id, occurred_at=self.now)
        return ev.id, ev.type, dumps(ev.to_dict())


# -- parsing side: pure CPU, may run in a worker process --------------------------------

StoredHashes = Callable[[str, list[str]], dict[str, tuple[str | None, str]]]
"""(family, keys) -> {key: (raw_hash, record_hash)} of the records stored."""


def stored_hashes(conn: Connection) -> StoredHashes:
    def lookup(family: str, keys: list[str]) -> dict[str, tuple[str | None, str]]:
        kind = KINDS[family]
        t = kind.table
        out: dict[str, tuple[str | None, str]] = {}
        for i in range(0, len(keys), 1000):
            for k, raw, rec in conn.execute(
                select(kind.key, t.c.raw_hash, t.c.record_hash).where(kind.key.in_(keys[i:i + 1000]))
            ):
                out[k] = (raw, rec)
        return out

    return lookup


@dataclass(slots=True)
class Prepared:
    """A record made ready for the database: canonical form, fingerprint and rows for adds."""

    operation: str
    family: str
    key: str
    line: int
    attributes: dict[str, list[str]]
    raw_hash: str | None = None
    record: dict | None = None
    record_json: bytes | None = None  # `dumps(record)`: the row's and the event's
    fingerprint: str | None = None
    row: tuple | None = None
    memberships: list[tuple] | None = None

    def complete(self, kind: Kind) -> None:
        """Fingerprint, row and membership rows from `record` and `attributes`."""
        attrs_json = model.attributes_json(self.attributes)
        self.fingerprint = model.fingerprint(self.family, self.key, attrs_json)
        self.record_json = dumps(self.record)
        self.row = kind.row(self.key, self.record, self.record_json, attrs_json, self.fingerprint, self.raw_hash)
        self.memberships = _membership_rows(self.record) if kind.name == "person" else None


class Created(NamedTuple):
    """A record not stored yet, as the parser saw the database: its rows; its event is in `Batch.created_events`.

    Only what the importer writes crosses from a parser process: no canonical
    form, no attributes, no event body of its own.
    """

    family: str
    key: str
    row: tuple
    memberships: list[tuple] | None


class Unchanged(NamedTuple):
    """An add whose bytes equal the stored record's, as the parser saw the database."""

    family: str
    key: str
    line: int
    stored_hash: str  # the record_hash seen: the importer checks it still holds


class Batch(NamedTuple):
    """Some records of a file, prepared, in order."""

    items: list[Prepared | Created | Unchanged | RecordError]
    created_events: list[tuple[str, str, bytes, int]]  # the `.created` events of its `Created`, outbox rows (`pack`)


def prepare(rec: AafRecord, raw_hash: str | None = None) -> Prepared | RecordError:
    attrs = model.kept_attributes(rec.attributes)
    p = Prepared(rec.operation, rec.family, rec.identifier, rec.line, attrs, raw_hash)
    if rec.operation == "add":
        kind = KINDS[rec.family]
        try:
            p.record = kind.canonical(rec.family, rec.identifier, attrs)
        except model.RecordRejected as exc:
            return RecordError(rec.line, rec.identifier, str(exc))
        p.complete(kind)
    return p


def prepare_batch(items: list[RawRecord | RecordError], lookup: StoredHashes, events: EventMaker) -> Batch:
    """Read the records of a batch, skipping the reading of those stored byte for byte.

    A record not stored yet leaves as `Created`, its rows built, and its
    `.created` event joins the batch's others, packed and compressed as the
    outbox stores them: the importer writes them as they are.
    """
    events.tick()
    heads: list[tuple[str | None, str | None]] = []
    keys: dict[str, list[str]] = {}
    for item in items:
        head = item.family_and_id() if isinstance(item, RawRecord) and item.operation == "add" else (None, None)
        heads.append(head)
        if head[0] in KINDS and head[1]:
            keys.setdefault(head[0], []).append(head[1])
    stored = {family: lookup(family, ks) for family, ks in keys.items()}
    out: list[Prepared | Created | Unchanged | RecordError] = []
    created: list[tuple[str, str, bytes]] = []
    for item, (family, key) in zip(items, heads):
        if isinstance(item, RecordError):
            out.append(item)
            continue
        raw_hash = None
        if family in stored and key:
            raw_hash = item.raw_hash()
            known = stored[family].get(key)
            if known is not None and known[0] == raw_hash:
                out.append(Unchanged(family, key, item.line, known[1]))
                continue
        rec = item.read()
        p = prepare(rec, raw_hash) if isinstance(rec, AafRecord) else rec
        if isinstance(p, Prepared) and p.record is not None and family in stored and key not in stored[family]:
            created.append(events.created(KINDS[p.family], p.record_json))
            out.append(Created(p.family, p.key, p.row, p.memberships))
        else:
            out.append(p)
    return Batch(out, pack(created) if created else [])


def prepared_batches(elements: Iterable[RawRecord | RecordError], batch_size: int, lookup: StoredHashes,
                     events: EventMaker) -> Iterator[Batch]:
    """The records of `iter_elements` (or of a piece of a file), prepared, in batches."""
    batch: list[RawRecord | RecordError] = []
    for item in elements:
        batch.append(item)
        if len(batch) >= batch_size:
            yield prepare_batch(batch, lookup, events)
            batch = []
    if batch:
        yield prepare_batch(batch, lookup, events)


# -- the import run ------------------------------------------------------------------

ProgressFn = Callable[[FileInfo, int], None]


def expand_paths(paths: Iterable[Path]) -> list[FileInfo]:
    """Files named, and *.xml files in folders named, ordered so references resolve early."""
    files: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            files.extend(sorted(q for q in p.iterdir() if q.suffix.lower() == ".xml" and q.is_file()))
        elif p.exists():
            files.append(p)
        else:
            raise FileNotFoundError(f"no such file or folder: {p}")
    infos = [file_info(f) for f in files]
    order = {f: i for i, f in enumerate(FAMILIES)}
    return sorted(infos, key=lambda i: (order.get(i.family or "", len(order)), i.path.name))


class DirectoryImporter:
    def __init__(self, engine: Engine, tenant: str, options: ImportOptions | None = None):
        self.engine = engine
        self.tenant = tenant
        self.options = options or ImportOptions()

    def run(self, paths: Iterable[Path], progress: ProgressFn | None = None) -> ImportReport:
        infos = expand_paths(paths)
        import_id = str(uuid.uuid4())
        report = ImportReport(import_id=import_id, started_at=_now())
        for fam in FAMILIES:
            report.counts(fam)
        run = _Run(self, report, progress)
        try:
            with writer(self.engine).begin() as conn:
                run.conn = conn
                run.note_existing()
                for info, batches in self._sources(infos, run):
                    run.import_file(info, batches)
                run.sweep_absent(infos)
                run.note_unresolved()
                report.status = "completed"
                report.finished_at = _now()
                run.emit_completed()
                conn.execute(delete(tables.seen).where(tables.seen.c.import_id == import_id))
                _save_run(conn, report)
        except ImportRefused as exc:
            report.status = "refused"
            report.message = str(exc)
            report.finished_at = _now()
            report.events = 0
            self._record_failed_run(report)
        return report

    def _sources(self, infos: Sequence[FileInfo], run: _Run):
        if self.options.workers > 1 and infos:
            from .parallel import parallel_sources

            url = self.engine.url.render_as_string(hide_password=False)
            yield from parallel_sources(infos, self.options.batch_size, self.options.workers,
                                        self.options.chunk_bytes, url, self.tenant, run.report.import_id)
        else:
            lookup = stored_hashes(run.conn)
            for info in infos:
                yield info, prepared_batches(iter_elements(info.path), self.options.batch_size, lookup, run.events)

    def _record_failed_run(self, report: ImportReport) -> None:
        with writer(self.engine).begin() as conn:
            _save_run(conn, report)


class _Run:
    """The state of one import run inside its transaction."""

    def __init__(self, importer: DirectoryImporter, report: ImportReport, progress: ProgressFn | None):
        self.importer = importer
        self.options = importer.options
        self.report = report
        self.progress = progress
        self.conn: Connection = None  # type: ignore[assignment]
        self.complet_ok: dict[str, bool] = {}  # family -> every Complet file of it imported
        self.had_records: dict[str, bool] = {}  # family -> it had records before this run
        self.events = EventMaker(importer.tenant, report.import_id)
        self.events_in_file: list[tuple[str, str, bytes]] = []

    def note_existing(self) -> None:
        """Which families had records before the run: only those can have absentees."""
        for family, kind in KINDS.items():
            q = select(kind.key).limit(1)
            if kind.name == "person":
                q = q.where(kind.table.c.category == family)
            self.had_records[family] = self.conn.execute(q).first() is not None

    # -- events ---------------------------------------------------------------
    def event(self, type_: str, payload: dict) -> None:
        self.events_in_file.append(self.events.serialized(type_, payload))

    def flush_events(self, *, full_rows_only: bool = False) -> None:
        """Write the events made so far to the outbox, packed a thousand to a row (`outbox.PACK`).

        An import writes an event per changed record, a million for an academy:
        rows of a thousand cost the import and the relay a fraction of a row
        each. `full_rows_only` keeps the last, partial row's events for later
        (between batches of one file); the file's end writes them.
        """
        events = self.events_in_file
        n = len(events) - len(events) % PACK if full_rows_only else len(events)
        if n:
            if self.options.validate_events:
                from relais.bus import contracts

                for _id, _type, body in events[:n]:
                    contracts.validate_event(loads(body))
            self.report.events += add_serialized(self.conn, events[:n], packed=True)
            self.events_in_file = events[n:]

    def add_created(self, rows: list[tuple[str, str, bytes, int]]) -> None:
        """Write a batch's `.created` events, packed by the parser."""
        if self.options.validate_events:
            from relais.bus import contracts

            for row in rows:
                for message in unpack(0, *row):
                    contracts.validate_event(loads(message.body))
        self.report.events += add_packed(self.conn, rows)

    # -- files ----------------------------------------------------------------
    def import_file(self, info: FileInfo, batches: Iterable[Batch]) -> None:
        result = FileResult(str(info.path), info.family, info.kind)
        self.report.files.append(result)
        try:
            self._apply_file(info, result, batches)
        except (_StaleView, ChunkUnreadable) as exc:
            # A parser process compared with the database as it was before this
            # run, and this run changed that record since; or a piece of the
            # file did not parse on its own. Either way: read the file here.
            _drain(batches)
            why = "a record changed earlier in this run" if isinstance(exc, _StaleView) else str(exc)
            log.info("import %s: %s read again in process (%s)", self.report.import_id, info.path, why)
            self._apply_file(info, result, prepared_batches(
                iter_elements(info.path), self.options.batch_size, stored_hashes(self.conn), self.events))

    def _apply_file(self, info: FileInfo, result: FileResult, batches: Iterable[Batch]) -> None:
        counts_before = {f: _copy(c) for f, c in self.report.totals.items()}
        rejected_before, warnings_before, events_before = (
            len(self.report.rejected), len(self.report.warnings), self.report.events)
        complet = info.kind == "Complet"
        result.records = 0
        savepoint = self.conn.begin_nested()

        def undo() -> None:
            savepoint.rollback()
            self.events_in_file = []
            # Nothing of this file counts: restore the report as it was before it.
            self.report.totals = counts_before
            del self.report.rejected[rejected_before:]
            del self.report.warnings[warnings_before:]
            self.report.events = events_before

        try:
            for batch in batches:
                self.events.tick()
                self.apply_batch(info, batch, complet)
                result.records += len(batch.items)
                self.flush_events(full_rows_only=True)
                if self.progress:
                    self.progress(info, len(batch.items))
            self.flush_events()
        except AafFileError as exc:
            undo()
            result.status, result.line, result.error = "failed", exc.line, exc.reason
            if complet and info.family:
                self.complet_ok[info.family] = False
            log.error("import %s: %s rolled back: %s", self.report.import_id, info.path, exc)
            return
        except (_StaleView, ChunkUnreadable):
            undo()
            raise
        savepoint.commit()
        result.status = "imported"
        if complet and info.family:
            self.complet_ok.setdefault(info.family, True)

    def apply_batch(self, info: FileInfo, batch: Batch, complet: bool) -> None:
        if batch.created_events:
            # After the events of earlier batches and before this batch's others (the
            # same record created, then changed later in the batch): the order applied.
            self.flush_events()
            self.add_created(batch.created_events)
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
            start = 0
            seen_keys: set[str] = set()
            for i, item in enumerate(items):
                if item.key in seen_keys:
                    self.apply_family(fname, family, items[start:i], complet)
                    start, seen_keys = i, set()
                seen_keys.add(item.key)
            self.apply_family(fname, family, items[start:], complet)

    def _mark_seen(self, family: str, keys: list[str]) -> None:
        if keys and self.had_records.get(family):
            import_id = self.report.import_id
            bulk_insert(self.conn, tables.seen.name, ("import_id", "family", "key"),
                        [(import_id, family, k) for k in keys], ignore_conflicts=True)

    def apply_family(self, fname: str, family: str, items: list[Prepared | Created | Unchanged], complet: bool) -> None:
        if not items:
            return
        kind = KINDS[family]
        counts = self.report.counts(family)
        conn = self.conn
        keys = [p.key for p in items]
        stored_hash = dict(conn.execute(select(kind.key, kind.table.c.record_hash).where(kind.key.in_(keys))).all())
        if complet:
            self._mark_seen(family, [p.key for p in items if not isinstance(p, Prepared) or p.operation == "add"])

        need_old = [p.key for p in items if p.key in stored_hash and isinstance(p, Prepared)
                    and (p.operation != "add" or stored_hash[p.key] != p.fingerprint)]
        old = self._load(kind, need_old)

        inserts, updates, deletes = [], [], []
        member_rows, member_replaced = [], []
        for p in items:
            if isinstance(p, Unchanged):
                if stored_hash.get(p.key) != p.stored_hash:
                    raise _StaleView(p.key)
                counts.unchanged += 1
                continue
            if isinstance(p, Created):
                if p.key in stored_hash:  # stored earlier in this run: needs the full record
                    raise _StaleView(p.key)
                inserts.append(p.row)
                counts.added += 1
                if p.memberships:
                    member_rows.extend(p.memberships)
                continue
            before = old.get(p.key)
            if p.operation == "delete":
                if p.key not in stored_hash:
                    counts.unchanged += 1
                    self.warn(fname, p.line, p.key, "deleteRequest for a record that is not in the directory")
                    continue
                deletes.append(p.key)
                counts.deleted += 1
                self.event(f"{kind.event_prefix}.deleted",
                           {**kind.identity(before["record"]), "reason": "delta", kind.name: before["record"]})
                continue
            if p.operation == "modify":
                if before is None:
                    self.report.reject(family, fname, p.line, p.key, "modifyRequest for a record that is not in the directory")
                    continue
                attrs = {**before["attributes"], **p.attributes}
                attrs = {k: v for k, v in attrs.items() if v}
                try:
                    p.record = kind.canonical(family, p.key, attrs)
                except model.RecordRejected as exc:
                    self.report.reject(family, fname, p.line, p.key, str(exc))
                    continue
                p.attributes = attrs
                p.complete(kind)
                if p.fingerprint == stored_hash[p.key]:
                    counts.unchanged += 1
                    continue
            elif stored_hash.get(p.key) == p.fingerprint:
                counts.unchanged += 1
                continue
            if before is None:
                inserts.append(p.row)
                counts.added += 1
                self.event(f"{kind.event_prefix}.created", {kind.name: p.record})
                if p.memberships:
                    member_rows.extend(p.memberships)
                continue
            updates.append(p.row[1:] + p.row[:1])
            counts.updated += 1
            changes = model.diff_fields(before["record"], p.record, kind.scalar_fields(p.record))
            changes.update(model.diff_attributes(before["attributes"], p.attributes))
            if changes:
                self.event(f"{kind.event_prefix}.updated", {**kind.identity(p.record), "changes": changes})
            if kind.name == "person":
                added, removed = model.diff_memberships(before["record"]["memberships"], p.record["memberships"])
                if added or removed:
                    self.event("directory.membership.changed",
                               {**kind.identity(p.record), "added": added, "removed": removed})
                    member_replaced.append(p.key)
                    member_rows.extend(p.memberships)

        name = kind.table.name
        if deletes:
            self._delete(kind, deletes)
        if member_replaced:
            conn.execute(delete(tables.membership).where(tables.membership.c.person.in_(member_replaced)))
        bulk_insert(conn, name, kind.columns, inserts)
        bulk_update(conn, name, kind.columns[0], kind.columns[1:], updates)
        bulk_insert(conn, tables.membership.name, MEMBERSHIP_COLUMNS, member_rows)

    def _load(self, kind: Kind, keys: list[str]) -> dict[str, dict]:
        out: dict[str, dict] = {}
        for i in range(0, len(keys), 1000):
            chunk = keys[i:i + 1000]
            for k, data in self.conn.execute(select(kind.key, kind.table.c.data).where(kind.key.in_(chunk))):
                out[k] = orjson.loads(data)
        return out

    def _delete(self, kind: Kind, keys: list[str]) -> None:
        for i in range(0, len(keys), 1000):
            chunk = keys[i:i + 1000]
            self.conn.execute(delete(kind.table).where(kind.key.in_(chunk)))
            if kind.name == "person":
                self.conn.execute(delete(tables.membership).where(tables.membership.c.person.in_(chunk)))

    def warn(self, file: str | None, line: int | None, record_id: str | None, message: str) -> None:
        if len(self.report.warnings) < MAX_LISTED_WARNINGS:
            self.report.warnings.append(Warning(file, line, record_id, message))

    # -- after the files --------------------------------------------------------
    def sweep_absent(self, infos: Sequence[FileInfo]) -> None:
        """Delete records absent from this run's Complet exports, within the share guard."""
        conn, import_id = self.conn, self.report.import_id
        plans: list[tuple[str, Kind, list[str]]] = []
        refusals: list[str] = []
        for family, ok in self.complet_ok.items():
            if family not in KINDS:
                continue
            if not self.had_records.get(family):
                continue  # nothing was there before this run: nothing can be absent
            if not ok:
                self.warn(None, None, None,
                          f"no deletions for {family}: a Complet file of it failed, absent records may be in it")
                continue
            kind = KINDS[family]
            t = kind.table
            seen_q = select(tables.seen.c.key).where(tables.seen.c.import_id == import_id,
                                                     tables.seen.c.family == family)
            if kind.name == "person":
                family_filter = t.c.category == family
                group_col = func.coalesce(t.c.structure, "")
                # Only the structures this Complet covers: a person of another school is not absent.
                covered = select(group_col).where(t.c.jointure.in_(seen_q), family_filter).distinct()
                scope = and_(family_filter, group_col.in_(covered))
            else:
                group_col, scope = literal(""), true()
            absent = conn.execute(
                select(kind.key, group_col).where(scope, kind.key.not_in(seen_q))
            ).all()
            if not absent:
                continue
            per_group: dict[str, int] = {}
            for _k, g in absent:
                per_group[g] = per_group.get(g, 0) + 1
            totals = dict(conn.execute(select(group_col, func.count()).where(scope).group_by(group_col)).all())
            for group, n in per_group.items():
                share = n / max(totals.get(group, n), 1)
                if share > self.options.max_delete_share:
                    where = f"structure {group}" if group else "all records"
                    refusals.append(
                        f"{family}: {n} of {totals.get(group, n)} ({share:.0%}) in {where} are absent from the Complet"
                    )
            plans.append((family, kind, [k for k, _g in absent]))
        if refusals and not self.options.force:
            raise ImportRefused(
                f"refused: the Complet export would delete more than {self.options.max_delete_share:.0%} "
                f"of a structure's accounts ({'; '.join(refusals[:10])}"
                f"{'; …' if len(refusals) > 10 else ''}). A truncated export must not wipe a school: "
                "check the files, or run again with --force if the departures are real. Nothing was changed."
            )
        for family, kind, keys in plans:
            for i in range(0, len(keys), 1000):
                chunk = keys[i:i + 1000]
                old = self._load(kind, chunk)
                for k in chunk:
                    rec = old[k]["record"]
                    self.event(f"{kind.event_prefix}.deleted",
                               {**kind.identity(rec), "reason": "absent-from-complet", kind.name: rec})
                self._delete(kind, chunk)
                self.report.counts(family).deleted += len(chunk)
                self.flush_events()

    def note_unresolved(self) -> None:
        """Count references to records not (yet) in the directory; they stay and resolve on arrival."""
        conn = self.conn
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
        self.report.unresolved = {
            "relatives": len(missing_relatives),
            "structures": len(missing_structures),
        }
        for pupil, relative in missing_relatives[:100]:
            self.warn(None, None, pupil, f"relative {relative} is not in the directory yet; the link is kept")
        for structure, n in missing_structures[:100]:
            self.warn(None, None, structure, f"structure {structure} ({n} persons) is not in the directory yet")

    def emit_completed(self) -> None:
        r = self.report
        self.event("directory.import.completed", {
            "import_id": r.import_id,
            "files": [
                {k: v for k, v in {"path": f.path, "family": f.family, "kind": f.kind, "status": f.status,
                                   "line": f.line, "error": f.error}.items() if v is not None or k in ("family", "kind")}
                for f in r.files
            ],
            "totals": {fam: vars(c) for fam, c in r.totals.items()},
            "rejected": len(r.rejected),
            "warnings": len(r.warnings),
            "events": r.events + 1,
        })
        self.flush_events()


MEMBERSHIP_COLUMNS = ("person", "kind", "structure", "code", "subject", "other", "legal_guardian")


def _save_run(conn: Connection, report: ImportReport) -> None:
    conn.execute(insert(tables.import_run).values(
        id=report.import_id,
        started_at=datetime.fromisoformat(report.started_at),
        finished_at=datetime.fromisoformat(report.finished_at),
        status=report.status,
        report=orjson.dumps(report.to_dict()).decode(),
    ))


def _membership_rows(record: dict) -> list[tuple]:
    j = record["jointure"]
    return [
        (j, m["kind"], m.get("structure"), m.get("code"), m.get("subject"), m.get("person"), m.get("legal_guardian"))
        for m in record["memberships"]
    ]


def _drain(batches: Iterable) -> None:
    """Consume what is left of a file's batches (a parser process queued them)."""
    try:
        for _ in batches:
            pass
    except (AafFileError, ChunkUnreadable):
        pass


def _copy(c):
    return type(c)(**vars(c))


def _now() -> str:
    return datetime.now(UTC).isoformat()
