"""``Manifest.json``: which app exported what, in which folder, at which version.

Edifice writes it (``FileSystemExportService.addManifestToExport``) as an object whose keys
are the deployed modules' names (``<group>.<module>``, e.g. ``org.entcore.workspace``: the
launcher's ``ModuleDeployerDefault.addAppVersion`` turns ``org.entcore~workspace~6.15.4``
into that key and the version) and whose values are ``{"version": ..., "folder": ...}``,
``folder`` being the app's name in the user's language without accents. Older exports
have the version alone as the value; the importer (``DefaultImportService.parseFolders``)
then finds the folder from the app's translated name. The app is the key's last segment
without ``-``.
"""
from __future__ import annotations

import unicodedata
from dataclasses import dataclass
from typing import Any

from .archive import BadArchive

MANIFEST = "Manifest.json"

#: App -> its folder in a French export: portal/backend/src/main/resources/i18n/fr.json of
#: edificeio/entcore 6.15.4, accents stripped as StringUtils.stripAccents does.
FOLDERS_FR: dict[str, str] = {
    "workspace": "Espace documentaire", "conversation": "Messagerie", "blog": "Blog", "calendar": "Agenda",
    "homeworks": "Cahier de textes", "rack": "Casier", "actualites": "Actualites", "wiki": "Cours et Wiki",
    "scrapbook": "Cahier multimedia",
}

#: The module keys and versions this connector writes for the apps it maps (entcore 6.15.4,
#: the release whose layout it follows).
MODULES: dict[str, tuple[str, str]] = {
    "workspace": ("org.entcore.workspace", "6.15.4"),
    "conversation": ("org.entcore.conversation", "6.15.4"),
}


def strip_accents(text: str) -> str:
    return "".join(c for c in unicodedata.normalize("NFD", text) if not unicodedata.combining(c))


def app_of(key: str) -> str:
    """``org.entcore.workspace`` -> ``workspace`` (as DefaultImportService.parseFolders does)."""
    return key[key.rfind(".") + 1:].replace("-", "")


@dataclass
class AppEntry:
    """One Manifest.json entry: ``raw`` is its value verbatim (kept for writing it back)."""

    key: str
    app: str
    folder: str
    raw: Any

    @property
    def version(self) -> str | None:
        return self.raw if isinstance(self.raw, str) else self.raw.get("version")


def parse(doc: Any, top_folders: set[str], where: str) -> list[AppEntry]:
    """The entries of a Manifest.json; raises :class:`BadArchive` when it cannot be true of the archive."""
    if not isinstance(doc, dict):
        raise BadArchive(f"{where}: Manifest.json must be a JSON object of app entries, got {type(doc).__name__}")
    apps: list[AppEntry] = []
    taken: dict[str, str] = {}
    for key, value in doc.items():
        at = f"{where}: Manifest.json entry {key!r}"
        if not key or "/" in key:
            raise BadArchive(f"{at}: not a module name")
        app = app_of(key)
        if isinstance(value, str):
            folder = strip_accents(FOLDERS_FR.get(app, app))
            candidates = [f for f in (folder, app, app.capitalize()) if f in top_folders]
            if not candidates:
                raise BadArchive(f"{at}: names no folder and none of the archive's folders is {folder!r}")
            folder = candidates[0]
        elif isinstance(value, dict):
            named = value.get("folder")
            version = value.get("version")
            if not isinstance(named, str) or not isinstance(version, str):
                raise BadArchive(f"{at}: 'folder' and 'version' must be strings, got {value!r}")
            if named in ("", ".", "..") or "/" in named or "\\" in named or "\x00" in named:
                raise BadArchive(f"{at}: folder {named!r} is not a folder name inside the archive")
            folder = unicodedata.normalize("NFC", named)
            if folder not in top_folders:
                raise BadArchive(f"{at}: names folder {folder!r}, which the archive does not hold")
        else:
            raise BadArchive(f"{at}: must be a version string or an object with version and folder")
        if folder in taken:
            raise BadArchive(f"{at}: folder {folder!r} is already the folder of {taken[folder]!r}")
        taken[folder] = key
        apps.append(AppEntry(key, app, folder, value))
    return apps


def render(apps: list[AppEntry]) -> dict[str, Any]:
    return {a.key: a.raw for a in apps}
