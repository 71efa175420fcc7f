"""An Edifice export being written: the unpacked folder, then the zip.

The importer writes into ``<target>/<ms>_<owner>/``, the folder Edifice itself fills before
zipping it (``FileSystemExportService.onExportDone``): files go straight to disk, and the
JSON files that list them (Manifest.json, the workspace index, relais.json) are rewritten
by :meth:`StagedArchive.flush`. :meth:`StagedArchive.pack` then zips the folder into
``<ms>_<owner>.zip`` (stored, not compressed, as Edifice does) with the folder at its top,
and removes the folder. An owner whose archive exists only as a zip is unpacked first
(through the same safe reader), so an import adds to it.
"""
from __future__ import annotations

import hashlib
import json
import mimetypes
import os
import shutil
import tempfile
import time
import zipfile
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from connectors.sdk import BadItem, Item, Outcome

from . import manifest as mf
from .archive import BadArchive, Entry, ExportSource, FolderSource, Limits, ZipSource, owner_of
from .sidecar import HELD, HOLD, SIDECAR, edifice_extra, residual
from .view import OPAQUE, RESERVED, ArchiveView
from .workspace import INDEX_FR, VERTICAL, Workspace


def find_exports(root: Path) -> dict[str, list[Path]]:
    """owner -> the exports (folders and zips) under ``root`` that are theirs."""
    found: dict[str, list[Path]] = {}
    if not root.is_dir():
        return found
    for child in sorted(root.iterdir()):
        if child.name.startswith("."):
            continue
        name = child.name[:-4] if child.suffix == ".zip" and child.is_file() else child.name if child.is_dir() else None
        if name is None:
            continue
        try:
            found.setdefault(owner_of(name), []).append(child)
        except Exception:  # not an export's name: not ours to read
            continue
    return found


def pick(owner: str, paths: list[Path]) -> Path:
    """The export to read for ``owner``: the folder being written wins over its own older zip."""
    tops = {p.name[:-4] if p.suffix == ".zip" else p.name for p in paths}
    if len(tops) > 1:
        raise BadArchive(f"owner {owner!r} has several exports ({', '.join(sorted(tops))}); keep one per owner")
    folders = [p for p in paths if p.is_dir()]
    return folders[0] if folders else paths[0]


