"""Safe access to an Edifice export: a zip file, or the unpacked folder Edifice zips.

An Edifice export (``edificeio/entcore``, ``archive/.../FileSystemExportService.java``) is a
folder named ``<export time in ms>_<user id>`` holding ``Manifest.json``, one folder per
app, and optionally ``archive.signature``; the folder itself is zipped (Edifice's import,
``DefaultImportService.analyzeArchive``, refuses a zip whose top level is not exactly one
folder holding ``Manifest.json``).

Nothing here trusts the archive: entry names that escape (``..``, absolute, drive letters,
backslashes, NUL), symbolic links, encrypted or duplicate entries, more entries or bytes
than :class:`Limits` allows, compression ratios of a zip bomb, JSON files too large to
parse, all raise :class:`BadArchive` naming the archive and the entry. Bytes are read
through a counting stream that stops at the size the zip announced.
"""
from __future__ import annotations

import json
import os
import stat
import threading
import unicodedata
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.sdk import BadResponse

CHUNK = 1 << 20
NAME = "edifice"


class BadArchive(BadResponse):
    """The archive cannot be read safely or says something untrue; the message names the entry."""


@dataclass(frozen=True)
class Limits:
    """What an archive may hold before we refuse it (a zip bomb, a runaway export)."""

    max_entries: int = 200_000
    max_entry_bytes: int = 8 << 30  # one file
    max_total_bytes: int = 64 << 30  # the whole archive, uncompressed
    max_ratio: int = 200  # uncompressed / compressed, for entries above ratio_floor
    ratio_floor: int = 1 << 20
    max_json_bytes: int = 256 << 20  # Manifest.json, the workspace index, SQL table files


def safe_entry_name(name: str, where: str) -> str:
    """``name`` (a zip entry or a relative file path, ``/`` separated) if it stays inside the archive."""
    if not name or "\x00" in name or "\\" in name:
        raise BadArchive(f"{where}: entry {name!r} has an empty name, a NUL or a backslash")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise BadArchive(f"{where}: entry {name!r} is an absolute path")
    parts = name.rstrip("/").split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise BadArchive(f"{where}: entry {name!r} has an empty, '.' or '..' segment (it would escape the archive)")
    return name


@dataclass(frozen=True)
class Entry:
    """One file of the archive: ``name`` is its path under the top folder, NFC; ``raw`` where it really is."""

    name: str
    raw: str
    size: int


class ExportSource:
    """An Edifice export opened for reading: its top folder, its files and their bytes.

    Use :meth:`open_path` (zip or folder). Thread-safe: each read opens its own handle.
    """

    def __init__(self, label: str, top: str, entries: dict[str, Entry], dirs: set[str], limits: Limits) -> None:
        self.label = label
        self.top = top
        self.entries = entries
        self.dirs = dirs
        self.limits = limits

    # -- what subclasses provide -------------------------------------------------------
    def _stream(self, entry: Entry) -> Iterator[bytes]:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- reading --------------------------------------------------------------------------
    def where(self, name: str | None = None) -> str:
        return f"archive {self.label}" + (f", entry {self.top}/{name}" if name else "")

    def chunks(self, name: str) -> Iterator[bytes]:
        """The bytes of entry ``name``, checked against the size the archive announced."""
        entry = self.entries.get(name)
        if entry is None:
            raise BadArchive(f"{self.where(name)}: no such entry")
        seen = 0
        for block in self._stream(entry):
            seen += len(block)
            if seen > entry.size:
                raise BadArchive(f"{self.where(name)}: holds more bytes than the {entry.size} it announces")
            yield block
        if seen != entry.size:
            raise BadArchive(f"{self.where(name)}: announces {entry.size} bytes but holds {seen}")

    def read(self, name: str, *, limit: int | None = None) -> bytes:
        entry = self.entries.get(name)
        if entry is None:
            raise BadArchive(f"{self.where(name)}: no such entry")
        cap = self.limits.max_json_bytes if limit is None else limit
        if entry.size > cap:
            raise BadArchive(f"{self.where(name)}: {entry.size} bytes is more than the {cap} we parse")
        return b"".join(self.chunks(name))

    def read_json(self, name: str) -> Any:
        data = self.read(name)
        try:
            return json.loads(data.decode("utf-8-sig"))
        except UnicodeDecodeError as exc:
            raise BadArchive(f"{self.where(name)}: not UTF-8 ({exc.reason} at byte {exc.start})") from None
        except json.JSONDecodeError as exc:
            raise BadArchive(f"{self.where(name)}: not JSON ({exc.msg} at line {exc.lineno} "
                             f"column {exc.colno})") from None

    def owner(self) -> str:
        """The user id in the top folder's name (``<ms>_<user id>``, as Edifice's getUserId reads it)."""
        return owner_of(self.top)

    def close(self) -> None:
        pass

    @classmethod
    def open_path(cls, path: Path, limits: Limits | None = None) -> ExportSource:
        limits = limits or Limits()
        if path.is_dir():
            return FolderSource.open(path, limits)
        return ZipSource.open(path, limits)


