"""Reading AAF exports (`ficAlimMENESR` XML) safely and as a stream: files in, records out.

The files declare an external DTD: it is never loaded, the network is never
touched and entities are never expanded. A file with an internal DTD subset
(the vehicle of billion-laughs and XXE attacks) is refused as a whole. A file
that is not well-formed raises `AafFileError` with the line where it broke, so
the caller can roll the whole file back. A record with bytes that are not
UTF-8 is reported as a `RecordError` and the rest of the file is read.
Records come out as `RawRecord`s, cheap to key and hash, read on demand into
`AafRecord`s (family, identifier, attributes); `pieces.py` reads a large file
in pieces that parse independently.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from ...rules.families import FAMILY_BY_CATEGORY
from ...rules.fingerprints import raw_fingerprint

_CATEGORY_ATTRS = frozenset({"categoriePersonne", "categorieStructure", "categorieMef", "categorieMatiere"})
_OPERATIONS = {"addRequest": "add", "modifyRequest": "modify", "deleteRequest": "delete"}

_INTERNAL_SUBSET = re.compile(rb"<!DOCTYPE[^>\[]*\[|<!ENTITY", re.IGNORECASE)
_XML_ENCODING = re.compile(rb"""^\s*<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")


class AafFileError(Exception):
    """The file as a whole cannot be read; nothing of it may be applied."""

    def __init__(self, path: Path, message: str, line: int | None = None):
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line
        self.reason = message



@dataclass(slots=True)
class AafRecord:
    operation: str  # add | modify | delete
    family: str
    identifier: str
    attributes: dict[str, list[str]]
    line: int


@dataclass(slots=True)
class RecordError:
    line: int
    identifier: str | None
    reason: str


def check_not_hostile(path: Path, head: bytes) -> None:
    if _INTERNAL_SUBSET.search(head):
        raise AafFileError(
            path,
            "refused: the file declares an internal DTD subset or entities "
            "(entity expansion / XXE risk); AAF files only reference ficAlimMENESR.dtd",
            1,
        )


def declared_utf8(head: bytes) -> bool:
    m = _XML_ENCODING.match(head)
    return m is None or m.group(1).lower().replace(b"_", b"-") in (b"utf-8", b"utf8")


def _bad_utf8_lines(path: Path) -> set[int]:
    """Line numbers (1-based) holding bytes that are not valid UTF-8; empty for a clean file."""
    with open(path, "rb") as fh:
        data = fh.read()
    try:
        data.decode("utf-8")
        return set()
    except UnicodeDecodeError:
        pass
    bad: set[int] = set()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            bad.add(number)
    return bad


class _Salvaged(io.RawIOBase):
    """The file with undecodable bytes replaced by U+FFFD, so the parser can go on."""

    def __init__(self, path: Path):
        data = Path(path).read_bytes().decode("utf-8", errors="replace").encode("utf-8")
        self._buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def readinto(self, b) -> int:
        chunk = self._buf.read(len(b))
        b[: len(chunk)] = chunk
        return len(chunk)


@dataclass(slots=True)
class RawRecord:
    """One record element, detached from its file, not read yet."""

    element: etree._Element  # lxml element of addRequest | modifyRequest | deleteRequest
    line: int
    raw: bytes | None = None  # its bytes in the file, when the reader could cut them out (`FileChunks`)

    @property
    def operation(self) -> str:
        return _OPERATIONS[self.element.tag]

    def family_and_id(self) -> tuple[str | None, str | None]:
        """The record's family and identifier, cheaply (no attribute reading)."""
        el = self.element
        try:  # the usual shape: operationalAttributes/attr/value, identifier/id
            op, ident = el[0], el[1]
            if op.tag == "operationalAttributes" and ident.tag == "identifier":
                attr = op[0]
                category = (attr[0].text or "").strip() if attr.get("name") in _CATEGORY_ATTRS else None
                identifier = (ident[0].text or "").strip() or None
                return FAMILY_BY_CATEGORY.get(category or ""), identifier
        except (IndexError, AttributeError):
            pass
        record = self.read()
        if isinstance(record, AafRecord):
            return record.family, record.identifier
        return None, None

    def raw_hash(self) -> str:
        """A hash of the record exactly as written: equal bytes, equal record."""
        return raw_fingerprint(self.raw if self.raw is not None else etree.tostring(self.element, with_tail=False))

    def read(self) -> AafRecord | RecordError:
        return _read_record(self.element, self.line)


def iter_elements(path: Path) -> Iterator[RawRecord | RecordError]:
    """Yield each record element of the file in order (or a `RecordError` for unreadable bytes).

    Raises `AafFileError` if the file is hostile, not well-formed or truncated.
    Each element is detached from the document once the next one is read, so
    memory stays flat however large the file.
    """
    path = Path(path)
    head = _head(path)
    check_not_hostile(path, head)
    bad_lines = _bad_utf8_lines(path) if declared_utf8(head) else set()
    source = _Salvaged(path) if bad_lines else str(path)
    try:
        yield from parse(source, 0, bad_lines)
    except Broken as exc:
        raise AafFileError(path, exc.reason, exc.line) from exc


