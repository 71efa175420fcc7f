"""Provisioning's use cases, on a database connection inside the caller's transaction.

- `apply_directory_events`: keeps the directory projection up to date and says
  which accounts to look at again;
- `reconcile`: brings the grants of some accounts in line with the rules,
  enforcing quotas, writing the history and the outbox events;
- `evaluate_all`: `reconcile` over every account, in chunks;
- `load_catalogue` / `load_rules`: check, store, re-evaluate; all or nothing;
- `grant_manually` / `revoke_manually`, `sweep_departures`, `explain`.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Connection, delete, func, insert, select, tuple_, update

from relais.bus.envelope import dumps, new_event_id
from relais.bus.outbox import add_packed, add_serialized, unpack
from relais.db import bulk_delete, bulk_insert

from . import tables as t
from .catalogue import CatalogueError, Resource, parse_catalogue
from .model import Held, Key, Member, Plan, plan, wanted
from .rules import CodesSeen, RuleSet, check_codes, check_references, parse_rules

log = logging.getLogger(__name__)

SOURCE = "relais.provisioning"
GRANT_CREATED = "provisioning.grant.created"
CHUNK = 2000
PARALLEL_FROM = 50_000  # accounts: below this a worker process costs more than it saves
AHEAD = 4  # chunks prepared ahead of the writer, at most


class ProvisioningError(ValueError):
    """A request that cannot be carried out; nothing was changed."""


@dataclass
class Context:
    """What one unit of work needs: the tenant, the time, the events' correlation."""

    tenant: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    causation_id: str | None = None
    validate_events: bool = False  # tests validate every kind; the bulk paths trust the model
    causes: dict[str, tuple[str, str]] = field(default_factory=dict)  # jointure -> (correlation, causation) ids
    outgoing: list[tuple[str, str, bytes]] = field(default_factory=list)  # (id, type, body) for the outbox
    counts: dict[str, int] = field(default_factory=lambda: {"granted": 0, "revoked": 0, "deferred": 0,
                                                            "refused": 0, "kept": 0})

    def serialized(self, type_: str, payload: dict[str, Any]) -> tuple[str, str, bytes]:
        """(id, type, JSON body) of an event; one about a person cites the directory event that touched them.

        The envelope's fields in `Event.to_dict`'s order, built here directly:
        a full evaluation makes one event per grant, millions of them.
        """
        correlation, causation = self.causes.get(payload.get("person"), (None, None))
        event_id = new_event_id()
        return event_id, type_, dumps({
            "id": event_id, "type": type_, "version": 1, "occurred_at": self.occurred_at, "source": SOURCE,
            "tenant": self.tenant, "correlation_id": correlation or self.correlation_id or self._own_correlation(),
            "causation_id": causation or self.causation_id, "payload": payload})

    def event(self, type_: str, payload: dict[str, Any]) -> None:
        """An event to publish with this unit of work."""
        self.outgoing.append(self.serialized(type_, payload))

    def for_worker(self) -> Context:
        """What a worker process needs to make this unit of work's events: no events, no counts."""
        if self.correlation_id is None:
            self._own_correlation()
        return Context(self.tenant, self.now, self.correlation_id, self.causation_id, causes=self.causes,
                       validate_events=self.validate_events)

    @property
    def occurred_at(self) -> str:
        """`now` as the envelope writes it, formatted once per unit of work."""
        if getattr(self, "_occurred_at", None) is None:
            self._occurred_at = self.now.isoformat(timespec="microseconds").replace("+00:00", "Z")
        return self._occurred_at

    def _own_correlation(self) -> str:
        self.correlation_id = new_event_id()
        return self.correlation_id

    def flush(self, conn: Connection, *, packed: bool = False) -> int:
        """Write the events made so far to the outbox (`packed`: many to a row, for the full evaluation)."""
        if self.validate_events:
            from relais.bus import contracts

            for _id, _type, body in self.outgoing:
                contracts.validate_event(orjson.loads(body))
        n = add_serialized(conn, self.outgoing, packed=packed) if self.outgoing else 0
        self.outgoing = []
        return n