def owner_of(top: str) -> str:
    stamp, sep, user = top.partition("_")
    if not sep or not stamp.isdigit() or not user or "/" in user:
        raise BadArchive(f"top folder {top!r} is not <export time in ms>_<user id>, as Edifice names exports")
    return user


def _nfc(name: str, seen: dict[str, str], where: str) -> str:
    norm = unicodedata.normalize("NFC", name)
    if norm in seen and seen[norm] != name:
        raise BadArchive(f"{where}: entries {seen[norm]!r} and {name!r} are the same name in another Unicode form")
    if norm in seen:
        raise BadArchive(f"{where}: entry {name!r} appears twice")
    seen[norm] = name
    return norm


def _split_top(name: str, top: str | None, where: str) -> tuple[str, str]:
    head, sep, rest = name.partition("/")
    if top is not None and head != top:
        raise BadArchive(f"{where}: entry {name!r} is outside the top folder {top!r}; an Edifice export holds "
                         "exactly one top folder")
    return head, rest if sep else ""


class ZipSource(ExportSource):
    def __init__(self, path: Path, *args: Any) -> None:
        super().__init__(*args)
        self.path = path
        self._local = threading.local()

    @classmethod
    def open(cls, path: Path, limits: Limits) -> ZipSource:
        label = str(path)
        try:
            zf = zipfile.ZipFile(path)
        except zipfile.BadZipFile as exc:
            raise BadArchive(f"archive {label}: not a readable zip file ({exc}); truncated or not a zip") from None
        except OSError as exc:
            raise BadArchive(f"archive {label}: cannot be opened ({exc.strerror})") from None
        with zf:
            infos = zf.infolist()
            if len(infos) > limits.max_entries:
                raise BadArchive(f"archive {label}: {len(infos)} entries, more than the {limits.max_entries} allowed")
            top: str | None = None
            seen: dict[str, str] = {}
            entries: dict[str, Entry] = {}
            dirs: set[str] = set()
            total = 0
            for info in infos:
                where = f"archive {label}"
                name = safe_entry_name(info.filename, where)
                mode = info.external_attr >> 16
                if stat.S_ISLNK(mode):
                    raise BadArchive(f"{where}: entry {name!r} is a symbolic link")
                if info.flag_bits & 0x1:
                    raise BadArchive(f"{where}: entry {name!r} is encrypted")
                head, rest = _split_top(name, top, where)
                top = head
                if info.is_dir():
                    if rest:
                        dirs.add(_nfc(rest.rstrip("/"), seen, where))
                    continue
                if not rest:
                    raise BadArchive(f"{where}: file {name!r} at the top level; an Edifice export holds exactly one "
                                     "top folder")
                if info.file_size > limits.max_entry_bytes:
                    raise BadArchive(f"{where}: entry {name!r} is {info.file_size} bytes, more than the "
                                     f"{limits.max_entry_bytes} allowed")
                if (info.file_size > limits.ratio_floor
                        and info.file_size > limits.max_ratio * max(info.compress_size, 1)):
                    raise BadArchive(f"{where}: entry {name!r} expands {info.compress_size} bytes to "
                                     f"{info.file_size} (ratio above {limits.max_ratio}): a zip bomb")
                total += info.file_size
                if total > limits.max_total_bytes:
                    raise BadArchive(f"{where}: more than {limits.max_total_bytes} bytes uncompressed")
                norm = _nfc(rest, seen, where)
                entries[norm] = Entry(norm, info.filename, info.file_size)
            if top is None:
                raise BadArchive(f"archive {label}: empty zip")
            packed = sum(i.compress_size for i in infos)
            if total > limits.ratio_floor and total > limits.max_ratio * max(packed, 1):
                raise BadArchive(f"archive {label}: {packed} bytes expand to {total} (ratio above "
                                 f"{limits.max_ratio}) across its entries: a zip bomb")
        return cls(path, label, top, entries, dirs, limits)

    def _zip(self) -> zipfile.ZipFile:
        zf = getattr(self._local, "zf", None)
        if zf is None:
            try:
                zf = self._local.zf = zipfile.ZipFile(self.path)
            except (OSError, zipfile.BadZipFile) as exc:
                raise BadArchive(f"archive {self.label}: cannot be opened again ({exc})") from None
        return zf

    def _stream(self, entry: Entry) -> Iterator[bytes]:
        try:
            with self._zip().open(entry.raw) as f:
                while block := f.read(CHUNK):
                    yield block
        except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
            raise BadArchive(f"{self.where(entry.name)}: cannot be read ({type(exc).__name__}: {exc}); "
                             "the zip is damaged or truncated") from None

    def close(self) -> None:
        zf = getattr(self._local, "zf", None)
        if zf is not None:
            zf.close()
            self._local.zf = None


