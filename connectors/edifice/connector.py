"""The Edifice archive connector: exports (zips or unpacked folders) in a folder, one per owner.

:class:`EdificeExporter` reads every export under a folder (``<ms>_<user id>.zip`` or the
unpacked ``<ms>_<user id>/``; the owner is the user id in the name) as documents items:
the workspace mapped (:mod:`.workspace`), every other app kept opaque (:mod:`.view`).
:class:`EdificeImporter` writes items into such a folder, one export per owner, and zips
each when closed (:mod:`.staging`).
"""
from __future__ import annotations

import os
import shutil
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from connectors.sdk import (
    Body,
    ConfigError,
    ConnectorError,
    Exporter,
    Importer,
    ImportReport,
    Item,
    ItemRef,
    NotFound,
    Outcome,
    Page,
    check_path,
)
from connectors.sdk.config import ConnectorConfig

from .archive import NAME, BadArchive, ExportSource, Limits
from .staging import StagedArchive, find_exports, pick
from .view import ArchiveView

VERTICALS = ("documents",)
DEFAULT_TIMEZONE = "Europe/Paris"


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"timezone {name!r} is not a known time zone", connector=NAME) from None


def _stamp(path: Path) -> tuple:
    """Changes whenever the export changes: the zip itself, or the listing files of a folder
    (rewritten through a new file at every import flush, so the inode moves too)."""
    if not path.is_dir():
        st = path.stat()
        return (st.st_ino, st.st_mtime_ns, st.st_size)
    out: list[tuple[str | int, ...]] = []
    for name in ("Manifest.json", "relais.json"):
        try:
            st = (path / name).stat()
            out.append((name, st.st_ino, st.st_mtime_ns, st.st_size))
        except FileNotFoundError:
            out.append((name,))
    return tuple(out)


class _EdificeArchives:
    """What the exporter and the importer share: the exports' folder, the server's time zone, the limits."""

    def _configure(self, root: Path | str, vertical: str, timezone: str, limits: Limits | None) -> None:
        if vertical not in VERTICALS:
            raise ConfigError(f"the Edifice archive connector handles {', '.join(VERTICALS)}, not {vertical!r}",
                              connector=NAME)
        self.root = Path(root)
        self.tz = _zone(timezone)
        self.limits = limits or Limits()


class EdificeExporter(_EdificeArchives, Exporter):
    """Reads the exports under ``root``. Options: ``timezone`` of the Edifice server (dates
    in Mongo rows carry none), ``limits`` against zip bombs and runaway archives."""

    def __init__(self, root: Path | str, vertical: str = "documents", *, timezone: str = DEFAULT_TIMEZONE,
                 limits: Limits | None = None) -> None:
        super().__init__(NAME, vertical)
        self._configure(root, vertical, timezone, limits)
        self._lock = threading.Lock()
        self._views: dict[Path, tuple[tuple, ArchiveView]] = {}

    def owners(self, cursor: str | None = None) -> Page[str]:
        return Page(sorted(find_exports(self.root)))

    def view(self, owner: str) -> ArchiveView:
        """The parsed export of ``owner`` (cached until the export changes)."""
        paths = find_exports(self.root).get(owner)
        if not paths:
            raise NotFound(f"no export for owner {owner!r} in {self.root}", connector=NAME)
        path = pick(owner, paths)
        stamp = _stamp(path)
        with self._lock:
            cached = self._views.get(path)
            if cached and cached[0] == stamp:
                return cached[1]
        view = ArchiveView(ExportSource.open_path(path, self.limits), self.tz)
        if view.owner != owner:
            raise BadArchive(f"{view.src.where()}: belongs to {view.owner!r}, not {owner!r}")
        with self._lock:
            old = self._views.pop(path, None)
            self._views[path] = (stamp, view)
        if old:
            old[1].src.close()
        return view

    def list(self, owner: str, cursor: str | None = None) -> Page[ItemRef]:
        view = self.view(owner)
        refs = []
        for d in view.drafts(self.vertical):
            try:
                item_id, path = check_path(d.id), check_path(d.path, "path")
            except ConnectorError:
                raise BadArchive(f"{view.src.where(d.locator)}: gives item id {d.id!r}, which is not a safe path",
                                 connector=NAME) from None
            refs.append(ItemRef(owner, self.vertical, item_id, path, d.kind, d.metadata,  # type: ignore[arg-type]
                                d.size, d.sha256, d.locator))
        return Page(refs)

    def open(self, ref: ItemRef) -> Body:
        view = self.view(ref.owner)
        locator = ref.locator
        if locator is None:
            found = next((d for d in view.drafts(ref.vertical) if d.id == ref.id), None)
            if found is None or found.locator is None:
                raise NotFound(f"no file item {ref.id!r} in the export of {ref.owner!r}", connector=NAME)
            locator = found.locator
        if locator not in view.src.entries:
            raise NotFound(f"{view.src.where(locator)}: no such entry", connector=NAME)
        return Body(view.src.chunks(locator), size=view.src.entries[locator].size, url=view.src.where(locator))

    def close(self) -> None:
        with self._lock:
            views, self._views = self._views, {}
        for _, view in views.values():
            view.src.close()