# -- the directory projection -------------------------------------------------------

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
    records: dict[str, dict[str, Any] | None] = _load_persons(conn, touched)  # None: deleted here
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


def _rows_of(conn: Connection, table: str, columns: str, keys: Sequence[str],
             span: tuple[str, str] | None = None, key: str = "person") -> Iterable[tuple]:
    """Rows of `table` whose `key` is one of `keys` (sorted), through the driver.

    `span` (first, last): the keys are every key of the table in that range (a
    chunk of a full evaluation), so one range scan replaces the IN-lists.
    """
    m = "?" if conn.dialect.paramstyle == "qmark" else "%s"
    if span is not None:
        yield from conn.exec_driver_sql(f"SELECT {columns} FROM {table} WHERE {key} >= {m} AND {key} <= {m}", span)
        return
    for i in range(0, len(keys), 500):
        chunk = tuple(keys[i:i + 500])
        yield from conn.exec_driver_sql(
            f"SELECT {columns} FROM {table} WHERE {key} IN ({', '.join([m] * len(chunk))})", chunk)


def _load_persons(conn: Connection, jointures: Sequence[str]) -> dict[str, dict[str, Any]]:
    return {j: orjson.loads(data) for j, data in
            _rows_of(conn, t.person.name, "jointure, data", sorted(set(jointures)), key="jointure")}


def uai_map(conn: Connection) -> dict[str, str]:
    return {j: u for j, u in conn.execute(select(t.structure.c.jointure, t.structure.c.uai)) if u}


def members(conn: Connection, jointures: Sequence[str], uai_of: dict[str, str],
            span: tuple[str, str] | None = None) -> dict[str, Member]:
    return {j: Member.from_record(orjson.loads(data), uai_of) for j, data in
            _rows_of(conn, t.person.name, "jointure, data", jointures, span, key="jointure")}


# -- configuration -------------------------------------------------------------------

def catalogue(conn: Connection) -> dict[str, Resource]:
    row = conn.execute(select(t.config.c.data).where(t.config.c.name == "catalogue")).first()
    if row is None:
        return {}
    return {r.id: r for r in parse_catalogue(orjson.loads(row.data))}


def ruleset(conn: Connection) -> RuleSet:
    row = conn.execute(select(t.config.c.data).where(t.config.c.name == "rules")).first()
    return parse_rules(orjson.loads(row.data)) if row else RuleSet(())


def _store_config(conn: Connection, name: str, document: dict[str, Any]) -> None:
    conn.execute(delete(t.config).where(t.config.c.name == name))
    conn.execute(insert(t.config).values(name=name, data=orjson.dumps(document)))


def load_catalogue(conn: Connection, document: dict[str, Any], ctx: Context) -> dict[str, int]:
    """Check and store a catalogue, then re-evaluate every account. All or nothing."""
    resources = parse_catalogue(document)
    by_id = {r.id: r for r in resources}
    problems = []
    rules = ruleset(conn)
    for rule in rules.rules:
        if rule.resource not in by_id:
            problems.append(f"rule {rule.id} needs resource {rule.resource!r}, which the new catalogue drops")
    problems.extend(_quota_problems(conn, by_id))
    if problems:
        raise CatalogueError(problems)
    _store_config(conn, "catalogue", {"resources": [r.to_dict() for r in resources]})
    return evaluate_all(conn, ctx)


def _quota_problems(conn: Connection, resources: dict[str, Resource]) -> list[str]:
    """A quota below the grants already held would silently take licences away: refuse it."""
    problems = []
    held = conn.execute(select(t.grant.c.resource, t.grant.c.structure, func.count())
                        .group_by(t.grant.c.resource, t.grant.c.structure)).all()
    per_structure: dict[str, int] = {}
    for res, uai, n in held:
        r = resources.get(res)
        if r is None:
            continue
        seats = r.seats(uai)
        if seats is not None and n > seats:
            problems.append(f"resource {res}: quota {seats} in {uai} is below the {n} licences held there; "
                            "revoke some first or raise the quota")
        per_structure[res] = per_structure.get(res, 0) + 1
    for res, n in per_structure.items():
        r = resources[res]
        if r.licence == "per-structure" and r.quota is not None and n > r.quota:
            problems.append(f"resource {res}: quota of {r.quota} structures is below the {n} structures holding it")
    return problems