class FolderSource(ExportSource):
    """The unpacked export folder (what Edifice zips, and what :mod:`.staging` writes)."""

    def __init__(self, path: Path, *args: Any) -> None:
        super().__init__(*args)
        self.path = path

    @classmethod
    def open(cls, path: Path, limits: Limits) -> FolderSource:
        label = str(path)
        top = path.name
        entries: dict[str, Entry] = {}
        dirs: set[str] = set()
        seen: dict[str, str] = {}
        total = 0
        stack = [("", path)]
        while stack:
            rel, here = stack.pop()
            with os.scandir(here) as it:
                for de in it:
                    name = f"{rel}/{de.name}" if rel else de.name
                    where = f"archive {label}"
                    safe_entry_name(name, where)
                    if de.is_symlink():
                        raise BadArchive(f"{where}: entry {name!r} is a symbolic link")
                    if de.is_dir(follow_symlinks=False):
                        dirs.add(_nfc(name, seen, where))
                        stack.append((name, Path(de.path)))
                        continue
                    size = de.stat(follow_symlinks=False).st_size
                    if size > limits.max_entry_bytes:
                        raise BadArchive(f"{where}: entry {name!r} is {size} bytes, more than the "
                                         f"{limits.max_entry_bytes} allowed")
                    total += size
                    if total > limits.max_total_bytes or len(entries) >= limits.max_entries:
                        raise BadArchive(f"{where}: more than {limits.max_entries} entries or "
                                         f"{limits.max_total_bytes} bytes")
                    norm = _nfc(name, seen, where)
                    entries[norm] = Entry(norm, name, size)
        return cls(path, label, top, entries, dirs, limits)

    def _stream(self, entry: Entry) -> Iterator[bytes]:
        try:
            with open(self.path / entry.raw, "rb") as f:
                while block := f.read(CHUNK):
                    yield block
        except OSError as exc:
            raise BadArchive(f"{self.where(entry.name)}: cannot be read ({exc.strerror})") from None
