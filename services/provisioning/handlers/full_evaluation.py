"""The full evaluation: every account reconciled, in chunks, prepared by worker processes while this one writes.

Chunks of accounts are prepared (read, rules applied, events built) by
worker processes (`evaluation_worker.py`) while this process writes the
chunks before them, in order, so quotas are taken in the same order either
way. The workers read the last committed state, which is the state of every
account not yet written: a chunk's accounts are written only by this
process, once.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from multiprocessing.pool import AsyncResult

from sqlalchemy import Connection

from relais.db import analyze

from ..adapters import tables as t
from ..adapters.licence_pools import LicencePools
from ..adapters.queries import everyone
from ..adapters.write_locks import change_configuration
from ..grants.catalogue import Resource
from ..grants.load_checks import CodesSeen
from ..grants.rules import RuleSet
from .evaluation_worker import Chunk, prepare_chunk, start_worker
from .reconcile import Memo, apply, prepare, reoffer, shared
from .work import Context

log = logging.getLogger(__name__)

CHUNK = 2000  # accounts prepared, then written, at a time
PARALLEL_FROM = 50_000  # accounts: below this a worker process costs more than it saves
AHEAD = 4  # chunks prepared ahead of the writer, at most
ANALYZE_FROM = 10_000  # grants given, refused or taken back: from this many, PostgreSQL's statistics are refreshed


def evaluate_all(conn: Connection, ctx: Context, *, workers: int | None = None,
                 codes: CodesSeen | None = None) -> dict[str, int]:
    """Reconcile every account of the projection, and every account holding a grant.

    The caller's transaction must not have changed the projection, grants or
    refusals before calling this (the workers would not see it); the
    catalogue and rules it just stored are handed to the workers. `workers`:
    0 prepares here (default: 2 to 4 for a large database on disk, else 0).
    `codes`: filled with the class and group codes of every account read.
    """
    t0 = time.perf_counter()
    changes_before = sum(ctx.counts.values())
    change_configuration(conn)  # no consumer writes the grants this writes meanwhile (`write_locks`)
    resources, rules, uai_of, pools, memo = shared(conn)
    accounts = everyone(conn)
    chunks = [accounts[i:i + CHUNK] for i in range(0, len(accounts), CHUNK)]
    url = conn.engine.url
    if workers is None:
        on_disk = url.get_backend_name() != "sqlite" or url.database not in (None, "", ":memory:")
        # Preparing costs more than writing: two workers keep the writer busy even on two cores.
        workers = min(4, max(2, (os.cpu_count() or 1) - 1)) if on_disk and len(accounts) >= PARALLEL_FROM else 0
    pools.preload()
    # Grants arrive in person order, which suits their primary key but not the index by licence pool: on
    # SQLite, building that index once at the end costs a fraction of keeping it up to date row by row.
    # (Not on PostgreSQL: DROP INDEX would lock the table against the worker's reads until commit.)
    pool_index = next(i for i in t.grant.indexes if i.name == "ix_prov_grant_pool")
    rebuild = conn.dialect.name == "sqlite" and len(accounts) >= PARALLEL_FROM
    if rebuild:
        pool_index.drop(conn)
    if workers == 0:
        prepared = (prepare(conn, c, ctx, resources=resources, rules=rules, uai_of=uai_of, memo=memo, span=True,
                            codes=codes) for c in chunks)
        for chunk, done in zip(chunks, prepared, strict=True):
            reoffer(conn, apply(conn, done, ctx, pools, rules, packed=True), set(chunk), ctx, resources, rules,
                    uai_of, pools, memo)
    else:
        _evaluate_in_workers(conn, ctx, chunks, workers, resources, rules, uai_of, pools, memo, codes)
    log.info("evaluation: %d accounts written (%d workers) in %.1f s", len(accounts), workers, time.perf_counter() - t0)
    if rebuild:
        pool_index.create(conn)
        log.info("evaluation: pool index rebuilt in %.1f s", time.perf_counter() - t0)
    if sum(ctx.counts.values()) - changes_before >= ANALYZE_FROM:
        # The consumer's next batch looks grants up by person: with the statistics of an empty table,
        # PostgreSQL would read every grant to find them.
        analyze(conn, t.grant.name, t.history.name, t.refusal.name)
    return dict(ctx.counts)


def _evaluate_in_workers(conn: Connection, ctx: Context, chunks: list[list[str]], workers: int,
                         resources: dict[str, Resource], rules: RuleSet, uai_of: dict[str, str], pools: LicencePools,
                         memo: Memo, codes: CodesSeen | None) -> None:
    mp = multiprocessing.get_context("spawn")  # a fresh interpreter: no inherited connections
    url = conn.engine.url.render_as_string(hide_password=False)
    with mp.Pool(workers, initializer=start_worker,
                 initargs=(url, ctx.for_worker(), resources, rules, uai_of, codes is not None)) as pool:
        pending: list[AsyncResult[Chunk]] = []
        for chunk in chunks[:AHEAD]:
            pending.append(pool.apply_async(prepare_chunk, (chunk,)))
        for n, chunk in enumerate(chunks):
            done, events, seen = pending.pop(0).get()
            if codes is not None and seen is not None:
                codes.merge(seen)
            if n + AHEAD < len(chunks):
                pending.append(pool.apply_async(prepare_chunk, (chunks[n + AHEAD],)))
            reoffer(conn, apply(conn, done, ctx, pools, rules, packed=True, events=events), set(chunk), ctx,
                    resources, rules, uai_of, pools, memo)