def load_rules(conn: Connection, document: dict[str, Any], ctx: Context) -> dict[str, int]:
    """Check and store a rule set, then re-evaluate every account. All or nothing.

    Classes and groups named by the rules are looked for while the evaluation
    reads every account (a million records need not be read twice); a rule
    naming one that no account is in raises `RuleError` after the
    evaluation, and the caller's transaction, rolled back, leaves nothing of it.
    """
    rules = parse_rules(document)
    structures = {u for (u,) in conn.execute(select(t.structure.c.uai)) if u}
    check_references(rules, catalogue(conn), structures)
    _store_config(conn, "rules", document)
    seen = CodesSeen(rules)
    counts = evaluate_all(conn, ctx, codes=seen)
    check_codes(rules, structures, seen)
    return counts


# -- reconciling grants ---------------------------------------------------------------

class _Pools:
    """Licence counts per (resource, UAI), read once per unit of work and kept up to date."""

    def __init__(self, conn: Connection, resources: dict[str, Resource]):
        self.conn, self.resources = conn, resources
        self._seats: dict[Key, int] = {}
        self._structures: dict[str, set[str]] = {}

    def preload(self) -> None:
        """Read every pool's count in one pass (for a unit of work that will touch most of them)."""
        self._seats.clear()
        self._structures = {}
        for res, uai, n in self.conn.execute(select(t.grant.c.resource, t.grant.c.structure, func.count())
                                             .group_by(t.grant.c.resource, t.grant.c.structure)):
            self._seats[(res, uai)] = n
            self._structures.setdefault(res, set()).add(uai)
        for res in self.resources:
            self._structures.setdefault(res, set())
        self._complete = True

    def held(self, key: Key) -> int:
        if key not in self._seats and getattr(self, "_complete", False):
            return 0
        if key not in self._seats:
            res, uai = key
            self._seats[key] = self.conn.execute(
                select(func.count()).select_from(t.grant).where(t.grant.c.resource == res,
                                                                t.grant.c.structure == uai)).scalar_one()
        return self._seats[key]

    def structures(self, res: str) -> set[str]:
        if res not in self._structures:
            self._structures[res] = {u for (u,) in self.conn.execute(
                select(t.grant.c.structure).where(t.grant.c.resource == res).distinct())}
        return self._structures[res]

    def refusal(self, key: Key) -> str | None:
        """Why one more licence of `key` cannot be given, or None."""
        res, uai = key
        r = self.resources[res]
        if r.licence == "unlimited":
            return None
        seats = r.seats(uai)
        if seats is not None and self.held(key) >= seats:
            return f"quota exhausted: {seats} licence(s) of {res} in {uai} are all held"
        if r.licence == "per-structure" and r.quota is not None and uai not in self.structures(res) \
                and len(self.structures(res)) >= r.quota:
            return f"quota exhausted: {res} is licensed to {r.quota} structure(s), all taken"
        return None

    def directors(self, rules: RuleSet) -> dict[str, set[str]]:
        """UAI -> accounts holding a manager function there (directory functions such as DIR)."""
        if not hasattr(self, "_directors"):
            uai_of = uai_map(self.conn)
            self._directors: dict[str, set[str]] = {}
            for j, data in self.conn.execute(select(t.person.c.jointure, t.person.c.data)
                                             .where(t.person.c.category == "PersEducNat")):
                for m in orjson.loads(data).get("memberships") or ():
                    if m["kind"] == "function" and m["code"] in rules.manager_functions:
                        uai = uai_of.get(m.get("structure"), m.get("structure"))
                        self._directors.setdefault(uai, set()).add(j)
        return self._directors

    def take(self, key: Key) -> str | None:
        """Take one licence of `key`; or, taking nothing, say why it cannot be given.

        One call per grant of a full evaluation (millions): unlimited licences skip the checks.
        """
        licence = self.resources[key[0]].licence
        if licence != "unlimited":
            why_not = self.refusal(key)
            if why_not:
                return why_not
        seats = self._seats.get(key)
        self._seats[key] = (self.held(key) if seats is None else seats) + 1
        if licence == "per-structure":  # only those count structures
            self.structures(key[0]).add(key[1])
        return None

    def _per_structure(self, res: str) -> bool:
        r = self.resources.get(res)  # a grant may outlive its resource's catalogue entry
        return r is not None and r.licence == "per-structure"

    def freed(self, key: Key) -> None:
        self._seats[key] = self.held(key) - 1
        if self._seats[key] == 0 and self._per_structure(key[0]):
            self.structures(key[0]).discard(key[1])


