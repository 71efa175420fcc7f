"""The vault and the contract end for people at a desk (the operator console), behind one facade.

The console reaches the vault only through this object, which the composition root (`app/bootstrap.py`) hands
it as its vault port: the contract-end transfer jobs (`relais vault export` / `import`) with their progress as
their checkpoints record it (items done and failed, bytes, persons' listings), a job's failures (who, what,
why), and the access log (who read whose data, newest first). What is not recorded is not shown: a
completeness check (`relais vault verify`) reads the connectors live and keeps no report.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine, case, func, select

from .adapters.tables import vault_access_log as log_t
from .transfer.report import DONE, FAILED
from .transfer.tables import vault_transfer_item as items_t
from .transfer.tables import vault_transfer_job as jobs_t
from .transfer.tables import vault_transfer_owner as owners_t


class VaultDesk:
    def __init__(self, engine: Engine, tenant: str):
        self.engine, self.tenant = engine, tenant

    def jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest transfer jobs: kind, connector, state, runs, times, error, and their counts so far."""
        j, i, o = jobs_t.c, items_t.c, owners_t.c
        with self.engine.connect() as conn:
            found = conn.execute(select(j.job_id, j.kind, j.connector, j.state, j.runs, j.started_at, j.updated_at,
                                        j.finished_at, j.error).where(j.tenant == self.tenant)
                                 .order_by(j.started_at.desc(), j.job_id).limit(limit)).all()
            ids = [r.job_id for r in found]
            items = {r.job_id: r for r in conn.execute(
                select(i.job_id, func.sum(case((i.state == DONE, 1), else_=0)).label("done"),
                       func.sum(case((i.state == FAILED, 1), else_=0)).label("failed"),
                       func.coalesce(func.sum(case((i.state == DONE, i.size), else_=0)), 0).label("bytes"))
                .where(i.job_id.in_(ids)).group_by(i.job_id))} if ids else {}
            owners = {r.job_id: r for r in conn.execute(
                select(o.job_id, func.sum(case((o.state == DONE, 1), else_=0)).label("done"),
                       func.sum(case((o.state == FAILED, 1), else_=0)).label("failed"))
                .where(o.job_id.in_(ids)).group_by(o.job_id))} if ids else {}
        out = []
        for r in found:
            it, ow = items.get(r.job_id), owners.get(r.job_id)
            out.append({"job": r.job_id, "kind": r.kind, "connector": r.connector, "state": r.state, "runs": r.runs,
                        "started_at": r.started_at, "updated_at": r.updated_at, "finished_at": r.finished_at,
                        "error": r.error, "items_done": int(it.done or 0) if it else 0,
                        "items_failed": int(it.failed or 0) if it else 0, "bytes": int(it.bytes or 0) if it else 0,
                        "listings_done": int(ow.done or 0) if ow else 0,
                        "listings_failed": int(ow.failed or 0) if ow else 0})
        return out

    def failures(self, job: str, limit: int = 100) -> list[dict[str, Any]]:
        """A job's failures, listings first (item None) then items: person, vertical, item, error."""
        i, o = items_t.c, owners_t.c
        with self.engine.connect() as conn:
            mine = conn.execute(select(jobs_t.c.job_id).where(jobs_t.c.job_id == job,
                                                              jobs_t.c.tenant == self.tenant)).first()
            if mine is None:
                return []
            listings = conn.execute(select(o.person, o.vertical, o.error).where(o.job_id == job, o.state == FAILED)
                                    .order_by(o.person, o.vertical).limit(limit)).all()
            items = conn.execute(select(i.person, i.vertical, i.item_id, i.error).where(
                i.job_id == job, i.state == FAILED).order_by(i.person, i.vertical, i.item_id).limit(limit)).all()
        return ([{"person": r.person, "vertical": r.vertical, "item": None, "error": r.error} for r in listings]
                + [{"person": r.person, "vertical": r.vertical, "item": r.item_id, "error": r.error} for r in items])

    def access_log(self, limit: int = 100) -> list[dict[str, Any]]:
        """Who read whose data in the vault, newest first (an erased person's entries have no item)."""
        c = log_t.c
        with self.engine.connect() as conn:
            rows = conn.execute(select(c.at, c.actor, c.action, c.person, c.vertical, c.item_id, c.version)
                                .where(c.tenant == self.tenant).order_by(c.at.desc(), c.id.desc()).limit(limit))
            return [dict(r._mapping) for r in rows]
