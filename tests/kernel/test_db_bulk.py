"""relais.db's bulk writes and key lookups store and find the same rows on SQLite and PostgreSQL.

On PostgreSQL `bulk_insert` COPYs many rows and sends a few as one multi-row INSERT: both must
store what executemany stored (times with their zone, bytes, NULLs), and a COPY's error must not
quote the row it stopped at.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from relais.bus.tables import outbox, processed_events
from relais.db import COPY_FROM_ROWS, bulk_insert, key_in, writer

PARIS_WINTER = timezone(timedelta(hours=1))


@pytest.mark.parametrize("n", [3, COPY_FROM_ROWS + 5])
def test_bulk_insert_stores_times_bytes_and_nulls_as_given(engine, n):
    at = datetime(2026, 12, 7, 10, 30, 0, 123456, tzinfo=PARIS_WINTER)
    stamped = at if engine.dialect.name == "postgresql" else at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    with writer(engine).begin() as conn:
        bulk_insert(conn, processed_events.name, ("consumer", "event_id", "processed_at"),
                    [("c", f"e{i:04d}", stamped) for i in range(n)])
        bulk_insert(conn, outbox.name, ("event_id", "type", "body", "events"),
                    [(f"e{i}", "t\\ab", bytes([0, 10, 92, i % 256]) + "é\t\n".encode(), 1) for i in range(n)])
    with engine.connect() as conn:
        times = conn.execute(select(processed_events.c.processed_at)).scalars().all()
        bodies = conn.execute(select(outbox.c.type, outbox.c.body).order_by(outbox.c.seq)).all()
    assert len(times) == n
    assert {t.replace(tzinfo=t.tzinfo or UTC) for t in times} == {at}
    assert bodies == [("t\\ab", bytes([0, 10, 92, i % 256]) + "é\t\n".encode()) for i in range(n)]


def test_bulk_insert_ignoring_conflicts_keeps_the_first_row(engine):
    now = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if engine.dialect.name == "sqlite" else datetime.now(UTC)
    rows = [("c", f"e{i}", now) for i in range(COPY_FROM_ROWS + 5)]
    with writer(engine).begin() as conn:
        bulk_insert(conn, processed_events.name, ("consumer", "event_id", "processed_at"), rows[:7])
        bulk_insert(conn, processed_events.name, ("consumer", "event_id", "processed_at"), rows + rows[:3],
                    ignore_conflicts=True)
        found = conn.execute(select(processed_events.c.event_id).where(
            key_in(conn, processed_events.c.event_id, ["e0", "e6", f"e{COPY_FROM_ROWS + 4}", "absent"]))).scalars()
        assert sorted(found) == ["e0", f"e{COPY_FROM_ROWS + 4}", "e6"]
        assert len(conn.execute(select(processed_events.c.event_id)).all()) == len(rows)


def test_a_copy_stopped_by_a_duplicate_raises_integrity_error_without_the_row(pg_engine):
    rows = [("c", f"Dupont-{i}", datetime.now(UTC)) for i in range(COPY_FROM_ROWS + 5)]
    with pytest.raises(IntegrityError) as caught, writer(pg_engine).begin() as conn:
        bulk_insert(conn, processed_events.name, ("consumer", "event_id", "processed_at"), rows + rows[-1:])
    assert "duplicate key" in str(caught.value)
    assert "Dupont" not in str(caught.value)
    with pg_engine.connect() as conn:  # the transaction rolled back whole; the connection is usable
        assert conn.execute(select(processed_events.c.event_id)).all() == []
