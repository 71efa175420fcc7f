"""One Edifice export read as vault items: mapped apps per vertical, everything else opaque.

Mapped: the workspace (documents, :mod:`.workspace`). Everything else the archive holds is
*opaque*: each file is a documents item ``edifice-archive/<path under the top folder>``
with its bytes as they are, each folder (an app's folder, listed in Manifest.json or not,
and the folders inside apps that are not mapped) a folder item, the app's Manifest.json
entry in ``extra.edifice.manifest``. So an app this connector does not know (blog,
calendar, homework, wiki...) goes through the vault byte for byte and comes back in the
archive it came from.
"""
from __future__ import annotations

import mimetypes
from typing import Any
from zoneinfo import ZoneInfo

from . import manifest as mf
from .archive import BadArchive, ExportSource
from .sidecar import HELD, SIDECAR, Draft, Sidecar
from .workspace import Workspace

OPAQUE = "edifice-archive"
RESERVED = {mf.MANIFEST, SIDECAR}


def opaque_id(name: str) -> str:
    return f"{OPAQUE}/{name}"


class ArchiveView:
    """The parsed export: its manifest, mapped apps, sidecar, and what is left (opaque)."""

    def __init__(self, src: ExportSource, tz: ZoneInfo) -> None:
        self.src = src
        self.tz = tz
        self.top = src.top
        self.owner = src.owner()
        where = src.where()
        if mf.MANIFEST not in src.entries:
            raise BadArchive(f"{where}: no {mf.MANIFEST} in {self.top}/; not an Edifice export")
        top_folders = {n.split("/", 1)[0] for n in src.entries if "/" in n} | {d.split("/", 1)[0] for d in src.dirs}
        top_folders.discard(HELD)
        self.apps = mf.parse(src.read_json(mf.MANIFEST), top_folders, src.where(mf.MANIFEST))
        self.unlisted = sorted(top_folders - {a.folder for a in self.apps})
        self.sidecar = (Sidecar.parse(src.read_json(SIDECAR), src.where(SIDECAR)) if SIDECAR in src.entries
                        else Sidecar())
        ws = self.app("workspace")
        self.workspace = Workspace.load(src, ws.folder) if ws else None

    def app(self, name: str) -> mf.AppEntry | None:
        return next((a for a in self.apps if a.app == name), None)

    # -- items --------------------------------------------------------------------------------
    def drafts(self, vertical: str) -> list[Draft]:
        out: list[Draft] = []
        if vertical == "documents":
            if self.workspace is not None:
                out += self.workspace.drafts(self.sidecar, self.tz, lambda n: self.src.entries[n].size)
            out += self.opaque_drafts()
        return sorted(out, key=lambda d: (d.path.count("/"), d.kind != "folder", d.id))

    def mapped_entries(self) -> set[str]:
        return self.workspace.entries_used() if self.workspace else set()

    def mapped_folders(self) -> set[str]:
        """Top folders whose inside is mapped (their folder structure comes from rows)."""
        return {self.workspace.folder} if self.workspace else set()

    def opaque_drafts(self) -> list[Draft]:
        used = self.mapped_entries()
        mapped = self.mapped_folders()
        drafts: list[Draft] = []
        folders: dict[str, dict[str, Any]] = {}
        for app in self.apps:
            folders[app.folder] = {"extra": {"edifice": {"manifest": {app.key: app.raw}}}}
        for name in self.unlisted:
            folders[name] = {"extra": {"edifice": {"unlisted": True}}}
        inner = set(self.src.dirs)
        for name in self.src.entries:
            parts = name.split("/")[:-1]
            inner |= {"/".join(parts[:i]) for i in range(1, len(parts) + 1)}
        for d in sorted(inner):
            top = d.split("/", 1)[0]
            if "/" in d and top not in mapped and top != HELD:
                folders.setdefault(d, {})
        for name, meta in folders.items():
            if (self.sidecar.entry("documents", f"folder:{name}") or {}).get("implied"):
                continue  # made by the importer for a file's sake, never an item of its own
            draft = Draft(f"folder:{name}", opaque_id(name), opaque_id(name), "folder", meta, 0)
            drafts.append(self.sidecar.apply("documents", draft))
        for name, entry in self.src.entries.items():
            if name in RESERVED or name in used:
                continue
            shown = name[len(HELD) + 1:] if name.startswith(HELD + "/") else name
            meta = {}
            guessed = mimetypes.guess_type(shown, strict=True)[0]
            if guessed:
                meta["media_type"] = guessed
            draft = Draft(f"entry:{shown}", opaque_id(shown), opaque_id(shown), "file", meta, entry.size, name)
            drafts.append(self.sidecar.apply("documents", draft))
        return drafts
