"""Which blobs the vault store holds, so an export uploads each content once and asks nothing per item.

The store is listed once when a run starts (a few requests per thousand blobs, instead of one
lookup per item); every blob the run uploads is added. Two downloads of the same shared file
finishing at once upload it once: the second waits for the first.

A blob another writer (continuous mode) stores after the listing may be uploaded once more:
the same bytes under the same key, never a loss.
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Iterable


class StoredBlobs:
    """A thread-safe set of digests (kept as 32-byte keys), with uploads deduplicated in flight."""

    def __init__(self, digests: Iterable[str] = ()) -> None:
        self._known: set[bytes] = {bytes.fromhex(d) for d in digests}
        self._uploading: dict[bytes, threading.Event] = {}
        self._lock = threading.Lock()

    def __contains__(self, digest: object) -> bool:
        if not isinstance(digest, str):  # no digest (None): not stored
            return False
        try:
            return bytes.fromhex(digest) in self._known
        except ValueError:  # not a digest (a source announcing garbage): not stored
            return False

    def __len__(self) -> int:
        return len(self._known)

    def reload(self, digests: Iterable[str]) -> None:
        """Forget what was known and take the store's listing again (blobs were deleted meanwhile)."""
        fresh = {bytes.fromhex(d) for d in digests}
        with self._lock:
            self._known = fresh

    def discard(self, digest: str) -> None:
        with self._lock:
            self._known.discard(bytes.fromhex(digest))

    def ensure(self, digest: str, upload: Callable[[], None]) -> bool:
        """Make sure the blob is stored: call ``upload`` unless it is known or being uploaded by
        another thread (then wait for that one). True when this call uploaded it."""
        key = bytes.fromhex(digest)
        while True:
            with self._lock:
                if key in self._known:
                    return False
                pending = self._uploading.get(key)
                if pending is None:
                    done = self._uploading[key] = threading.Event()
                    break
            pending.wait()  # the other upload ended; stored unless it failed, then try ourselves
        try:
            upload()
            with self._lock:
                self._known.add(key)
            return True
        finally:
            with self._lock:
                del self._uploading[key]
            done.set()
