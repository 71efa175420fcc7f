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
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy import Connection, Engine, func, select, text

from relais.db import bulk_delete, bulk_insert, writer

from .envelope import Event, dumps
from .publisher import ConfirmedPublisher, OutgoingMessage, PublishError
from .tables import outbox

log = logging.getLogger(__name__)

ADVISORY_LOCK_KEY = 0x52454C41  # "RELA": one relay at a time per PostgreSQL database


def add_events(conn: Connection, events: Iterable[Event], *, validate: bool = True) -> int:
    """Write events to the outbox in the caller's transaction; returns how many."""
    if validate:
        from . import contracts
    rows: list[tuple] = []
    for ev in events:
        data = ev.to_dict()
        if validate:
            contracts.validate_event(data)
        rows.append((ev.id, ev.type, dumps(data)))
    bulk_insert(conn, outbox.name, ("event_id", "type", "body"), rows)
    return len(rows)


def add_serialized(conn: Connection, rows: Sequence[tuple[str, str, bytes]]) -> int:
    """Write events already serialized elsewhere, as (event id, type, JSON body) tuples."""
    bulk_insert(conn, outbox.name, ("event_id", "type", "body"), list(rows))
    return len(rows)


def pending_count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(outbox)).scalar_one()


class OutboxRelay:
    """Moves outbox rows to RabbitMQ, oldest first, deleting them once confirmed."""

    def __init__(
        self,
        engine: Engine,
        publisher_factory: Callable[[], ConfirmedPublisher],
        *,
        batch_size: int = 20000,
    ):
        self.engine = engine
        self.publisher_factory = publisher_factory
        self.batch_size = batch_size
        self._publisher: ConfirmedPublisher | None = None

    def relay_batch(self) -> int:
        """Publish one batch; returns how many events were confirmed and removed."""
        if self.engine.dialect.name == "postgresql":
            # One transaction, under an advisory lock: one relay at a time, in order.
            with self.engine.begin() as conn:
                if not conn.execute(text("SELECT pg_try_advisory_xact_lock(:k)"), {"k": ADVISORY_LOCK_KEY}).scalar():
                    return 0
                rows = self._fetch(conn)
                if rows:
                    self._publish(rows)
                    self._delete(conn, rows)
                return len(rows)
        # SQLite has one writer: read, publish, then take the write lock only to delete.
        with _sqlite_relay_lock(self.engine) as mine:
            if not mine:
                return 0
            with self.engine.connect() as conn:
                rows = self._fetch(conn)
            if rows:
                self._publish(rows)
                with writer(self.engine).begin() as conn:
                    self._delete(conn, rows)
            return len(rows)

    def _fetch(self, conn: Connection, after: int | None = None) -> Sequence[tuple[int, str, str, bytes]]:
        """(seq, event_id, type, body) of the oldest rows, after `seq` if given."""
        where = "" if after is None else f"WHERE seq > {int(after)} "
        return conn.exec_driver_sql(
            f"SELECT seq, event_id, type, body FROM {outbox.name} {where}ORDER BY seq LIMIT {int(self.batch_size)}"
        ).fetchall()

    def _publish(self, rows: Sequence) -> None:
        if self._publisher is None:
            self._publisher = self.publisher_factory()
        try:
            self._publisher.publish(
                OutgoingMessage(routing_key=type_, body=bytes(body), message_id=event_id, type=type_)
                for _seq, event_id, type_, body in rows
            )
        except PublishError:
            self._publisher = None
            raise

    @staticmethod
    def _delete(conn: Connection, rows: Sequence) -> None:
        if conn.dialect.name == "sqlite":
            # One writer, and one relay per file (the lock): the rows read are the
            # only ones in their seq range, and a new row always gets a higher seq
            # than any row still there. A range delete is exact, and cheaper.
            conn.exec_driver_sql(f"DELETE FROM {outbox.name} WHERE seq BETWEEN {int(rows[0][0])} AND {int(rows[-1][0])}")
            return
        # PostgreSQL: a row with a lower seq may commit later (sequences are not
        # transactional), so a range could hide an unsent one: delete exactly the rows sent.
        bulk_delete(conn, outbox.name, "seq", [r[0] for r in rows])

    def drain(self, progress: Callable[[int], None] | None = None) -> int:
        """Relay until the outbox is empty; returns the number of events published."""
        if self.engine.dialect.name != "sqlite":
            total = 0
            while n := self.relay_batch():
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
            while rows := upcoming.result():
                upcoming = db.submit(self._read_after, rows[-1][0])
                self._publish(rows)
                if deleting is not None:
                    deleting.result()
                deleting = db.submit(self._delete_confirmed, rows)
                total += len(rows)
                if progress:
                    progress(len(rows))
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
