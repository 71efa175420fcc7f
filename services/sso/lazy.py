"""`Lazy`: an object made on first use, once, under a lock.

The SAML SP and IdP sides keep their provider this way: making one reads its
configuration section (and the IdPs' metadata), so it happens once, when a
first request (or the process's start) needs it. A build that returns None
(that side is not configured) keeps nothing and is asked again next time; one
that raises keeps nothing either, so the next request tries again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class Lazy(Generic[T]):
    def __init__(self, build: Callable[[], T | None]) -> None:
        self._build = build
        self._made: T | None = None
        self._lock = threading.Lock()

    def __call__(self) -> T | None:
        made = self._made
        if made is not None:
            return made
        with self._lock:
            if self._made is None:
                self._made = self._build()
            return self._made
