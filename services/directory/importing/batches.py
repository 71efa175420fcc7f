"""Reading files into batches of records prepared for the database: pure CPU, may run in a parser process.

A batch is some records of a file, in order. Each record is compared with
the database by its bytes' hash first (`rules/fingerprints.py`): one stored
byte for byte is not even read (`Unchanged`); one not stored yet leaves with
its rows built (`Created`), its `.created` event packed with the batch's
others; any other is read into its canonical form (`Prepared`). The importer
checks each verdict inside its transaction (`writing.py`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

from relais.bus.envelope import dumps
from relais.bus.outbox import pack

from ..adapters.aaf.reader import AafRecord, RawRecord, RecordError
from ..rules.aaf_values import RecordRejected
from ..rules.fingerprints import attributes_json, kept_attributes
from ..rules.fingerprints import fingerprint as record_fingerprint
from .events import EventMaker
from .kinds import KINDS, Kind, membership_rows
from .stored import StoredHashes


@dataclass(slots=True)
class Prepared:
    """A record made ready for the database: canonical form, fingerprint and rows for adds."""

    operation: str
    family: str
    key: str
    line: int
    attributes: dict[str, list[str]]
    raw_hash: str | None = None
    record: dict | None = None  # the canonical form, once `complete`: set for adds, and modifies when applied
    record_json: bytes = b""  # `dumps(record)`: the row's and the event's
    fingerprint: str = ""
    row: tuple = ()
    memberships: list[tuple] | None = None

    def complete(self, kind: Kind, record: dict) -> None:
        """The canonical `record`, with its fingerprint, row and membership rows from it and `attributes`."""
        self.record = record
        attrs_json = attributes_json(self.attributes)
        self.fingerprint = fingerprint = record_fingerprint(self.family, self.key, attrs_json)
        self.record_json = record_json = dumps(record)
        self.row = kind.row(self.key, record, record_json, attrs_json, fingerprint, self.raw_hash)
        self.memberships = membership_rows(record) if kind.name == "person" else None


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
    # A modification keeps its empty attributes: replacing one by no value removes it (the merge drops it then).
    attrs = kept_attributes(rec.attributes) if rec.operation == "add" else dict(rec.attributes)
    p = Prepared(rec.operation, rec.family, rec.identifier, rec.line, attrs, raw_hash)
    if rec.operation == "add":
        kind = KINDS[rec.family]
        try:
            record = kind.canonical(rec.family, rec.identifier, attrs)
        except RecordRejected as exc:
            return RecordError(rec.line, rec.identifier, str(exc))
        p.complete(kind, record)
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
    for item, (family, key) in zip(items, heads, strict=True):
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