def unit_of_work(conn: Connection) -> dict[str, Any]:
    """What several `reconcile` calls in one transaction can share: config, UAIs, licence counts, answers."""
    resources = catalogue(conn)
    return {"resources": resources, "rules": ruleset(conn), "uai_of": uai_map(conn),
            "pools": _Pools(conn, resources), "memo": {}}


def _stamp(conn: Connection, now: datetime) -> datetime | str:
    """`now` as the driver takes it on the bulk paths: SQLite gets SQLAlchemy's own text form."""
    if conn.dialect.name == "sqlite":
        return now.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return now


class Prepared(NamedTuple):
    """One account's reconciliation as computed from what is stored, before anything is written.

    Plain tuples and strings: a worker process sends millions of these, and
    unpickling richer objects cost the writing process more than writing them.
    """

    jointure: str
    grants: list[tuple[str, str, str, str, bytes | None]]  # (resource, UAI, cause, event id, event body), sorted
    rest: Plan | None  # revocations, deferrals, cancellations, new causes; None: nothing but grants
    refused: tuple[Key, ...]  # refusals on record that the rules still call for
    stale: tuple[Key, ...]  # refusals on record that the rules no longer call for


def prepare(conn: Connection, jointures: Sequence[str], ctx: Context, *, resources: dict[str, Resource],
            rules: RuleSet, uai_of: dict[str, str], memo: dict[tuple, dict[Key, str]] | None = None,
            span: bool = False, codes: CodesSeen | None = None,
            events: list[tuple[str, str, bytes]] | None = None) -> list[Prepared]:
    """Read these accounts (sorted) and their grants, and work out what to change. Reads only.

    `span`: the accounts are every account of the projection and of the grants
    between the first and the last of them (a chunk of `evaluate_all`), read by
    range instead of by key. Accounts with nothing to change are left out.
    `codes`: notes the class and group codes of the accounts read.
    `events`: the grant events go there, in order, and not in the `Prepared`
    grants (their body is None): a worker sends them packed (`apply`'s `events`).
    """
    memo = {} if memo is None else memo
    bounds = (jointures[0], jointures[-1]) if span else None
    found = members(conn, jointures, uai_of, bounds)
    if codes is not None:
        codes.note(found.values())
    held = _held(conn, jointures, bounds)
    refusals = _refusals_of(conn, jointures, bounds)
    out = []
    for j in jointures:
        m = found.get(j)
        want = wanted(m, rules, resources, memo) if m is not None else {}
        mine = held.get(j, {})
        refused = refusals.get(j, set())
        if not want and not mine and not refused:
            continue
        p = plan(mine, want, m, ctx.now, rules.grace_days)
        if not p and not refused:
            continue
        grants = []
        for (res, uai), cause in sorted(p.grant.items()):
            event = ctx.serialized(GRANT_CREATED, {
                "person": j, "resource": res, "structure": uai, "cause": cause,
                "account": m.account(resources[res].attributes, uai)})
            if events is None:
                grants.append((res, uai, cause, event[0], event[2]))
            else:
                events.append(event)
                grants.append((res, uai, cause, event[0], None))
        rest = p if p.revoke or p.defer or p.cancel or p.recause else None
        out.append(Prepared(j, grants, rest, tuple(k for k in refused if k in want),
                            tuple(k for k in refused if k not in want)))
    return out


