"""Bounded retries with exponential backoff and full jitter.

``delay(n)`` for the n-th retry is drawn uniformly in ``[0, min(max_delay, base_delay * 2**(n-1))]``
("full jitter": many workers retrying at once spread out instead of hammering the peer in step).
A peer's ``Retry-After`` is honoured (capped at ``max_delay``). Retries stop after
``attempts`` tries in all, or when the next wait would pass ``deadline`` seconds since the
first try, whichever comes first; the caller then gets :class:`RetriesExhausted`.
"""
from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from .errors import ConnectorError, RetriesExhausted, TransientError

T = TypeVar("T")
log = logging.getLogger("connectors.retry")


@dataclass(frozen=True)
class RetryPolicy:
    attempts: int = 5
    base_delay: float = 0.25
    max_delay: float = 8.0
    deadline: float | None = 120.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError("attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("delays must not be negative")

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (1 for the first retry)."""
        ceiling = min(self.max_delay, self.base_delay * (2 ** (retry - 1)))
        wait = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_delay))
        return wait


NO_RETRY = RetryPolicy(attempts=1)


def call_with_retries(fn: Callable[[], T], policy: RetryPolicy, *, what: str,
                      sleep: Callable[[float], None] = time.sleep,
                      retry_on: tuple[type[BaseException], ...] = (TransientError,)) -> T:
    """Call ``fn`` until it returns, retrying on ``retry_on`` errors as ``policy`` allows.

    ``what`` names the operation in logs and in the final error (``"GET https://host/a.txt"``). Non-transient errors
    pass through at once. When retries run out, raises :class:`RetriesExhausted` carrying the
    connector, URL and item of the last error.
    """
    start = time.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except retry_on as exc:
            retry_after = getattr(exc, "retry_after", None)
            wait = policy.delay(attempt, retry_after)
            elapsed = time.monotonic() - start
            out_of_time = policy.deadline is not None and elapsed + wait > policy.deadline
            if attempt >= policy.attempts or out_of_time:
                ctx = exc if isinstance(exc, ConnectorError) else None
                reason = ctx.reason if ctx else str(exc)
                raise RetriesExhausted(
                    f"{what} failed after {attempt} attempt{'s' if attempt > 1 else ''} "
                    f"over {elapsed:.1f} s: {reason}", attempts=attempt,
                    last=ctx or TransientError(str(exc)),
                    connector=ctx.connector if ctx else None, url=ctx.url if ctx else None,
                    item=ctx.item if ctx else None) from exc
            log.warning("%s failed (%s), retry %d/%d in %.2f s", what,
                        exc.reason if isinstance(exc, ConnectorError) else exc,
                        attempt, policy.attempts - 1, wait)
            sleep(wait)
