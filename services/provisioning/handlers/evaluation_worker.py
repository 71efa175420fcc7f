"""The worker process side of `full_evaluation.evaluate_all`: prepares chunks of accounts, reading only.

Runs in a spawned interpreter with its own database engine; what it returns
(`reconcile.Prepared` lists) is pickled back to the process that writes.
"""

from __future__ import annotations

from typing import Any

from relais.bus.outbox import pack
from relais.db import make_engine

from ..grants.catalogue import Resource
from ..grants.load_checks import CodesSeen
from ..grants.rules import RuleSet
from .reconcile import Prepared, prepare
from .work import Context

# (the chunk's reconciliations, its grant events packed as outbox rows, the class and group codes seen or None)
Chunk = tuple[list[Prepared], list[tuple[str, str, bytes, int]], CodesSeen | None]

_state: dict[str, Any] = {}


def start_worker(url: str, ctx: Context, resources: dict[str, Resource], rules: RuleSet, uai_of: dict[str, str],
                 codes: bool) -> None:
    """The configuration comes from the writer: it may have stored it in its transaction, not committed yet.

    `codes`: note the class and group codes of the accounts read (`load_checks.CodesSeen`).
    """
    _state.update(engine=make_engine(url), ctx=ctx, resources=resources, rules=rules, uai_of=uai_of, memo={},
                  codes=codes)


def prepare_chunk(jointures: list[str]) -> Chunk:
    """Prepare one chunk of accounts (`reconcile.prepare`), and pack its grant events.

    Packing (and compressing) the events here, not in the process that
    writes, moves that work to the processes that have CPU to spare.
    """
    s = _state
    seen = CodesSeen(s["rules"]) if s["codes"] else None
    events: list[tuple[str, str, bytes]] = []
    with s["engine"].connect() as conn:
        prepared = prepare(conn, jointures, s["ctx"], resources=s["resources"], rules=s["rules"],
                           uai_of=s["uai_of"], memo=s["memo"], span=True, codes=seen, events=events)
    return prepared, pack(events) if events else [], seen
