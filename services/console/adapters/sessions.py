"""The console's open sessions: opened at sign-in, looked up on each request, closed by sign-out or by the
SSO's single logout (which names the CAS ticket the session was opened with)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Engine, delete, insert, select

from relais.db import writer

from .tables import session


def open_session(engine: Engine, sid: str, actor: str, ticket: str, at: datetime, max_age: timedelta) -> None:
    """Record a new session; sessions older than `max_age` (expired anyway) go at the same time."""
    with writer(engine).begin() as conn:
        conn.execute(delete(session).where(session.c.opened_at < at - max_age))
        conn.execute(insert(session).values(sid=sid, actor=actor[:128], ticket=ticket[:255], opened_at=at))


def is_open(engine: Engine, sid: str) -> bool:
    with engine.connect() as conn:
        return conn.execute(select(session.c.sid).where(session.c.sid == sid)).first() is not None


def close(engine: Engine, sid: str) -> None:
    with writer(engine).begin() as conn:
        conn.execute(delete(session).where(session.c.sid == sid))


def close_ticket(engine: Engine, ticket: str) -> list[str]:
    """Close the sessions opened with `ticket`; returns their actors."""
    with writer(engine).begin() as conn:
        actors = [a for (a,) in conn.execute(select(session.c.actor).where(session.c.ticket == ticket))]
        conn.execute(delete(session).where(session.c.ticket == ticket))
    return actors
