"""What connectors move: items (id, vertical, path, kind, metadata, content, sha256, size).

Pure Python, no I/O beyond reading the content an item carries. An item belongs to one
*owner* (the person whose space it is in at the source: an AAF jointure or the source's user
name) and one *vertical*. Its ``id`` is stable at the source and unique per (owner, vertical);
its ``path`` is where the user sees it (folder tree and name). Both are NFC relative paths
without ``.``/``..``/empty segments, so the vault can use them as keys and bag paths.

A *folder* item (``kind="folder"``: a WebDAV collection, a calendar, an address book) has
empty content; it exists so that empty folders and folder metadata survive a round trip.
"""
from __future__ import annotations

import hashlib
import io
import os
import re
import threading
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Literal

from .errors import BadItem

#: The verticals of the archive format (contracts/vault/SPEC.md), in the vault's order.
VERTICALS: tuple[str, ...] = ("documents", "calendars", "contacts", "messages", "blogs", "homework")

Kind = Literal["file", "folder"]
KINDS: tuple[str, ...] = ("file", "folder")

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
CHUNK = 1 << 20  # 1 MiB: the unit of streaming everywhere in the SDK

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


def check_path(value: str, what: str = "item id") -> str:
    """Return ``value`` in NFC, or raise :class:`BadItem` if it is not a safe relative path.

    The same rules as the archive format (services/vault/rules/item_ids.py ``safe_path``): no empty,
    ``.`` or ``..`` segment, no leading ``/``, no backslash, no NUL.
    """
    if not isinstance(value, str) or not value:
        raise BadItem(f"{what} must be a non-empty string, got {value!r}")
    if "\x00" in value or "\\" in value:
        raise BadItem(f"{what} {value!r} contains a NUL or a backslash")
    norm = unicodedata.normalize("NFC", value)
    if norm.startswith("/") or any(seg in ("", ".", "..") for seg in norm.split("/")):
        raise BadItem(f"{what} {value!r} is absolute or has an empty, '.' or '..' segment")
    return norm


def check_sha256(value: str, what: str = "sha256") -> str:
    if not isinstance(value, str) or not _HEX64.match(value):
        raise BadItem(f"{what} must be 64 lowercase hex digits, got {value!r}")
    return value


def check_vertical(value: str) -> str:
    if value not in VERTICALS:
        raise BadItem(f"unknown vertical {value!r}; expected one of {', '.join(VERTICALS)}")
    return value


@dataclass(frozen=True, slots=True)
class ItemRef:
    """An item as a listing shows it, before its content is read.

    ``size`` and ``sha256`` are what the source *announces* (None when it announces nothing);
    :meth:`Exporter.fetch` checks the content against them. ``locator`` is the connector's own
    address for the item (an href, a database key); it is not part of the archive format.
    ``etag`` changes whenever the item does (:mod:`connectors.sdk.sync`); None when the source has none.
    """

    owner: str
    vertical: str
    id: str
    path: str
    kind: Kind = "file"
    metadata: Mapping[str, Any] = field(default_factory=dict)
    size: int | None = None
    sha256: str | None = None
    locator: str | None = None
    etag: str | None = None  # the source's version tag (an HTTP ETag), compared by incremental sync


class Content:
    """An item's bytes, readable as many times as needed (an importer may retry an upload).

    ``sha256`` and ``size`` are *declared*; :meth:`verify` checks them against the bytes.
    Content produced by :meth:`Exporter.fetch` was hashed while it was downloaded and is
    marked verified, so it is not read a second time to check it.
    """

    sha256: str
    size: int
    verified: bool

    def open(self) -> BinaryIO:  # pragma: no cover - abstract
        raise NotImplementedError

    def read(self) -> bytes:
        with self.open() as f:
            return f.read()

    def chunks(self, size: int = CHUNK) -> Iterator[bytes]:
        with self.open() as f:
            while block := f.read(size):
                yield block

    def verify(self, what: str = "content") -> None:
        """Raise :class:`BadItem` unless the bytes have the declared size and sha256."""
        if self.verified:
            return
        h, n = hashlib.sha256(), 0
        for block in self.chunks():
            h.update(block)
            n += len(block)
        if n != self.size:
            raise BadItem(f"{what}: declared size {self.size} but the content has {n} bytes")
        if h.hexdigest() != self.sha256:
            raise BadItem(f"{what}: declared sha256 {self.sha256} but the content hashes to {h.hexdigest()}")
        self.verified = True

    def release(self) -> None:
        """Free what holds the bytes (a spool file); the content is unusable afterwards."""


