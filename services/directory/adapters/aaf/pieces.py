"""Reading a large AAF file in pieces that parse independently, so parser processes share it.

See `FileChunks`. A piece that does not parse on its own raises
`ChunkUnreadable`, and the caller reads the whole file (`reader.iter_elements`),
which says what is wrong and where, or reads it right.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from .reader import AafFileError, Broken, RawRecord, RecordError, check_not_hostile, declared_utf8, iter_elements, parse


class ChunkUnreadable(Exception):
    """A piece of a file could not be read on its own: read the whole file to learn why."""


class FileChunks:
    """A large file cut into pieces of about `chunk_bytes` that parse independently.

    Parser processes share the work of one file this way, each taking every
    n-th piece. Piece j holds the records whose start tag begins in
    [j * chunk_bytes, (j + 1) * chunk_bytes): every process finds the same
    cuts without talking to the others. A middle piece is parsed wrapped in
    the file's XML declaration and root element, and its line numbers are
    shifted to the file's.

    A cut can only land on a record's start tag; one that lands in a comment
    or a CDATA section leaves two pieces that are not well-formed. So any
    error in a piece, whatever its cause, raises `ChunkUnreadable` and the
    caller reads the whole file with `iter_elements`, which says what is
    wrong and where, or reads it right.
    """

    _RECORD_START = re.compile(rb"<(?:addRequest|modifyRequest|deleteRequest)[\s>/]")
    _XML_DECL = re.compile(rb"^\s*<\?xml[^>]*\?>")
    _SCAN = 1 << 16

    def __init__(self, path: Path | str, chunk_bytes: int):
        self.path = Path(path)
        self.chunk_bytes = chunk_bytes
        self.size = self.path.stat().st_size
        self.count = max(1, -(-self.size // chunk_bytes))
        self._fh: BinaryIO | None = None
        self._lines_at = (0, 0)  # (offset, newlines before it): counting only moves forward

    @staticmethod
    def count_for(path: Path, chunk_bytes: int) -> int:
        return max(1, -(-Path(path).stat().st_size // chunk_bytes))

    def close(self) -> None:
        if self._fh is not None:
            self._fh.close()
            self._fh = None

    def elements(self, index: int) -> Iterator[RawRecord | RecordError]:
        """The records of piece `index`.

        Raises `ChunkUnreadable` on any error in a piece of a file cut in
        several, and `AafFileError` as `iter_elements` does for a file in one.
        """
        if self.count == 1:  # the whole file: read as `iter_elements` reads it, errors included
            yield from iter_elements(self.path)
            return
        head = self._read(0, self._SCAN)
        if index == 0:
            try:
                check_not_hostile(self.path, head)
            except AafFileError as exc:
                raise ChunkUnreadable(str(exc)) from exc
        start = 0 if index == 0 else self._record_start(index * self.chunk_bytes)
        end = self._record_start((index + 1) * self.chunk_bytes)
        if start >= end:
            return  # a record longer than a piece began before this one
        data = self._read(start, end - start)
        newlines = self._newlines_before(start)
        decl = self._XML_DECL.match(head)
        prefix = b"" if start == 0 else (decl.group(0).strip() if decl else b"") + b"<ficAlimMENESR>"
        suffix = b"" if end >= self.size else b"</ficAlimMENESR>"
        self._lines_at = (end, newlines + data.count(b"\n"))
        cuts = self._record_cuts(data) if declared_utf8(head) else None
        count = 0
        try:
            for item in parse(io.BytesIO(prefix + data + suffix), newlines, set(), plain_root=index == 0):
                if cuts is not None and isinstance(item, RawRecord):
                    parent = item.element.getparent()
                    if count + 1 >= len(cuts) or (parent is not None and parent.getparent() is not None):
                        cuts = None  # a record inside another: its end comes first, the cuts are off from here
                    else:
                        item.raw = data[cuts[count]:cuts[count + 1]]
                count += 1
                yield item
        except Broken as exc:
            raise ChunkUnreadable(f"{self.path}: piece {index}: {exc.reason}") from exc
        if cuts is not None and count != len(cuts) - 1:  # cannot happen: each real start tag is found
            raise ChunkUnreadable(f"{self.path}: piece {index}: {len(cuts) - 1} record start tags, {count} records")

    def _record_cuts(self, data: bytes) -> list[int] | None:
        """Where each record of a piece begins, then the piece's end: record i is data[cuts[i]:cuts[i + 1]].

        Hashing these bytes costs a tenth of serializing each parsed record
        again. Only where every start tag found is a real one: not in a piece
        holding a comment, CDATA or processing instruction (then None, and
        records are serialized to be hashed).
        """
        starts = [m.start() for m in self._RECORD_START.finditer(data)]
        if not starts or b"<!--" in data or b"<![CDATA[" in data or b"<?" in data[starts[0]:]:
            return None
        starts.append(len(data))
        return starts

    def _read(self, offset: int, n: int) -> bytes:
        if self._fh is None:
            self._fh = open(self.path, "rb")
        self._fh.seek(offset)
        return self._fh.read(n)

    def _record_start(self, offset: int) -> int:
        """Offset of the first record start tag at or after `offset`; the file size if none."""
        pos = offset
        while pos < self.size:
            block = self._read(pos, self._SCAN + 32)
            m = self._RECORD_START.search(block)
            if m:
                return pos + m.start()
            pos += self._SCAN
        return self.size

    def _newlines_before(self, offset: int) -> int:
        at, lines = self._lines_at
        if offset < at:
            at, lines = 0, 0
        while at < offset:
            block = self._read(at, min(1 << 20, offset - at))
            lines += block.count(b"\n")
            at += len(block)
        self._lines_at = (at, lines)
        return lines

