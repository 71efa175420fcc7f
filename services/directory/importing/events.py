"""The import's events: how they are made, and how they go to the outbox, packed.

One run has one correlation id (its import id) and one timestamp per batch.
An import writes an event per changed record, a million for an academy, so
events are written packed up to a thousand to an outbox row (`outbox.PACK`):
a few thousand rows instead of a million, for the import to write and the
relay to read and delete. The `.created` events of a parser's batch come
packed by the parser (`batches.Batch.created_events`) and are written as they
are, after the events before them and before the batch's others, so a
record's events keep the order its changes were applied. The relay still
publishes one message per event, in order.
"""

from __future__ import annotations

from sqlalchemy import Connection

from relais.bus import contracts
from relais.bus.envelope import Event, SharedEnvelope, dumps, loads, new_event_id, utc_now_iso
from relais.bus.outbox import PACK, add_packed, add_serialized, unpack

from .kinds import Kind
from .report import ImportReport

SOURCE = "relais.directory"


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


class PendingEvents:
    """The events made since the last write to the outbox, in the run's transaction; counted in the report."""

    def __init__(self, conn: Connection, report: ImportReport, maker: EventMaker, validate: bool):
        self.conn = conn
        self.report = report
        self.maker = maker
        self.validate = validate  # check every event against its contract (tests)
        self.pending: list[tuple[str, str, bytes]] = []

    def add(self, type_: str, payload: dict) -> None:
        self.pending.append(self.maker.serialized(type_, payload))

    def discard(self) -> None:
        """Forget the events not written yet (their file is rolled back)."""
        self.pending = []

    def write(self, *, full_rows_only: bool = False) -> None:
        """Write the events made so far to the outbox, packed a thousand to a row (`outbox.PACK`).

        `full_rows_only` keeps the last, partial row's events for later
        (between batches of one file); the file's end writes them.
        """
        events = self.pending
        n = len(events) - len(events) % PACK if full_rows_only else len(events)
        if n:
            if self.validate:
                for _id, _type, body in events[:n]:
                    contracts.validate_event(loads(body))
            self.report.events += add_serialized(self.conn, events[:n], packed=True)
            self.pending = events[n:]

    def write_created(self, rows: list[tuple[str, str, bytes, int]]) -> None:
        """Write a batch's `.created` events, packed by the parser."""
        if self.validate:
            for row in rows:
                for message in unpack(0, *row):
                    contracts.validate_event(loads(message.body))
        self.report.events += add_packed(self.conn, rows)


def completed_payload(report: ImportReport) -> dict:
    """The payload of `directory.import.completed`: the run's files, totals and counts (itself included)."""
    return {
        "import_id": report.import_id,
        "files": [
            {k: v for k, v in {"path": f.path, "family": f.family, "kind": f.kind, "status": f.status,
                               "line": f.line, "error": f.error}.items() if v is not None or k in ("family", "kind")}
            for f in report.files
        ],
        "totals": {fam: vars(c) for fam, c in report.totals.items()},
        "rejected": len(report.rejected),
        "warnings": len(report.warnings),
        "events": report.events + 1,
    }
