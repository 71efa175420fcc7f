"""A token bucket shared by every thread of a connector: at most ``rate`` requests per second.

Vendors' APIs publish limits (say 20 requests/s per client); exceeding them gets HTTP 429
and, on some, a temporary ban. The bucket holds ``burst`` tokens so short bursts pass at once.
"""
from __future__ import annotations

import threading
import time
from collections.abc import Callable


class RateLimiter:
    def __init__(self, rate: float, burst: int | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (requests per second)")
        self.rate = float(rate)
        self.burst = max(1, int(burst if burst is not None else max(1, round(rate))))
        self._tokens = float(self.burst)
        self._clock, self._sleep = clock, sleep
        self._last = clock()
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Take one token, waiting if none is left; returns the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                self._tokens = min(self.burst, self._tokens + (now - self._last) * self.rate)
                self._last = now
                if self._tokens >= 1 - 1e-9:  # tolerance: float sums of waits fall a hair short
                    self._tokens = max(0.0, self._tokens - 1)
                    return waited
                wait = (1 - self._tokens) / self.rate
            self._sleep(wait)
            waited += wait

    def __repr__(self) -> str:
        return f"RateLimiter(rate={self.rate}/s, burst={self.burst})"
