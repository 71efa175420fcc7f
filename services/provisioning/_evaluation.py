"""The worker process side of `handlers.evaluate_all`: prepares chunks of accounts, reading only.

Runs in a spawned interpreter with its own database engine; what it returns
(`handlers.Prepared` lists) is pickled back to the process that writes.
"""

from __future__ import annotations

from typing import Any

_state: dict[str, Any] = {}


def start_worker(url: str, ctx, resources, rules, uai_of, codes: bool) -> None:
    """The configuration comes from the writer: it may have stored it in its transaction, not committed yet.

    `codes`: note the class and group codes of the accounts read (`rules.CodesSeen`).
    """
    from relais.db import make_engine

    _state.update(engine=make_engine(url), ctx=ctx, resources=resources, rules=rules, uai_of=uai_of, memo={},
                  codes=codes)


def prepare_chunk(jointures: list[str]) -> tuple[list, list, Any]:
    """(the chunk's `handlers.Prepared` list, its grant events packed as outbox rows, its `rules.CodesSeen` or None).

    Packing (and compressing) the events here, not in the process that
    writes, moves that work to the processes that have CPU to spare.
    """
    from relais.bus.outbox import pack

    from . import handlers
    from .rules import CodesSeen

    s = _state
    seen = CodesSeen(s["rules"]) if s["codes"] else None
    events: list[tuple[str, str, bytes]] = []
    with s["engine"].connect() as conn:
        prepared = handlers.prepare(conn, jointures, s["ctx"], resources=s["resources"], rules=s["rules"],
                                    uai_of=s["uai_of"], memo=s["memo"], span=True, codes=seen, events=events)
    return prepared, pack(events) if events else [], seen
