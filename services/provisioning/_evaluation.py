"""The worker process side of `handlers.evaluate_all`: prepares chunks of accounts, reading only.

Runs in a spawned interpreter with its own database engine; what it returns
(`handlers.Prepared` lists) is pickled back to the process that writes.
"""

from __future__ import annotations

from typing import Any

_state: dict[str, Any] = {}


def start_worker(url: str, ctx, resources, rules, uai_of) -> None:
    """The configuration comes from the writer: it may have stored it in its transaction, not committed yet."""
    from relais.db import make_engine

    _state.update(engine=make_engine(url), ctx=ctx, resources=resources, rules=rules, uai_of=uai_of, memo={})


def prepare_chunk(jointures: list[str]) -> list:
    from . import handlers

    s = _state
    with s["engine"].connect() as conn:
        return handlers.prepare(conn, jointures, s["ctx"], resources=s["resources"], rules=s["rules"],
                                uai_of=s["uai_of"], memo=s["memo"], span=True)
