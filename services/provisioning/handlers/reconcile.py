"""Reconciling: the grants of some accounts brought in line with the rules, within quotas, with history and events.

`prepare` reads accounts, their grants and refusals and works out what to
change (reads only: worker processes run it for a full evaluation);
`apply` writes it: grants within quotas, revocations, deferrals, history,
refusals (the structure's resource managers told once), outbox events.
Seats freed go to the accounts a quota refused there, oldest refusal first
(`reoffer`). The rules themselves are `grants/`'s.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

import orjson
from sqlalchemy import Connection, bindparam, delete, tuple_, update

from relais.bus import contracts
from relais.bus.outbox import add_packed, unpack
from relais.db import bulk_insert

from ..adapters import tables as t
from ..adapters.licence_pools import LicencePools
from ..adapters.queries import catalogue, held_grants, members, refusals_of, refused_in, ruleset, stamp, uai_map
from ..adapters.write_locks import read_configuration
from ..grants.catalogue import Resource
from ..grants.causes import wanted
from ..grants.data_minimisation import account
from ..grants.load_checks import CodesSeen
from ..grants.managers import managers_of
from ..grants.member import Key
from ..grants.planning import Plan, plan
from ..grants.quotas import next_in_line, quota_in
from ..grants.rules import RuleSet
from .work import GRANT_CREATED, GRANT_REVOKED, QUOTA_EXHAUSTED, Context

_THE_GRANT = (t.grant.c.person == bindparam("j"), t.grant.c.resource == bindparam("r"),
              t.grant.c.structure == bindparam("u"))  # one grant, for statements run over many
Memo = dict[tuple, dict[Key, str]]  # `causes.wanted`'s answers per account view, shared by a unit of work


class Shared(NamedTuple):
    """What several `reconcile` calls in one transaction can share: config, UAIs, licence counts, answers."""

    resources: dict[str, Resource]
    rules: RuleSet
    uai_of: dict[str, str]
    pools: LicencePools
    memo: Memo


def shared(conn: Connection) -> Shared:
    """Load what several `reconcile` calls in one transaction can share."""
    resources = catalogue(conn)
    return Shared(resources, ruleset(conn), uai_map(conn), LicencePools(conn, resources), {})


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
            rules: RuleSet, uai_of: dict[str, str], memo: Memo | None = None,
            span: bool = False, codes: CodesSeen | None = None,
            events: list[tuple[str, str, bytes]] | None = None) -> list[Prepared]:
    """Read these accounts and their grants, and work out what to change, in their order. Reads only.

    `span`: the accounts (sorted) are every account of the projection and of the grants
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
    held = held_grants(conn, jointures, bounds)
    refusals = refusals_of(conn, jointures, bounds)
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
        grants: list[tuple[str, str, str, str, bytes | None]] = []
        if p.grant:
            assert m is not None  # grants are wanted only for an account in the view
            for (res, uai), cause in sorted(p.grant.items()):
                event = ctx.serialized(GRANT_CREATED, {
                    "person": j, "resource": res, "structure": uai, "cause": cause,
                    "account": account(m, resources[res].attributes, uai)})
                if events is None:
                    grants.append((res, uai, cause, event[0], event[2]))
                else:
                    events.append(event)
                    grants.append((res, uai, cause, event[0], None))
        rest = p if p.revoke or p.defer or p.cancel or p.recause else None
        out.append(Prepared(j, grants, rest, tuple(k for k in refused if k in want),
                            tuple(k for k in refused if k not in want)))
    return out