def apply(conn: Connection, prepared: Sequence[Prepared], ctx: Context, pools: _Pools, rules: RuleSet,
          *, packed: bool = False, events: Sequence[tuple[str, str, bytes, int]] | None = None) -> set[Key]:
    """Write prepared reconciliations: grants within quotas, revocations, history, events.

    Returns the licence pools where seats were freed. `packed`: the events
    share outbox rows (`relais.bus.outbox.add_serialized`). `events`: the grant
    events of `prepared`, packed into outbox rows by the process that prepared
    them (`prepare`'s `events`); written as they are when every grant was
    given and nothing else happened, which spares this process, the one that
    writes, from packing a full evaluation's millions of events.
    """
    grants, history, refused, cleared = [], [], {}, []
    freed_pools: set[Key] = set()
    stamp = _stamp(conn, ctx.now)
    outgoing, counts = ctx.outgoing, ctx.counts
    first_event = len(outgoing)
    for j, planned, p, on_record, stale in prepared:
        for res, uai, cause, event_id, body in planned:
            key = (res, uai)
            why_not = pools.take(key)
            if why_not:
                refused.setdefault(key, []).append(j)
                history.append((stamp, j, res, uai, "refused", why_not))
                counts["refused"] += 1
                continue
            grants.append((j, res, uai, cause, stamp, None))
            if key in on_record:
                cleared.append((j, res, uai))
            history.append((stamp, j, res, uai, "granted", cause))
            counts["granted"] += 1
            outgoing.append((event_id, GRANT_CREATED, body))
        if stale:  # a refusal stands only while the rules still call for the grant
            cleared.extend((j, *key) for key in stale)
        if p is None:
            continue
        for key, cause in sorted(p.revoke.items()):
            res, uai = key
            conn.execute(delete(t.grant).where(t.grant.c.person == j, t.grant.c.resource == res,
                                               t.grant.c.structure == uai))
            pools.freed(key)
            freed_pools.add(key)
            history.append((stamp, j, res, uai, "revoked", cause))
            counts["revoked"] += 1
            ctx.event("provisioning.grant.revoked", {"person": j, "resource": res, "structure": uai, "cause": cause})
        for key, when in sorted(p.defer.items()):
            res, uai = key
            conn.execute(update(t.grant).where(t.grant.c.person == j, t.grant.c.resource == res,
                                               t.grant.c.structure == uai).values(revoke_after=when))
            history.append((stamp, j, res, uai, "deferred", f"departure: revoked after {when.date().isoformat()}"))
            counts["deferred"] += 1
        for key in p.cancel:
            res, uai = key
            conn.execute(update(t.grant).where(t.grant.c.person == j, t.grant.c.resource == res,
                                               t.grant.c.structure == uai).values(revoke_after=None))
            history.append((stamp, j, res, uai, "kept", "back in the structure: the pending revocation is cancelled"))
            counts["kept"] += 1
        for key, cause in p.recause.items():
            res, uai = key
            conn.execute(update(t.grant).where(t.grant.c.person == j, t.grant.c.resource == res,
                                               t.grant.c.structure == uai).values(cause=cause))
    if cleared:
        conn.execute(delete(t.refusal).where(tuple_(t.refusal.c.person, t.refusal.c.resource,
                                                    t.refusal.c.structure).in_(cleared)))
    bulk_insert(conn, t.grant.name, ("person", "resource", "structure", "cause", "granted_at", "revoke_after"), grants)
    bulk_insert(conn, t.history.name, ("at", "person", "resource", "structure", "action", "cause"), history)
    for key, people in sorted(refused.items()):
        _note_refusals(conn, key, people, pools, rules, ctx)
    if events is not None:
        _take_packed(conn, ctx, events, first_event)
    ctx.flush(conn, packed=packed)
    return freed_pools


