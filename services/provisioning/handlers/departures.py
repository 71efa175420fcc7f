"""The departure sweep: grants whose grace period is over are revoked (the service runs it hourly).

When an account leaves a structure or the directory, `grants.planning`
defers the revocation of its grants by the rule set's `grace_days`; this
reconciles the accounts whose deferral has come due.
"""

from __future__ import annotations

from sqlalchemy import Connection

from ..adapters.queries import due_departures
from .full_evaluation import CHUNK
from .reconcile import reconcile
from .work import Context


def sweep_departures(conn: Connection, ctx: Context) -> dict[str, int]:
    """Revoke the grants whose departure grace period is over at `ctx.now`."""
    due = due_departures(conn, ctx.now)
    for i in range(0, len(due), CHUNK):
        reconcile(conn, due[i:i + CHUNK], ctx)
    return dict(ctx.counts)