class Broken(Exception):
    def __init__(self, reason: str, line: int | None):
        super().__init__(reason)
        self.reason, self.line = reason, line


def _head(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(65536)
    except OSError as exc:
        raise AafFileError(path, f"cannot read: {exc.strerror or exc}") from exc


def parse(source, line_offset: int, bad_lines: set[int], plain_root: bool = False) -> Iterator[RawRecord | RecordError]:
    """The record elements of one document; raises `Broken` if it is not well-formed."""
    parser = etree.iterparse(
        source,
        events=("end",),
        tag=tuple(_OPERATIONS),
        resolve_entities=False,
        load_dtd=False,
        no_network=True,
        dtd_validation=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
    )
    try:
        for _event, elem in parser:
            line = (elem.sourceline or 0) + line_offset
            parent = elem.getparent()
            if parent is not None:
                while elem.getprevious() is not None:
                    del parent[0]
            bad = _bad_line_in(elem, line, bad_lines) if bad_lines else None
            if bad is not None:
                yield RecordError(line, elem.findtext("identifier/id"), f"invalid UTF-8 bytes at line {bad}")
            else:
                yield RawRecord(elem, line)
    except etree.XMLSyntaxError as exc:
        raise Broken(f"malformed XML: {exc.msg}", exc.lineno + line_offset if exc.lineno else None) from exc
    root = getattr(parser, "root", None)
    if root is not None and root.tag != "ficAlimMENESR":
        raise Broken(f"root element is <{root.tag}>, expected <ficAlimMENESR>", 1)
    if plain_root and root is not None and (root.attrib or root.nsmap):
        # The other pieces are wrapped in a bare <ficAlimMENESR>: they would not mean the same.
        raise Broken("the root element has attributes or namespaces", 1)


def iter_records(path: Path) -> Iterator[AafRecord | RecordError]:
    """Each record of the file, read: `iter_elements` plus attribute reading."""
    for item in iter_elements(path):
        yield item.read() if isinstance(item, RawRecord) else item


def _bad_line_in(elem, first: int, bad_lines: set[int]) -> int | None:
    last = max((sub.sourceline or first for sub in elem.iter()), default=first)
    hits = [n for n in bad_lines if first <= n <= last]
    return min(hits) if hits else None


def _read_record(elem, line: int) -> AafRecord | RecordError:
    operation = _OPERATIONS[elem.tag]
    category = None
    identifier = None
    attributes: dict[str, list[str]] = {}
    for child in elem:
        tag = child.tag
        if tag == "operationalAttributes":
            for attr in child:
                if attr.get("name") in _CATEGORY_ATTRS:
                    category = (attr.findtext("value") or "").strip()
        elif tag == "identifier":
            identifier = (child.findtext("id") or "").strip() or None
        elif tag == "attributes" or tag == "modifications":
            if not _read_attributes_plain(child, attributes):
                for attr in child:
                    name = attr.get("name")
                    if not name:
                        return RecordError(line, identifier, f"an <{attr.tag}> element has no name")
                    values = [t for v in attr if (t := (v.text or "").strip())]
                    if name in attributes:
                        attributes[name].extend(values)
                    else:
                        attributes[name] = values
    if category is None:
        return RecordError(line, identifier, "no family: operationalAttributes has no category")
    family = FAMILY_BY_CATEGORY.get(category)
    if family is None:
        return RecordError(line, identifier, f"unknown family {category!r}")
    if not identifier:
        return RecordError(line, None, "missing identifier/id (the record's jointure)")
    return AafRecord(operation, family, identifier, attributes, line)


def _read_attributes_plain(container, attributes: dict[str, list[str]]) -> bool:
    """Read `container` if it has the usual shape, attr elements holding childless value elements only.

    One walk over the descendants (`iter`) costs half of visiting children
    level by level. The walk checks the shape as it goes: every element an
    <attr> with a name or a childless <value>, each <attr> followed by exactly
    its children. On any other shape it returns False having changed nothing,
    and the caller reads the container the general way (which also reports a
    nameless attr).
    """
    read: list[tuple[str, list[str]]] = []
    values: list[str] = []
    expected = 0  # values still due to the current attr
    walk = container.iter()
    next(walk)  # the container itself
    for el in walk:
        tag = el.tag
        if tag == "value":
            if not expected or len(el):
                return False
            expected -= 1
            if (t := (el.text or "").strip()):
                values.append(t)
        elif tag == "attr":
            if expected:
                return False
            name = el.get("name")
            if not name:
                return False
            values = []
            read.append((name, values))
            expected = len(el)
        else:
            return False
    if expected:
        return False
    for name, vs in read:
        if name in attributes:
            attributes[name].extend(vs)
        else:
            attributes[name] = vs
    return True