def _take_packed(conn: Connection, ctx: Context, events: Sequence[tuple[str, str, bytes, int]], first: int) -> None:
    """Write the packed grant events as they are if the outgoing events since `first` are exactly them.

    Otherwise (a grant refused, a revocation between grants) put their bodies
    back into the outgoing events, in their place.
    """
    outgoing = ctx.outgoing
    if len(outgoing) - first == sum(row[3] for row in events) and not any(
            typ != GRANT_CREATED for _id, typ, _body in outgoing[first:]):
        if ctx.validate_events:
            from relais.bus import contracts

            for row in events:
                for m in unpack(0, *row):
                    contracts.validate_event(orjson.loads(m.body))
        del outgoing[first:]
        add_packed(conn, events)
        return
    bodies = {m.message_id: m.body for row in events for m in unpack(0, *row)}
    for i in range(first, len(outgoing)):
        event_id, typ, body = outgoing[i]
        if body is None:
            outgoing[i] = (event_id, typ, bodies[event_id])


def reconcile(conn: Connection, jointures: Iterable[str], ctx: Context, *,
              resources: dict[str, Resource] | None = None, rules: RuleSet | None = None,
              uai_of: dict[str, str] | None = None, pools: _Pools | None = None,
              memo: dict[tuple, dict[Key, str]] | None = None, span: bool = False) -> None:
    """Bring the grants of these accounts in line with the rules (in the caller's transaction)."""
    jointures = sorted(set(jointures))
    if not jointures:
        return
    resources = catalogue(conn) if resources is None else resources
    rules = ruleset(conn) if rules is None else rules
    uai_of = uai_map(conn) if uai_of is None else uai_of
    pools = pools or _Pools(conn, resources)
    prepared = prepare(conn, jointures, ctx, resources=resources, rules=rules, uai_of=uai_of, memo=memo, span=span)
    _reoffer(conn, apply(conn, prepared, ctx, pools, rules), set(jointures), ctx, resources, rules, uai_of, pools, memo)


def _reoffer(conn: Connection, freed: set[Key], done: set[str], ctx: Context, resources: dict[str, Resource],
             rules: RuleSet, uai_of: dict[str, str], pools: _Pools, memo: dict | None) -> None:
    """Licences freed may go to accounts a quota refused before, oldest refusal first."""
    waiting = sorted({j for key in freed for j in _refused_in(conn, key)} - done)
    if waiting:
        reconcile(conn, waiting, ctx, resources=resources, rules=rules, uai_of=uai_of, pools=pools, memo=memo)


def _held(conn: Connection, jointures: Sequence[str], span: tuple[str, str] | None = None) -> dict[str, dict[Key, Held]]:
    out: dict[str, dict[Key, Held]] = {}
    for j, res, uai, cause, after in _rows_of(conn, t.grant.name, "person, resource, structure, cause, revoke_after",
                                              jointures, span):
        if isinstance(after, str):  # SQLite through the driver: text
            after = datetime.fromisoformat(after)
        out.setdefault(j, {})[(res, uai)] = Held(cause, _aware(after))
    return out


def _aware(ts: datetime | None) -> datetime | None:
    return ts.replace(tzinfo=UTC) if ts is not None and ts.tzinfo is None else ts


def _refusals_of(conn: Connection, jointures: Sequence[str], span: tuple[str, str] | None = None) -> dict[str, set[Key]]:
    out: dict[str, set[Key]] = {}
    for j, r, u in _rows_of(conn, t.refusal.name, "person, resource, structure", jointures, span):
        out.setdefault(j, set()).add((r, u))
    return out


def _refused_in(conn: Connection, key: Key) -> list[str]:
    return [j for (j,) in conn.execute(select(t.refusal.c.person).where(
        t.refusal.c.resource == key[0], t.refusal.c.structure == key[1]).order_by(t.refusal.c.at))]


def _note_refusals(conn: Connection, key: Key, people: list[str], pools: _Pools, rules: RuleSet,
                   ctx: Context) -> None:
    """Record refused grants and tell the structure's resource managers, once per new refusal."""
    res, uai = key
    already = set(_refused_in(conn, key))
    new = [j for j in people if j not in already]
    if not new:
        return
    reason = pools.refusal(key) or "quota exhausted"
    bulk_insert(conn, t.refusal.name, ("person", "resource", "structure", "at", "reason"),
                [(j, res, uai, ctx.now, reason) for j in new])
    managers = sorted(set(rules.managers.get(uai, ())) | pools.directors(rules).get(uai, set()))
    r = pools.resources[res]
    ctx.event("provisioning.quota.exhausted", {
        "resource": res, "structure": uai, "licence": r.licence,
        "quota": r.seats(uai) if r.licence == "per-user" else r.quota,
        "held": pools.held(key), "refused": new, "reason": reason, "managers": managers})