class BytesContent(Content):
    """Content held in memory. ``sha256``/``size`` default to those of ``data``."""

    def __init__(self, data: bytes, *, sha256: str | None = None, size: int | None = None) -> None:
        self._data = bytes(data)
        actual = hashlib.sha256(self._data).hexdigest()
        self.sha256 = sha256 if sha256 is not None else actual
        self.size = size if size is not None else len(self._data)
        self.verified = self.sha256 == actual and self.size == len(self._data)

    def open(self) -> BinaryIO:
        return io.BytesIO(self._data)

    def read(self) -> bytes:
        return self._data

    def __repr__(self) -> str:
        return f"BytesContent(size={self.size}, sha256={self.sha256[:12]}…)"


class FileContent(Content):
    """Content in a file (a spool file written by :meth:`Exporter.fetch`, or any local file).

    With ``delete=True`` the file is removed by :meth:`release` (and when garbage-collected).
    """

    def __init__(self, path: Path, *, sha256: str, size: int, verified: bool = False,
                 delete: bool = False) -> None:
        self.path = Path(path)
        self.sha256, self.size, self.verified = sha256, size, verified
        self._delete = delete
        self._lock = threading.Lock()

    @classmethod
    def from_path(cls, path: Path) -> FileContent:
        """Hash a local file once and wrap it."""
        h, n = hashlib.sha256(), 0
        with open(path, "rb") as f:
            while block := f.read(CHUNK):
                h.update(block)
                n += len(block)
        return cls(path, sha256=h.hexdigest(), size=n, verified=True)

    def open(self) -> BinaryIO:
        return open(self.path, "rb")

    def release(self) -> None:
        with self._lock:
            if self._delete:
                self._delete = False
                try:
                    os.unlink(self.path)
                except FileNotFoundError:
                    pass

    def __del__(self) -> None:
        try:
            self.release()
        except Exception:  # noqa: BLE001 - never raise from a finaliser
            pass

    def __repr__(self) -> str:
        return f"FileContent({str(self.path)!r}, size={self.size}, sha256={self.sha256[:12]}…)"


#: Keys an item record has besides its metadata (see :meth:`Item.record`).
RECORD_KEYS = frozenset({"id", "path", "kind", "sha256", "size"})


@dataclass(frozen=True, slots=True)
class Item:
    """An item with its content: what an exporter yields and an importer takes.

    ``metadata`` holds the vertical's fields of contracts/vault/schemas/<vertical>.json (owner,
    dates, sharing, uid...) and ``extra`` for vendor fields, which are kept verbatim.
    """

    owner: str
    vertical: str
    id: str
    path: str
    content: Content
    kind: Kind = "file"
    metadata: Mapping[str, Any] = field(default_factory=dict)

    @property
    def sha256(self) -> str:
        return self.content.sha256

    @property
    def size(self) -> int:
        return self.content.size

    @classmethod
    def from_bytes(cls, owner: str, vertical: str, id: str, data: bytes, *, path: str | None = None,
                   kind: Kind = "file", metadata: Mapping[str, Any] | None = None) -> Item:
        return cls(owner=owner, vertical=vertical, id=id, path=path if path is not None else id,
                   content=BytesContent(data), kind=kind, metadata=dict(metadata or {}))

    @classmethod
    def folder(cls, owner: str, vertical: str, id: str, *, path: str | None = None,
               metadata: Mapping[str, Any] | None = None) -> Item:
        return cls.from_bytes(owner, vertical, id, b"", path=path, kind="folder", metadata=metadata)

    def record(self) -> dict[str, Any]:
        """The item's entry in the vertical's ``index.json`` (checked by :mod:`.schemas`)."""
        return {**dict(self.metadata), "id": self.id, "path": self.path, "kind": self.kind,
                "sha256": self.sha256, "size": self.size}

    def ref(self) -> ItemRef:
        return ItemRef(self.owner, self.vertical, self.id, self.path, self.kind, dict(self.metadata),
                       self.size, self.sha256)

    @property
    def label(self) -> str:
        """How errors and logs name the item: ``<owner>:<vertical>/<id>``."""
        return f"{self.owner}:{self.vertical}/{self.id}"


def ref_label(ref: ItemRef) -> str:
    return f"{ref.owner}:{ref.vertical}/{ref.id}"


def parent_path(path: str) -> str:
    """``"a/b/c.txt"`` -> ``"a/b"``; ``"c.txt"`` -> ``""``."""
    return path.rsplit("/", 1)[0] if "/" in path else ""