class StagedArchive:
    """One owner's export open for writing (see the module docstring)."""

    def __init__(self, folder: Path, view: ArchiveView, tz: ZoneInfo) -> None:
        self.folder = folder
        self.view = view
        self.tz = tz
        self.dirty = False
        self._sha: dict[str, str] = {}

    @classmethod
    def open(cls, root: Path, owner: str, tz: ZoneInfo, limits: Limits) -> StagedArchive:
        existing = find_exports(root).get(owner)
        if existing:
            path = pick(owner, existing)
            folder = root / (path.name[:-4] if path.suffix == ".zip" else path.name)
            if path.suffix == ".zip" and not folder.exists():
                _unpack(ZipSource.open(path, limits), folder)
        else:
            folder = root / f"{int(time.time() * 1000)}_{owner}"
            folder.mkdir(parents=True)
            (folder / mf.MANIFEST).write_text("{}", encoding="utf-8")
        return cls(folder, ArchiveView(FolderSource.open(folder, limits), tz), tz)

    # -- bookkeeping ------------------------------------------------------------------------
    @property
    def src(self) -> ExportSource:
        return self.view.src

    def _write(self, name: str, item: Item | None = None, data: bytes | None = None) -> None:
        path = self.folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".relais-")
        h = hashlib.sha256()
        size = 0
        with os.fdopen(fd, "wb") as f:
            for block in (item.content.chunks() if item is not None else [data or b""]):
                f.write(block)
                h.update(block)
                size += len(block)
        os.replace(tmp, path)
        self.src.entries[name] = Entry(name, name, size)
        self._note_dirs(name)
        self._sha[name] = h.hexdigest()

    def _note_dirs(self, name: str) -> None:
        parts = name.split("/")[:-1]
        self.src.dirs.update("/".join(parts[:i]) for i in range(1, len(parts) + 1))

    def _remove(self, name: str) -> None:
        try:
            os.unlink(self.folder / name)
        except FileNotFoundError:
            pass
        self.src.entries.pop(name, None)
        self._sha.pop(name, None)

    def _sha256(self, name: str) -> str | None:
        if name not in self.src.entries:
            return None
        if name not in self._sha:
            h = hashlib.sha256()
            for block in self.src.chunks(name):
                h.update(block)
            self._sha[name] = h.hexdigest()
        return self._sha[name]

    def flush(self) -> None:
        """Rewrite the files that list the others; after it the folder is a complete export."""
        if not self.dirty:
            return
        view = self.view
        self._write(mf.MANIFEST, data=_json(mf.render(view.apps)))
        if view.workspace is not None:
            self._write(f"{view.workspace.folder}/{view.workspace.index_name}", data=_json(view.workspace.rows))
        rendered = view.sidecar.render()
        if rendered["items"]:
            self._write(SIDECAR, data=_json(rendered))
        else:
            self._remove(SIDECAR)
        self.dirty = False

    def pack(self) -> Path:
        """Zip the folder (top folder inside) next to it, atomically; remove the folder."""
        self.flush()
        target = self.folder.with_name(self.folder.name + ".zip")
        fd, tmp = tempfile.mkstemp(dir=self.folder.parent, prefix=".relais-", suffix=".zip")
        os.close(fd)
        top = self.folder.name
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
            zf.writestr(zipfile.ZipInfo(f"{top}/"), b"")
            for d in sorted(self.src.dirs):
                zf.writestr(zipfile.ZipInfo(f"{top}/{d}/"), b"")
            for name in sorted(self.src.entries):
                zf.write(self.folder / self.src.entries[name].raw, f"{top}/{name}")
        os.replace(tmp, target)
        shutil.rmtree(self.folder)
        return target

    # -- writing items ------------------------------------------------------------------------
    def put(self, item: Item) -> Outcome:
        if item.vertical != VERTICAL:
            raise BadItem(f"this archive writer takes documents, not {item.vertical}")
        if item.id == OPAQUE or item.id.startswith(OPAQUE + "/"):
            outcome = self._put_opaque(item)
        else:
            outcome = self._put_document(item)
        if outcome is not Outcome.UNCHANGED:
            self.dirty = True
        return outcome

    def _workspace(self) -> Workspace:
        view = self.view
        if view.workspace is None:
            app = view.app("workspace")
            if app is None:
                key, version = mf.MODULES["workspace"]
                app = mf.AppEntry(key, "workspace", INDEX_FR, {"version": version, "folder": INDEX_FR})
                view.apps.append(app)
                view.sidecar.set("documents", f"folder:{app.folder}", {"id": f"{OPAQUE}/{app.folder}", "implied": True})
            (self.folder / app.folder).mkdir(exist_ok=True)
            self.src.dirs.add(app.folder)
            view.workspace = Workspace(app.folder, app.folder, [])
            self.dirty = True
        return view.workspace

    def _put_document(self, item: Item) -> Outcome:
        ws = self._workspace()
        side = self.view.sidecar
        drafts = ws.drafts(side, self.tz, lambda n: self.src.entries[n].size)
        prefix = ws.folder + "/"
        occupied = {n[len(prefix):] for n in self.src.entries if n.startswith(prefix)}
        old, row, lap = ws.put(item, drafts, self.tz, self.view.owner, occupied)
        name = f"{ws.folder}/{lap}" if lap else None
        old_name = f"{ws.folder}/{old['localArchivePath']}" if old and old.get("eType") == "file" else None
        same_bytes = item.kind == "folder" or (name is not None and name == old_name
                                               and self._sha256(name) == item.sha256)
        old_entry = side.entry(VERTICAL, row["_id"])
        ws.store(old, row, drafts, item.path)
        new_entry = ws.sidecar_entry(item, row, self.tz)
        if old == row and same_bytes and old_entry == new_entry:
            return Outcome.UNCHANGED
        if not same_bytes and name is not None:
            self._write(name, item)
        if old_name and old_name != name and not any(
                f"{ws.folder}/{r.get('localArchivePath')}" == old_name for r in ws.rows if r.get("eType") == "file"):
            self._remove(old_name)
        side.set(VERTICAL, row["_id"], new_entry)
        return Outcome.CREATED if old is None else Outcome.UPDATED

    def _opaque_meta(self, name: str, kind: str) -> dict[str, Any]:
        if kind == "folder":
            if "/" in name:
                return {}
            app = next((a for a in self.view.apps if a.folder == name), None)
            return {"extra": {"edifice": {"manifest": {app.key: app.raw}}}} if app else {
                "extra": {"edifice": {"unlisted": True}}}
        guessed = mimetypes.guess_type(name, strict=True)[0]
        return {"media_type": guessed} if guessed else {}

    def _put_opaque(self, item: Item) -> Outcome:
        name = item.id[len(OPAQUE) + 1:]
        if not name:
            raise BadItem(f"{OPAQUE} alone names no entry of the archive")
        side = self.view.sidecar
        key = f"{'folder' if item.kind == 'folder' else 'entry'}:{name}"
        old_entry = side.entry(VERTICAL, key)
        if item.kind == "folder":
            existed = name in self.src.dirs and not (old_entry or {}).get("implied")
            if "/" not in name:
                self._set_manifest(name, item)
            (self.folder / name).mkdir(parents=True, exist_ok=True)
            self._note_dirs(name + "/x")
            self._imply_parents(name)
            same = existed
        else:
            disk = f"{HELD}/{name}" if name in HOLD else name
            if name in RESERVED or disk.startswith(HELD + "/") and name not in HOLD \
                    or disk in self.view.mapped_entries():
                raise BadItem(f"{item.id} would overwrite a file that the archive writer keeps itself")
            if disk in self.src.dirs:
                raise BadItem(f"a folder of the archive already has the path of {item.id}")
            existed = disk in self.src.entries
            same = existed and self._sha256(disk) == item.sha256
            self._imply_parents(name)
            if not same:
                self._write(disk, item)
        new_entry = residual(item.id, item.path, dict(item.metadata), item.id, self._opaque_meta(name, item.kind))
        if same and old_entry == new_entry:
            return Outcome.UNCHANGED
        side.set(VERTICAL, key, new_entry)
        return Outcome.UPDATED if existed else Outcome.CREATED

    def _imply_parents(self, name: str) -> None:
        parts = name.split("/")[:-1]
        side = self.view.sidecar
        for i in range(1, len(parts) + 1):
            d = "/".join(parts[:i])
            if d not in self.src.dirs and side.entry(VERTICAL, f"folder:{d}") is None:
                side.set(VERTICAL, f"folder:{d}", {"id": f"{OPAQUE}/{d}", "implied": True})
                (self.folder / d).mkdir(parents=True, exist_ok=True)
                self.src.dirs.add(d)
                self.dirty = True

    def _set_manifest(self, folder: str, item: Item) -> None:
        declared = edifice_extra(item.metadata).get("manifest")
        if not isinstance(declared, dict) or len(declared) != 1:
            return
        key, raw = next(iter(declared.items()))
        if isinstance(raw, dict) and raw.get("folder") != folder:
            raise BadItem(f"its manifest entry {key!r} names folder {raw.get('folder')!r}, not {folder!r}")
        if not isinstance(raw, (str, dict)):
            raise BadItem(f"its manifest entry {key!r} is neither a version nor an object")
        view = self.view
        app = mf.AppEntry(key, mf.app_of(key), folder, raw)
        current = next((a for a in view.apps if a.key == key), None)
        clash = next((a for a in view.apps if a.folder == folder and a.key != key), None)
        if clash is not None:
            raise BadItem(f"folder {folder!r} is already the folder of {clash.key!r}")
        if current is not None and current.folder != folder:
            self._move_app(current.folder, folder)
            view.sidecar.set(VERTICAL, f"folder:{current.folder}", None)
        if current is None:
            view.apps.append(app)
        else:
            view.apps[view.apps.index(current)] = app
        self.dirty = True

    def _move_app(self, old: str, new: str) -> None:
        """An app's folder first made under our default name takes the name its archive gave it."""
        if new in self.src.dirs:
            raise BadItem(f"cannot move the app's folder {old!r} to {new!r}: it exists")
        os.rename(self.folder / old, self.folder / new)
        for name in [n for n in self.src.entries if n.startswith(old + "/")]:
            entry = self.src.entries.pop(name)
            moved = new + name[len(old):]
            self.src.entries[moved] = Entry(moved, moved, entry.size)
            if name in self._sha:
                self._sha[moved] = self._sha.pop(name)
        self.src.dirs = {(new + d[len(old):]) if d == old or d.startswith(old + "/") else d for d in self.src.dirs}
        ws = self.view.workspace
        if ws is not None and ws.folder == old:
            ws.folder = new
            if ws.index_name == old:
                old_index = f"{new}/{old}"
                ws.index_name = new
                self._remove(old_index)


def _json(doc: Any) -> bytes:
    return json.dumps(doc, ensure_ascii=False, indent=2).encode("utf-8")


def _unpack(src: ExportSource, folder: Path) -> None:
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".relais-unpack-"))
    try:
        for d in src.dirs:
            (tmp / d).mkdir(parents=True, exist_ok=True)
        for name in src.entries:
            path = tmp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                for block in src.chunks(name):
                    f.write(block)
        os.rename(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        src.close()
