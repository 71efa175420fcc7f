"""A file-like view of chunks, hashed as they are read: what an uploader that wants ``read(n)`` is given.

Bags are written and read back without holding an item whole in memory: contents come from the vault
store, a bag's folder, zip or S3 prefix as an iterator of chunks, and :class:`ChunkStream` gives them to
code that reads a file object (the minio client, the vault store's ``upload``), hashing them as they go.
Given the digest and size they must have, it raises at the end of the stream if they do not match,
before the reader can take the last bytes for good.
"""
from __future__ import annotations

import hashlib
import io
from collections.abc import Iterable, Iterator


class ContentMismatch(ValueError):
    """Bytes read that are not the ones expected (another sha256 or size); the message says what they were."""


class ChunkStream(io.RawIOBase):
    """``read(n)`` over an iterator of byte chunks, hashing what passes (``sha256``, ``size`` after the end)."""

    def __init__(self, chunks: Iterable[bytes], *, expect: tuple[str, int] | None = None, what: str = "") -> None:
        super().__init__()
        self._chunks: Iterator[bytes] = iter(chunks)
        self._buffer = b""
        self._hash = hashlib.sha256()
        self._expect, self._what = expect, what
        self.size = 0
        self._ended = False

    def readable(self) -> bool:
        return True

    @property
    def sha256(self) -> str:
        return self._hash.hexdigest()

    def _next(self) -> bytes:
        for chunk in self._chunks:
            if chunk:
                self._hash.update(chunk)
                self.size += len(chunk)
                return chunk
        if not self._ended:
            self._ended = True
            if self._expect is not None and (self.sha256, self.size) != self._expect:
                raise ContentMismatch(f"{self._what}: its bytes hash to {self.sha256} ({self.size} bytes), "
                                      f"not {self._expect[0]} ({self._expect[1]} bytes)")
        return b""

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            parts = [self._buffer]
            while chunk := self._next():
                parts.append(chunk)
            self._buffer = b""
            return b"".join(parts)
        while len(self._buffer) < size:
            chunk = self._next()
            if not chunk:
                break
            self._buffer = self._buffer + chunk if self._buffer else chunk
        out, self._buffer = self._buffer[:size], self._buffer[size:]
        return out

    def readinto(self, b) -> int:  # io's writable buffer
        data = self.read(len(b))
        b[:len(data)] = data
        return len(data)

    def drain(self) -> None:
        """Read to the end (checking the digest and size when expected)."""
        while self._next():
            pass