def evaluate_all(conn: Connection, ctx: Context, *, workers: int | None = None,
                 codes: CodesSeen | None = None) -> dict[str, int]:
    """Reconcile every account of the projection, and every account holding a grant.

    Chunks of accounts are prepared (read, rules applied, events built) by
    worker processes while this one writes the chunks before them, in order, so
    quotas are taken in the same order either way. The workers read the last
    committed state, which is the state of every account not yet written: a
    chunk's accounts are written only by this process, once. So the caller's
    transaction must not have changed the projection, grants or refusals
    before calling this; the catalogue and rules it just stored are handed to
    the workers. `workers`: 0 prepares here (default: 2 to 4 for a large
    database on disk, else 0). `codes`: filled with the class and group codes
    of every account read.
    """
    t0 = time.perf_counter()
    shared = unit_of_work(conn)
    everyone = sorted({j for (j,) in conn.execute(select(t.person.c.jointure))}
                      | {j for (j,) in conn.execute(select(t.grant.c.person).distinct())})
    chunks = [everyone[i:i + CHUNK] for i in range(0, len(everyone), CHUNK)]
    url = conn.engine.url
    if workers is None:
        on_disk = url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:")
        # Preparing costs more than writing: two workers keep the writer busy even on two cores.
        workers = min(4, max(2, (os.cpu_count() or 1) - 1)) if on_disk and len(everyone) >= PARALLEL_FROM else 0
    resources, rules, uai_of, pools, memo = (shared[k] for k in ("resources", "rules", "uai_of", "pools", "memo"))
    pools.preload()
    # Grants arrive in person order, which suits their primary key but not the index by licence pool: on
    # SQLite, building that index once at the end costs a fraction of keeping it up to date row by row.
    # (Not on PostgreSQL: DROP INDEX would lock the table against the worker's reads until commit.)
    pool_index = next(i for i in t.grant.indexes if i.name == "ix_prov_grant_pool")
    rebuild = conn.dialect.name == "sqlite" and len(everyone) >= PARALLEL_FROM
    if rebuild:
        pool_index.drop(conn)
    if workers == 0:
        prepared = (prepare(conn, c, ctx, resources=resources, rules=rules, uai_of=uai_of, memo=memo, span=True,
                            codes=codes) for c in chunks)
        for chunk, done in zip(chunks, prepared):
            _reoffer(conn, apply(conn, done, ctx, pools, rules, packed=True), set(chunk), ctx, resources, rules,
                     uai_of, pools, memo)
    else:
        _evaluate_in_worker(conn, ctx, chunks, workers, resources, rules, uai_of, pools, memo, codes)
    log.info("evaluation: %d accounts written (%d workers) in %.1f s", len(everyone), workers, time.perf_counter() - t0)
    if rebuild:
        pool_index.create(conn)
        log.info("evaluation: pool index rebuilt in %.1f s", time.perf_counter() - t0)
    return dict(ctx.counts)


def _evaluate_in_worker(conn: Connection, ctx: Context, chunks: list[list[str]], workers: int,
                        resources: dict[str, Resource], rules: RuleSet, uai_of: dict[str, str], pools: _Pools,
                        memo: dict, codes: CodesSeen | None) -> None:
    import multiprocessing

    from ._evaluation import prepare_chunk, start_worker

    mp = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited connections
    url = conn.engine.url.render_as_string(hide_password=False)
    with mp.Pool(workers, initializer=start_worker,
                 initargs=(url, ctx.for_worker(), resources, rules, uai_of, codes is not None)) as pool:
        pending: list = []
        for chunk in chunks[:AHEAD]:
            pending.append(pool.apply_async(prepare_chunk, (chunk,)))
        for n, chunk in enumerate(chunks):
            done, events, seen = pending.pop(0).get()
            if codes is not None:
                codes.merge(seen)
            if n + AHEAD < len(chunks):
                pending.append(pool.apply_async(prepare_chunk, (chunks[n + AHEAD],)))
            _reoffer(conn, apply(conn, done, ctx, pools, rules, packed=True, events=events), set(chunk), ctx,
                     resources, rules, uai_of, pools, memo)


