"""Reading AAF exports (`ficAlimMENESR` XML) safely and as a stream.

The files declare an external DTD: it is never loaded, the network is never
touched and entities are never expanded. A file with an internal DTD subset
(the vehicle of billion-laughs and XXE attacks) is refused as a whole. A file
that is not well-formed raises `AafFileError` with the line where it broke, so
the caller can roll the whole file back. A record with bytes that are not
UTF-8 is reported as a `RecordError` and the rest of the file is read.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

FAMILIES = ("EtabEducNat", "MefEducNat", "MatiereEducNat", "PersEducNat", "Eleve", "PersRelEleve")
PERSON_FAMILIES = frozenset({"Eleve", "PersRelEleve", "PersEducNat"})

# operationalAttributes/attr value -> family. The samples spell subjects `MatEducNat`.
_FAMILY_BY_CATEGORY = {
    "Eleve": "Eleve",
    "PersRelEleve": "PersRelEleve",
    "PersEducNat": "PersEducNat",
    "EtabEducNat": "EtabEducNat",
    "MefEducNat": "MefEducNat",
    "MatEducNat": "MatiereEducNat",
    "MatiereEducNat": "MatiereEducNat",
}
_CATEGORY_ATTRS = frozenset({"categoriePersonne", "categorieStructure", "categorieMef", "categorieMatiere"})
_OPERATIONS = {"addRequest": "add", "modifyRequest": "modify", "deleteRequest": "delete"}

_FILENAME = re.compile(
    r"(?P<project>[^_/\\]+)_(?P<kind>Complet|Delta)_(?P<date>\d{8})_(?P<family>[A-Za-z0-9]+)_(?P<number>\d+)\.xml$"
)
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


@dataclass(frozen=True, slots=True)
class FileInfo:
    path: Path
    project: str | None
    kind: str | None  # "Complet" | "Delta" | None when the name says nothing
    date: str | None
    family: str | None
    number: int | None

    @property
    def export_key(self) -> str | None:
        """Files sharing this key belong to one export of one family."""
        if self.kind is None:
            return None
        return f"{self.project}_{self.kind}_{self.date}_{self.family}"


def file_info(path: Path) -> FileInfo:
    m = _FILENAME.search(path.name)
    if not m:
        return FileInfo(path, None, None, None, None, None)
    family = _FAMILY_BY_CATEGORY.get(m["family"], m["family"])
    return FileInfo(path, m["project"], m["kind"], m["date"], family, int(m["number"]))


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


def _declared_utf8(head: bytes) -> bool:
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

    element: object  # lxml element of addRequest | modifyRequest | deleteRequest
    line: int

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
                category = attr[0].text.strip() if attr.get("name") in _CATEGORY_ATTRS else None
                identifier = (ident[0].text or "").strip() or None
                return _FAMILY_BY_CATEGORY.get(category or ""), identifier
        except (IndexError, AttributeError):
            pass
        record = self.read()
        if isinstance(record, AafRecord):
            return record.family, record.identifier
        return None, None

    def raw_hash(self) -> str:
        """A hash of the record exactly as written: equal bytes, equal record."""
        from .model import raw_fingerprint

        return raw_fingerprint(etree.tostring(self.element, with_tail=False))

    def read(self) -> "AafRecord | RecordError":
        return _read_record(self.element, self.line)


def iter_elements(path: Path) -> Iterator[RawRecord | RecordError]:
    """Yield each record element of the file in order (or a `RecordError` for unreadable bytes).

    Raises `AafFileError` if the file is hostile, not well-formed or truncated.
    Each element is detached from the document once the next one is read, so
    memory stays flat however large the file.
    """
    path = Path(path)
    try:
        with open(path, "rb") as fh:
            head = fh.read(65536)
    except OSError as exc:
        raise AafFileError(path, f"cannot read: {exc.strerror or exc}") from exc
    check_not_hostile(path, head)
    bad_lines = _bad_utf8_lines(path) if _declared_utf8(head) else set()
    source = _Salvaged(path) if bad_lines else str(path)

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
            line = elem.sourceline or 0
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
        line = exc.lineno if exc.lineno else None
        raise AafFileError(path, f"malformed XML: {exc.msg}", line) from exc
    root = getattr(parser, "root", None)
    if root is not None and root.tag != "ficAlimMENESR":
        raise AafFileError(path, f"root element is <{root.tag}>, expected <ficAlimMENESR>", 1)


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
    family = _FAMILY_BY_CATEGORY.get(category)
    if family is None:
        return RecordError(line, identifier, f"unknown family {category!r}")
    if not identifier:
        return RecordError(line, None, "missing identifier/id (the record's jointure)")
    return AafRecord(operation, family, identifier, attributes, line)
