"""Provisioning's view of the directory, fed by the directory's events (`prov_person`, `prov_structure`,
`prov_reference`).

The directory reaches provisioning only through its events on the bus
(`directory.person.*`, `directory.membership.changed`, `directory.structure.*`,
`directory.mef.*`, `directory.subject.*`: the AsyncAPI `receive` operations
marked `x-relais-consumer: provisioning`). `apply_directory_events` applies a
batch of them in order and says which accounts to reconcile.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import orjson
from sqlalchemy import Connection, delete, insert, select

from relais.db import bulk_delete

from ..adapters import tables as t
from ..adapters.queries import person_records

_PERSON_EVENTS = ("directory.person.created", "directory.person.updated", "directory.person.deleted",
                  "directory.membership.changed")


def apply_directory_events(conn: Connection, events: Sequence[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Update the projection from directory events, in order.

    Returns the accounts to reconcile, each with the last event that touched
    it. Persons are read once and written once per call, whatever the number
    of events about them.
    """
    touched = [e["payload"]["jointure"] for e in events
               if e["type"] in ("directory.person.updated", "directory.membership.changed")]
    records: dict[str, dict[str, Any] | None] = dict(person_records(conn, touched))  # None: deleted here
    affected: dict[str, dict[str, Any]] = {}
    for event in events:
        kind, payload = event["type"], event["payload"]
        if kind in _PERSON_EVENTS:
            jointure = payload["person"]["jointure"] if kind == "directory.person.created" else payload["jointure"]
            rec = _apply_to_person(kind, payload, records.get(jointure))
            if rec is None and kind != "directory.person.deleted" and jointure not in records:
                continue  # a change to an account the projection never saw
            records[jointure] = rec
            affected[jointure] = event
        else:
            _apply_to_reference(conn, kind, payload)
    changed = {j: r for j, r in records.items() if j in affected}
    m = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    upserts = [(j, r["category"], orjson.dumps(r)) for j, r in changed.items() if r is not None]
    if upserts:
        conn.exec_driver_sql(
            f"INSERT INTO {t.person.name} (jointure, category, data) VALUES ({m}, {m}, {m}) "
            "ON CONFLICT (jointure) DO UPDATE SET category = excluded.category, data = excluded.data", upserts)
    bulk_delete(conn, t.person.name, "jointure", [j for j, r in changed.items() if r is None])
    return affected


def _apply_to_person(kind: str, payload: dict[str, Any], rec: dict[str, Any] | None) -> dict[str, Any] | None:
    """The person's record after one event (None: not in the directory)."""
    if kind == "directory.person.created":
        return {k: v for k, v in payload["person"].items() if k != "attributes"}
    if kind == "directory.person.deleted" or rec is None:
        return None
    if kind == "directory.person.updated":
        for name, change in payload["changes"].items():
            if not name.startswith("attributes."):
                rec[name] = change["after"]
        return rec
    removed = {orjson.dumps(m, option=orjson.OPT_SORT_KEYS) for m in payload["removed"]}
    kept = [m for m in rec["memberships"] if orjson.dumps(m, option=orjson.OPT_SORT_KEYS) not in removed]
    rec["memberships"] = kept + list(payload["added"])
    return rec


def _apply_to_reference(conn: Connection, kind: str, payload: dict[str, Any]) -> None:
    """Structures, MEF and subjects: rare, applied one by one."""
    if kind in ("directory.structure.created", "directory.structure.updated"):
        if kind.endswith("created"):
            rec = payload["structure"]
        else:
            row = conn.execute(select(t.structure.c.data).where(t.structure.c.jointure == payload["jointure"])).first()
            rec = orjson.loads(row.data) if row else {"jointure": payload["jointure"]}
            rec.update({k: c["after"] for k, c in payload["changes"].items() if not k.startswith("attributes.")})
        conn.execute(delete(t.structure).where(t.structure.c.jointure == rec["jointure"]))
        conn.execute(insert(t.structure).values(jointure=rec["jointure"], uai=(rec.get("uai") or None),
                                                data=orjson.dumps(rec)))
    elif kind == "directory.structure.deleted":
        conn.execute(delete(t.structure).where(t.structure.c.jointure == payload["jointure"]))
    for ref in ("mef", "subject"):
        if kind.startswith(f"directory.{ref}."):
            code = payload.get(ref, {}).get("code") or payload.get("code")
            conn.execute(delete(t.reference).where(t.reference.c.kind == ref, t.reference.c.code == code))
            if not kind.endswith("deleted"):
                label = (payload.get(ref) or {}).get("label")
                if label is None and "changes" in payload:
                    label = (payload["changes"].get("label") or {}).get("after")
                conn.execute(insert(t.reference).values(kind=ref, code=code, label=label))