def sweep_departures(conn: Connection, ctx: Context) -> dict[str, int]:
    """Revoke the grants whose departure grace period is over."""
    due = sorted({j for (j,) in conn.execute(select(t.grant.c.person).where(
        t.grant.c.revoke_after.is_not(None), t.grant.c.revoke_after <= ctx.now))})
    for i in range(0, len(due), CHUNK):
        reconcile(conn, due[i:i + CHUNK], ctx)
    return dict(ctx.counts)


# -- manual grants ----------------------------------------------------------------------

def grant_manually(conn: Connection, by: str, person: str, resource: str, uai: str, ctx: Context) -> None:
    """A resource manager of `uai` gives `resource` to `person` there."""
    uai = uai.upper()
    resources, rules, uai_of = catalogue(conn), ruleset(conn), uai_map(conn)
    found = members(conn, [by, person], uai_of)
    if resource not in resources:
        raise ProvisioningError(f"resource {resource!r} is not in the catalogue")
    if by not in found or not rules.is_manager(found[by], uai):
        raise ProvisioningError(f"{by} is not a resource manager of {uai} (RESP-AFFECT: listed under "
                                f"'managers' in the rules, or holding a function {sorted(rules.manager_functions)})")
    if person not in found or uai not in found[person].structures:
        raise ProvisioningError(f"{person} is not an account of structure {uai}")
    if conn.execute(select(t.grant.c.cause).where(t.grant.c.person == person, t.grant.c.resource == resource,
                                                  t.grant.c.structure == uai)).first():
        raise ProvisioningError(f"{person} already holds {resource} in {uai}")
    pools = _Pools(conn, resources)
    why_not = pools.refusal((resource, uai))
    if why_not:
        raise ProvisioningError(why_not)
    cause = f"manual:{by}"
    conn.execute(insert(t.grant).values(person=person, resource=resource, structure=uai, cause=cause,
                                        granted_at=ctx.now))
    conn.execute(insert(t.history).values(at=ctx.now, person=person, resource=resource, structure=uai,
                                          action="granted", cause=cause))
    ctx.counts["granted"] += 1
    ctx.event("provisioning.grant.created", {"person": person, "resource": resource, "structure": uai,
                                             "cause": cause,
                                             "account": found[person].account(resources[resource].attributes, uai)})
    ctx.flush(conn)


def revoke_manually(conn: Connection, by: str, person: str, resource: str, uai: str, ctx: Context) -> None:
    uai = uai.upper()
    rules = ruleset(conn)
    found = members(conn, [by], uai_map(conn))
    if by not in found or not rules.is_manager(found[by], uai):
        raise ProvisioningError(f"{by} is not a resource manager of {uai}")
    row = conn.execute(select(t.grant.c.cause).where(t.grant.c.person == person, t.grant.c.resource == resource,
                                                     t.grant.c.structure == uai)).first()
    if row is None:
        raise ProvisioningError(f"{person} does not hold {resource} in {uai}")
    if not row.cause.startswith("manual:"):
        raise ProvisioningError(f"{person} holds {resource} by {row.cause}: change the rules, not the grant")
    conn.execute(delete(t.grant).where(t.grant.c.person == person, t.grant.c.resource == resource,
                                       t.grant.c.structure == uai))
    cause = f"manual:{by}"
    conn.execute(insert(t.history).values(at=ctx.now, person=person, resource=resource, structure=uai,
                                          action="revoked", cause=cause))
    ctx.counts["revoked"] += 1
    ctx.event("provisioning.grant.revoked", {"person": person, "resource": resource, "structure": uai,
                                             "cause": cause})
    ctx.flush(conn)


# -- reading ----------------------------------------------------------------------------

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
    return _aware(ts).isoformat() if ts is not None else None
