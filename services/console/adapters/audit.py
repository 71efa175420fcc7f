"""The audit log: who did what, when, from where, and how it ended (written for every action)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, insert, select

from relais.db import writer

from .tables import audit


@dataclass(frozen=True)
class Entry:
    actor: str
    action: str
    outcome: str
    address: str | None = None
    target: str | None = None
    uai: str | None = None
    detail: str | None = None


def record(engine: Engine, entry: Entry, at: datetime) -> None:
    with writer(engine).begin() as conn:
        conn.execute(insert(audit).values(at=at, actor=entry.actor[:128], action=entry.action[:64],
                                          outcome=entry.outcome[:16], address=(entry.address or "")[:64] or None,
                                          target=(entry.target or "")[:255] or None, uai=entry.uai,
                                          detail=(entry.detail or "")[:500] or None))


def recent(engine: Engine, limit: int = 100) -> list[dict[str, Any]]:
    """The latest entries, newest first."""
    with engine.connect() as conn:
        rows = conn.execute(select(audit).order_by(audit.c.id.desc()).limit(limit)).mappings().all()
    return [dict(r) for r in rows]
