"""Why a person has what they have: grants with their causes, refusals, history, and what the rules say now."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Connection, select

from ..adapters import tables as t
from ..adapters.queries import aware, catalogue, members, ruleset, uai_map
from ..grants.causes import wanted


def explain(conn: Connection, jointure: str) -> dict[str, Any]:
    """A person's grants with their causes, refusals and history: why they have what they have."""
    rules, resources = ruleset(conn), catalogue(conn)
    m = members(conn, [jointure], uai_map(conn)).get(jointure)
    grants = [
        {"resource": r, "title": resources[r].title if r in resources else None, "structure": u, "cause": c,
         "granted_at": _iso(g), "revoke_after": _iso(a)}
        for r, u, c, g, a in conn.execute(
            select(t.grant.c.resource, t.grant.c.structure, t.grant.c.cause, t.grant.c.granted_at,
                   t.grant.c.revoke_after).where(t.grant.c.person == jointure).order_by(t.grant.c.resource))
    ]
    refusals = [{"resource": r, "structure": u, "reason": why, "at": _iso(at)} for r, u, why, at in conn.execute(
        select(t.refusal.c.resource, t.refusal.c.structure, t.refusal.c.reason, t.refusal.c.at)
        .where(t.refusal.c.person == jointure))]
    history = [{"at": _iso(at), "resource": r, "structure": u, "action": a, "cause": c}
               for at, r, u, a, c in conn.execute(
                   select(t.history.c.at, t.history.c.resource, t.history.c.structure, t.history.c.action,
                          t.history.c.cause).where(t.history.c.person == jointure).order_by(t.history.c.id))]
    return {
        "person": jointure,
        "in_directory": m is not None,
        "profiles": sorted(m.profiles) if m else [],
        "structures": sorted(m.structures) if m else [],
        "classes": sorted(f"{s}/{c}" for s, c in m.classes) if m else [],
        "grants": grants, "refusals": refusals, "history": history,
        "rules_now": {f"{r}@{u}": c for (r, u), c in sorted(wanted(m, rules, resources).items())} if m else {},
    }


def _iso(ts: datetime | None) -> str | None:
    at = aware(ts)
    return at.isoformat() if at is not None else None