def apply(conn: Connection, prepared: Sequence[Prepared], ctx: Context, pools: LicencePools, rules: RuleSet,
          *, packed: bool = False, events: Sequence[tuple[str, str, bytes, int]] | None = None) -> set[Key]:
    """Write prepared reconciliations: grants within quotas, revocations, history, events.

    Returns the licence pools where seats were freed. `packed`: the events
    share outbox rows (`relais.bus.outbox.add_serialized`). `events`: the grant
    events of `prepared`, packed into outbox rows by the process that prepared
    them (`prepare`'s `events`); written as they are when every grant was
    given and nothing else happened, which spares this process, the one that
    writes, from packing a full evaluation's millions of events.
    """
    grants: list[tuple[str, str, str, str, datetime | str, None]] = []
    history: list[tuple[datetime | str, str, str, str, str, str]] = []
    refused: dict[Key, list[str]] = {}
    cleared: list[tuple[str, str, str]] = []
    revoked: list[dict[str, str]] = []
    changed: dict[str, list[dict[str, object]]] = {"revoke_after": [], "cause": []}  # column -> grants' new values
    freed_pools: set[Key] = set()
    now = stamp(conn, ctx.now)
    outgoing, counts = ctx.outgoing, ctx.counts
    first_event = len(outgoing)
    pools.prefetch(key for _j, planned, p, _r, _s in prepared
                   for key in [*((res, uai) for res, uai, *_ in planned), *(p.revoke if p else ())])
    for j, planned, p, on_record, stale in prepared:
        for res, uai, cause, event_id, body in planned:
            key = (res, uai)
            why_not = pools.take(key)
            if why_not:
                refused.setdefault(key, []).append(j)
                history.append((now, j, res, uai, "refused", why_not))
                counts["refused"] += 1
                continue
            grants.append((j, res, uai, cause, now, None))
            if key in on_record:
                cleared.append((j, res, uai))
            history.append((now, j, res, uai, "granted", cause))
            counts["granted"] += 1
            outgoing.append((event_id, GRANT_CREATED, body))
        if stale:  # a refusal stands only while the rules still call for the grant
            cleared.extend((j, *key) for key in stale)
        if p is None:
            continue
        for key, cause in sorted(p.revoke.items()):
            res, uai = key
            pools.freed(key)
            revoked.append({"j": j, "r": res, "u": uai})
            freed_pools.add(key)
            history.append((now, j, res, uai, "revoked", cause))
            counts["revoked"] += 1
            ctx.event(GRANT_REVOKED, {"person": j, "resource": res, "structure": uai, "cause": cause})
        for key, when in sorted(p.defer.items()):
            res, uai = key
            changed["revoke_after"].append({"j": j, "r": res, "u": uai, "value": when})
            history.append((now, j, res, uai, "deferred", f"departure: revoked after {when.date().isoformat()}"))
            counts["deferred"] += 1
        for key in p.cancel:
            res, uai = key
            changed["revoke_after"].append({"j": j, "r": res, "u": uai, "value": None})
            history.append((now, j, res, uai, "kept", "back in the structure: the pending revocation is cancelled"))
            counts["kept"] += 1
        for key, cause in p.recause.items():
            res, uai = key
            changed["cause"].append({"j": j, "r": res, "u": uai, "value": cause})
    # Each statement once for the whole batch (executemany: pipelined on PostgreSQL), not once per grant.
    if revoked:
        conn.execute(delete(t.grant).where(*_THE_GRANT), revoked)
    for column, values in changed.items():
        if values:
            conn.execute(update(t.grant).where(*_THE_GRANT).values({column: bindparam("value")}), values)
    if cleared:
        conn.execute(delete(t.refusal).where(tuple_(t.refusal.c.person, t.refusal.c.resource,
                                                    t.refusal.c.structure).in_(cleared)))
    bulk_insert(conn, t.grant.name, ("person", "resource", "structure", "cause", "granted_at", "revoke_after"), grants)
    bulk_insert(conn, t.history.name, ("at", "person", "resource", "structure", "action", "cause"), history)
    if refused:
        _note_refusals(conn, refused, pools, rules, ctx)
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
              uai_of: dict[str, str] | None = None, pools: LicencePools | None = None,
              memo: Memo | None = None, span: bool = False) -> None:
    """Bring the grants of these accounts in line with the rules (in the caller's transaction).

    The catalogue and rules stay as read until the transaction ends: a load waits (`write_locks`).
    """
    ordered = sorted(set(jointures))
    if not ordered:
        return
    read_configuration(conn)
    resources = catalogue(conn) if resources is None else resources
    rules = ruleset(conn) if rules is None else rules
    uai_of = uai_map(conn) if uai_of is None else uai_of
    pools = pools or LicencePools(conn, resources)
    _reconcile_in_order(conn, ordered, ctx, resources, rules, uai_of, pools, memo, span)


def _reconcile_in_order(conn: Connection, jointures: list[str], ctx: Context, resources: dict[str, Resource],
                        rules: RuleSet, uai_of: dict[str, str], pools: LicencePools, memo: Memo | None,
                        span: bool = False) -> None:
    """`reconcile` of these accounts (each once), seats taken in their order; then freed seats offered."""
    prepared = prepare(conn, jointures, ctx, resources=resources, rules=rules, uai_of=uai_of, memo=memo, span=span)
    reoffer(conn, apply(conn, prepared, ctx, pools, rules), set(jointures), ctx, resources, rules, uai_of, pools, memo)


def reoffer(conn: Connection, freed: set[Key], done: set[str], ctx: Context, resources: dict[str, Resource],
            rules: RuleSet, uai_of: dict[str, str], pools: LicencePools, memo: Memo | None) -> None:
    """Licences freed in the pools `freed` go to the accounts a quota refused there, oldest refusal first."""
    if not freed:
        return
    waiting = next_in_line(refused_in(conn, sorted(freed)), skip=done)
    if waiting:
        _reconcile_in_order(conn, waiting, ctx, resources, rules, uai_of, pools, memo)


def _note_refusals(conn: Connection, refused: dict[Key, list[str]], pools: LicencePools, rules: RuleSet,
                   ctx: Context) -> None:
    """Record refused grants and tell each structure's resource managers, once per new refusal.

    One read of the refusals on record and one write for all the pools (a chunk of a full
    evaluation refuses in dozens of them): a round trip each per pool made most of its time.
    """
    on_record = refusals_of(conn, sorted({j for people in refused.values() for j in people}))
    rows: list[tuple[str, str, str, datetime, str]] = []
    for key, people in sorted(refused.items()):
        res, uai = key
        new = [j for j in people if key not in on_record.get(j, ())]
        if not new:
            continue
        reason = pools.refusal(key) or "quota exhausted"
        rows.extend((j, res, uai, ctx.now, reason) for j in new)
        r = pools.resources[res]
        ctx.event(QUOTA_EXHAUSTED, {
            "resource": res, "structure": uai, "licence": r.licence, "quota": quota_in(r, uai),
            "held": pools.held(key), "refused": new, "reason": reason,
            "managers": managers_of(rules, pools.directors(rules), uai)})
    bulk_insert(conn, t.refusal.name, ("person", "resource", "structure", "at", "reason"), rows)