class EdificeImporter(_EdificeArchives, Importer):
    """Writes items into exports under ``root``, one per owner; :meth:`close` zips them.

    Each :meth:`put` leaves the owner's export folder complete (its listing files rewritten);
    :meth:`import_items` rewrites them once at the end instead.
    """

    def __init__(self, root: Path | str, vertical: str = "documents", *, timezone: str = DEFAULT_TIMEZONE,
                 limits: Limits | None = None) -> None:
        super().__init__(NAME, vertical)
        self._configure(root, vertical, timezone, limits)
        self._lock = threading.RLock()
        self._staged: dict[str, StagedArchive] = {}
        self._changed: set[str] = set()
        self._batching = 0

    def staged(self, owner: str) -> StagedArchive:
        with self._lock:
            if owner not in self._staged:
                self.root.mkdir(parents=True, exist_ok=True)
                self._staged[owner] = StagedArchive.open(self.root, owner, self.tz, self.limits)
            return self._staged[owner]

    def write(self, item: Item) -> Outcome:
        with self._lock:
            try:
                staged = self.staged(item.owner)
                outcome = staged.put(item)
                if outcome is not Outcome.UNCHANGED:
                    self._changed.add(item.owner)
                if not self._batching:
                    staged.flush()
            except OSError as exc:
                raise ConnectorError(f"cannot write the export under {self.root}: {exc.strerror or exc}",
                                     connector=NAME) from None
            return outcome

    def import_items(self, items: Iterable[Item], *, stop_on_error: bool = False,
                     progress: Callable[[Item, Outcome | None, ConnectorError | None], None] | None = None
                     ) -> ImportReport:
        with self._lock:
            self._batching += 1
        try:
            return super().import_items(items, stop_on_error=stop_on_error, progress=progress)
        finally:
            with self._lock:
                self._batching -= 1
                if not self._batching:
                    for staged in self._staged.values():
                        staged.flush()

    def pack(self, owner: str) -> Path | None:
        """Zip ``owner``'s export now (if it changed) and forget it; returns the zip's path."""
        with self._lock:
            staged = self._staged.pop(owner, None)
            if staged is None:
                return None
            if owner in self._changed or not staged.folder.with_name(staged.folder.name + ".zip").exists():
                self._changed.discard(owner)
                return staged.pack()
            shutil.rmtree(staged.folder)  # unpacked from its zip and left as it was
            return staged.folder.with_name(staged.folder.name + ".zip")

    def close(self) -> None:
        with self._lock:
            for owner in list(self._staged):
                self.pack(owner)


def _from_config(cls: Any) -> Callable[[ConnectorConfig, str], Any]:
    def build(config: ConnectorConfig, vertical: str) -> Any:
        options = dict(config.options)
        folder = options.pop("path", None)
        if not folder:
            raise ConfigError("options.path (the folder of Edifice exports) is required", connector=NAME)
        unknown = sorted(set(options) - {"timezone"})
        if unknown:
            raise ConfigError(f"unknown option(s) {', '.join(unknown)}; expected path, timezone", connector=NAME)
        return cls(Path(os.path.expanduser(str(folder))), vertical,
                   timezone=str(options.get("timezone", DEFAULT_TIMEZONE)))
    return build


exporter_from_config = _from_config(EdificeExporter)
importer_from_config = _from_config(EdificeImporter)
