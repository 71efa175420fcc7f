"""The transactional outbox and its relay.

A service writes its events with `add_events(conn, events)` inside the
transaction that changes its state; the events become visible to the relay
only if that transaction commits. `OutboxRelay` then publishes them in order
with confirms and deletes them once confirmed. If the broker is down the rows
wait, and the next relay run delivers them: nothing is lost, and a crash
between confirm and delete only causes a redelivery, which consumers ignore
(they are idempotent on event id).
"""

from __future__ import annotations

import fcntl
import logging
import threading
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager

from sqlalchemy import Connection, Engine, func, select, text

from relais.db import bulk_delete, bulk_insert, writer
from relais.ops.metrics import OUTBOX_FAILURES, OUTBOX_PUBLISHED, count_events_on_commit

from . import contracts
from .envelope import Event, dumps, loads
from .publisher import ConfirmedPublisher, OutgoingMessage, PublishError
from .tables import outbox

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x52454C41  # "RELA": one relay at a time per PostgreSQL database


def add_events(conn: Connection, events: Iterable[Event], *, validate: bool = True) -> int:
    """Write events to the outbox in the caller's transaction; returns how many."""
    rows: list[tuple] = []
    for ev in events:
        data = ev.to_dict()
        if validate:
            contracts.validate_event(data)
        rows.append((ev.id, ev.type, dumps(data)))
    bulk_insert(conn, outbox.name, ("event_id", "type", "body"), rows)
    count_events_on_commit(conn, (r[1] for r in rows))
    return len(rows)


def add_serialized(conn: Connection, rows: Sequence[tuple[str, str, bytes]], *, packed: bool = False) -> int:
    """Write events already serialized elsewhere, as (event id, type, JSON body) tuples.

    `packed`: up to PACK events share an outbox row, compressed (`pack`), for
    writers of millions (a row costs far more than its bytes); the relay
    publishes them one message each, in order, as if written one by one.
    """
    if not packed:
        bulk_insert(conn, outbox.name, ("event_id", "type", "body"), list(rows))
        count_events_on_commit(conn, (r[1] for r in rows))
        return len(rows)
    return add_packed(conn, pack(rows))


def add_packed(conn: Connection, rows: Sequence[tuple[str, str, bytes, int]]) -> int:
    """Write rows made by `pack` (possibly in another process); returns how many events they hold."""
    bulk_insert(conn, outbox.name, ("event_id", "type", "body", "events"), rows)
    count_events_on_commit(conn, (t for _ids, types, _body, n in rows
                                  for t in (types.split("\n") if "\n" in types else (types,) * n)))
    return sum(r[3] for r in rows)


PACK = 1000  # events in one packed outbox row


def pack(rows: Sequence[tuple[str, str, bytes]]) -> list[tuple[str, str, bytes, int]]:
    """Outbox rows of up to PACK events each, as (ids, type(s), bodies, count).

    One id, type and body per line (one type if all share it); the bodies are
    zlib-compressed (level 1): events in a row repeat each other's keys and
    values, so a row shrinks about tenfold, and a full evaluation's outbox
    writes a tenth of the bytes. A body that does not open a JSON object is
    compressed (`unpack`).
    """
    return [_pack(rows[i:i + PACK]) for i in range(0, len(rows), PACK)]


def _pack(rows: Sequence[tuple[str, str, bytes]]) -> tuple[str, str, bytes, int]:
    bodies = [r[2] for r in rows]
    if any(b"\n" in b for b in bodies):  # compact JSON (envelope.dumps) never has one
        raise ValueError("an event body holds a line break: it cannot share an outbox row")
    first = rows[0][1]
    types = first if all(r[1] == first for r in rows) else "\n".join(r[1] for r in rows)
    return "\n".join(r[0] for r in rows), types, zlib.compress(b"\n".join(bodies), 1), len(rows)


def unpack(seq: int, ids: str, types: str, body: bytes, events: int) -> list[OutgoingMessage]:
    """The messages of one outbox row, packed or not, compressed or not."""
    body = bytes(body)
    if body[:1] != b"{":
        try:
            body = zlib.decompress(body)
        except zlib.error as exc:
            raise ValueError(f"outbox row {seq} is damaged: its compressed events do not inflate ({exc})") from exc
    if events == 1:
        return [OutgoingMessage(routing_key=types, body=body, message_id=ids, type=types)]
    id_list, bodies = ids.split("\n"), body.split(b"\n")
    type_list = types.split("\n") if "\n" in types else [types] * events
    if not len(id_list) == len(type_list) == len(bodies) == events:
        raise ValueError(f"outbox row {seq} is damaged: {len(id_list)} ids, {len(type_list)} types and "
                         f"{len(bodies)} bodies for {events} events")
    return [OutgoingMessage(routing_key=t, body=b, message_id=i, type=t)
            for i, t, b in zip(id_list, type_list, bodies, strict=True)]


def pending_count(conn: Connection) -> int:
    """Events waiting in the outbox (a packed row counts its events)."""
    return int(conn.execute(select(func.coalesce(func.sum(outbox.c.events), 0))).scalar_one())


def read_events(conn: Connection, type_: str | None = None) -> list[dict]:
    """The events waiting in the outbox, decoded, oldest first (optionally of one type): for tools and tests."""
    out: list[dict] = []
    for seq, ids, types, body, events in conn.exec_driver_sql(
            f"SELECT seq, event_id, type, body, events FROM {outbox.name} ORDER BY seq"):
        out.extend(loads(m.body) for m in unpack(seq, ids, types, body, events) if type_ in (None, m.type))
    return out


class OutboxRelay:
    """Moves outbox rows to RabbitMQ, oldest first, deleting them once confirmed.

    `published` counts the events the broker confirmed since it was made, also when a drain
    ends on an error or is stopped: what a command reports after a failure or a signal.
    """

    def __init__(
        self,
        engine: Engine,
        publisher_factory: Callable[[], ConfirmedPublisher],
        *,
        batch_size: int = 20000,
        max_backoff_s: float = 30.0,
    ):
        self.engine = engine
        self.publisher_factory = publisher_factory
        self.batch_size = batch_size
        self.max_backoff_s = max_backoff_s
        self._pause, self._resume_at = 0.0, 0.0
        self.published = 0
        self._publisher: ConfirmedPublisher | None = None

    def relay_batch(self) -> int:
        """Publish one batch; returns how many events were confirmed and removed."""
        if self.engine.dialect.name == "postgresql":
            # One transaction, under an advisory lock: one relay at a time, in order.
            with self.engine.begin() as conn:
                if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar():
                    return 0
                rows = self._fetch(conn)
                done, error = self._publish(rows) if rows else (rows, None)
                if done:
                    self._delete(conn, done)  # committed, also when the rest failed (raised below)
            if error is not None:
                raise error
            return _events(rows)
        # SQLite has one writer: read, publish, then take the write lock only to delete.
        with _sqlite_relay_lock(self.engine) as mine:
            if not mine:
                return 0
            with self.engine.connect() as conn:
                rows = self._fetch(conn)
            done, error = self._publish(rows) if rows else (rows, None)
            if done:
                with writer(self.engine).begin() as conn:
                    self._delete(conn, done)
            if error is not None:
                raise error
            return _events(rows)

    def _fetch(self, conn: Connection, after: int | None = None) -> list[tuple[int, list[OutgoingMessage]]]:
        """(seq, messages) of the oldest rows, after `seq` if given: about `batch_size` events in all."""
        where = "" if after is None else f"WHERE seq > {int(after)} "
        counts = conn.exec_driver_sql(
            f"SELECT seq, events FROM {outbox.name} {where}ORDER BY seq LIMIT {int(self.batch_size)}").fetchall()
        if not counts:
            return []
        last, total = counts[-1][0], 0
        for seq, events in counts:  # packed rows hold many events: stop at the batch's worth
            total += events
            if total >= self.batch_size:
                last = seq
                break
        first = counts[0][0]
        return [(seq, unpack(seq, ids, types, body, events)) for seq, ids, types, body, events in conn.exec_driver_sql(
            f"SELECT seq, event_id, type, body, events FROM {outbox.name} "
            f"WHERE seq >= {int(first)} AND seq <= {int(last)} ORDER BY seq")]

    def _publish(self, rows: Sequence[tuple[int, list[OutgoingMessage]]]) -> tuple[Sequence, PublishError | None]:
        """Publish the rows' events: (the rows the broker confirmed whole, the failure or None).

        On a failure the rows before the first unconfirmed event are confirmed: the caller
        deletes them and keeps the rest, so what RabbitMQ refused (a full queue, overflow
        reject-publish) waits in the outbox, in order, and is not published twice.
        """
        if self._publisher is None:
            self._publisher = self.publisher_factory()
        done: Sequence = rows
        error: PublishError | None = None
        try:
            self._publisher.publish(m for _seq, messages in rows for m in messages)
        except PublishError as exc:
            OUTBOX_FAILURES.inc()
            self._publisher = None
            done, error = _whole_rows(rows, exc.confirmed), exc
        self._backoff(error)
        self.published += _events(done)
        OUTBOX_PUBLISHED.inc(_events(done))
        return done, error

    def _backoff(self, error: PublishError | None) -> None:
        """After a refusal, `drain` waits 1 s, then twice as long each time, up to `max_backoff_s`:
        a full queue does not drain in a second, and each try sends a batch for nothing."""
        if error is None or not error.refused:
            self._pause = 0.0
            return
        self._pause = min(max(self._pause * 2, 1.0), self.max_backoff_s)
        self._resume_at = time.monotonic() + self._pause

    @staticmethod
    def _delete(conn: Connection, rows: Sequence) -> None:
        if conn.dialect.name == "sqlite":
            # One writer, and one relay per file (the lock): the rows read are the
            # only ones in their seq range, and a new row always gets a higher seq
            # than any row still there. A range delete is exact, and cheaper.
            first, last = int(rows[0][0]), int(rows[-1][0])
            conn.exec_driver_sql(f"DELETE FROM {outbox.name} WHERE seq BETWEEN {first} AND {last}")
            return
        # PostgreSQL: a row with a lower seq may commit later (sequences are not
        # transactional), so a range could hide an unsent one: delete exactly the rows sent.
        bulk_delete(conn, outbox.name, "seq", [r[0] for r in rows])

    def drain(self, progress: Callable[[int], object] | None = None, stop: threading.Event | None = None) -> int:
        """Relay until the outbox is empty, or `stop` is set (checked between batches: the batch in
        flight is confirmed and removed first); returns the number of events published.

        After RabbitMQ refused events (`_backoff`), a drain before the pause is over does nothing.
        """
        stop = stop or threading.Event()
        if time.monotonic() < self._resume_at:
            return 0
        if self.engine.dialect.name != "sqlite":
            total = 0
            while not stop.is_set() and (n := self.relay_batch()):
                total += n
                if progress:
                    progress(n)
            return total
        # SQLite: a helper thread reads the next batch and deletes confirmed ones
        # while this thread publishes. One writer means seq order is commit
        # order, so reading on from the last seq sent misses nothing.
        total = 0
        with _sqlite_relay_lock(self.engine) as mine, \
                ThreadPoolExecutor(max_workers=1, thread_name_prefix="outbox-db") as db:
            if not mine:
                return 0
            upcoming = db.submit(self._read_after, 0)
            deleting = None
            while not stop.is_set() and (rows := upcoming.result()):
                upcoming = db.submit(self._read_after, rows[-1][0])
                done, error = self._publish(rows)
                if deleting is not None:
                    deleting.result()
                if error is not None:
                    if done:
                        self._delete_confirmed(done)
                    raise error
                deleting = db.submit(self._delete_confirmed, rows)
                total += _events(rows)
                if progress:
                    progress(_events(rows))
            if deleting is not None:
                deleting.result()
        return total

    def _read_after(self, seq: int) -> Sequence:
        with self.engine.connect() as conn:
            return self._fetch(conn, after=seq)

    def _delete_confirmed(self, rows: Sequence) -> None:
        with writer(self.engine).begin() as conn:
            self._delete(conn, rows)

    def close(self) -> None:
        if self._publisher is not None:
            self._publisher.close()
            self._publisher = None


def _events(rows: Sequence[tuple[int, list[OutgoingMessage]]]) -> int:
    return sum(len(messages) for _seq, messages in rows)


def _whole_rows(rows: Sequence[tuple[int, list[OutgoingMessage]]], confirmed: int) -> Sequence:
    """The first rows whose events are all among the first `confirmed` (a packed row goes whole or not at all)."""
    total = 0
    for i, (_seq, messages) in enumerate(rows):
        total += len(messages)
        if total > confirmed:
            return rows[:i]
    return rows


@contextmanager
def _sqlite_relay_lock(engine: Engine) -> Iterator[bool]:
    """One relay at a time per SQLite file (services sharing it each run one): True if this one holds it.

    Two relays reading the same rows would publish them twice; PostgreSQL uses
    an advisory lock for this, SQLite a lock file beside the database.
    """
    database = engine.url.database
    if not database or database == ":memory:":
        yield True
        return
    with open(f"{database}.relay-lock", "a+b") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
