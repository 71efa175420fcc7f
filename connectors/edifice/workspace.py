"""The workspace app (``org.entcore.workspace``, "Espace documentaire") <-> the documents vertical.

Layout, from ``WorkspaceRepositoryEvents.exportResources`` and ``FolderExporter`` (entcore
6.15.4 and its common library): the app folder holds

* an *index*: a JSON array of the Mongo ``documents`` rows exported, named like the
  workspace's title in the user's language (import falls back to ``Documents``), each row
  with ``localArchivePath``, where its file lies under the app folder;
* one folder per category the export queried, named by its translated title: the user's
  documents, documents shared with them, documents their apps added (``protected``), the
  trash (``deleted``); under each, the folder tree (``eParent`` links) and the files;
* ``skipDocs`` when the user exported rows without files.

Edifice's import (``FolderImporter.importFoldersWorkspaceFormat``) reads only the index
and the files its rows point at, and rebuilds the tree from ``eParent``, sending orphans
to the root. So does this module. An item's id and path are the category's folder, then
the names along ``eParent`` within that category, then the row's name; two rows with the
same path get ids told apart by their ``_id``. Everything a row holds is kept verbatim
in the item's ``extra.edifice.row``.
"""
from __future__ import annotations

import re
import unicodedata
import uuid
from collections.abc import Callable
from collections.abc import Set as AbstractSet
from typing import Any
from zoneinfo import ZoneInfo

from connectors.sdk import BadItem, Item
from connectors.sdk.items import parent_path

from . import dates
from .archive import BadArchive, ExportSource, safe_entry_name
from .sidecar import Draft, Sidecar, edifice_extra, residual

VERTICAL = "documents"
APP = "workspace"
SKIP_DOCS = "skipDocs"
#: Category titles, accents stripped (workspace/src/main/resources/i18n/{fr,en}.json; the
#: export strips accents from them). The French ones are what this connector writes.
CATEGORIES_FR = {"documents": "Documents personnels", "shared": "Documents partages",
                 "appDocuments": "Documents ajoutes dans les applis", "trash": "Corbeille"}
CATEGORIES_EN = {"documents": "My documents", "shared": "Documents shared with me",
                 "appDocuments": "Files added in my apps", "trash": "Trash"}
KNOWN_CATEGORIES = set(CATEGORIES_FR.values()) | set(CATEGORIES_EN.values())
INDEX_FR = "Espace documentaire"
_MEDIA = re.compile(r"^[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+( *;.*)?$")
_FORBIDDEN = re.compile(r'[<>:"|?*\x00-\x1f]')
NAMESPACE = uuid.UUID("3d1f8a52-5b0e-4a53-9d55-6b2d3f1e7c10")


def segment(name: Any) -> str:
    """A row's name as one path segment (FolderExporter.cleanName replaces '/' and '\\' too)."""
    text = unicodedata.normalize("NFC", str(name if name is not None else "undefined"))
    text = text.replace("/", "_").replace("\\", "_").replace("\x00", "_").strip()
    return "_" if text in ("", ".", "..") else text


def disk_segment(name: str) -> str:
    return _FORBIDDEN.sub("_", name)


def category_of(row: dict[str, Any]) -> str:
    """The category folder a row was exported under: its localArchivePath's first segment, else its flags."""
    lap = row.get("localArchivePath")
    if isinstance(lap, str) and "/" in lap:
        return segment(lap.split("/", 1)[0])
    if row.get("deleted") is True:
        return CATEGORIES_FR["trash"]
    if row.get("protected") is True:
        return CATEGORIES_FR["appDocuments"]
    if row.get("isShared") is True:
        return CATEGORIES_FR["shared"]
    return CATEGORIES_FR["documents"]


def _rights(share: dict[str, Any]) -> list[str]:
    """Edifice grants are ``"<controller>|<method>": true``; read the method names."""
    found = {"read"}
    for key, on in share.items():
        if on is not True or "|" not in key:
            continue
        method = key.rsplit("|", 1)[1].lower()
        if "share" in method:
            found.add("manage")
        elif any(w in method for w in ("update", "move", "rename", "delete", "trash", "restore", "copy", "contrib")):
            found.add("write")
        elif "comment" in method:
            found.add("comment")
    return [r for r in ("read", "comment", "write", "manage") if r in found]


def row_metadata(row: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """What a row says in the archive format's terms; the row itself goes in extra."""
    meta: dict[str, Any] = {}
    if row.get("eType") == "file":
        ctype = (row.get("metadata") or {}).get("content-type") if isinstance(row.get("metadata"), dict) else None
        if isinstance(ctype, str) and _MEDIA.match(ctype):
            meta["media_type"] = ctype
    owner = row.get("owner")
    if isinstance(owner, str) and owner:
        meta["owner"] = {"id": owner, **({"name": row["ownerName"]} if isinstance(row.get("ownerName"), str) else {})}
    for field in ("created", "modified"):
        iso = dates.to_iso(row.get(field), tz)
        if iso:
            meta[field] = iso
    sharing = []
    for share in row.get("shared") or []:
        if not isinstance(share, dict):
            continue
        for kind, key in (("person", "userId"), ("group", "groupId")):
            if isinstance(share.get(key), str) and share[key]:
                sharing.append({"principal": {"type": kind, "id": share[key]}, "rights": _rights(share)})
    if sharing:
        meta["sharing"] = sharing
    meta["extra"] = {"edifice": {"app": APP, "row": row}}
    return meta


class Workspace:
    """The workspace rows of one export and the app folder they live in."""

    def __init__(self, folder: str, index_name: str, rows: list[dict[str, Any]]) -> None:
        self.folder = folder
        self.index_name = index_name
        self.rows = rows

    # -- reading ----------------------------------------------------------------------------
    @classmethod
    def load(cls, src: ExportSource, folder: str) -> Workspace:
        here = [n for n in src.entries if n.startswith(folder + "/") and "/" not in n[len(folder) + 1:]]
        if f"{folder}/{SKIP_DOCS}" in here:
            raise BadArchive(f"{src.where(folder + '/' + SKIP_DOCS)}: the user exported the workspace without its "
                             "files; its documents cannot be taken in")
        names = [n[len(folder) + 1:] for n in here]
        preferred = [n for n in (folder, INDEX_FR, "Workspace", "Documents") if n in names]
        index_name = None
        for name in preferred + sorted(set(names) - set(preferred)):
            if src.entries[f"{folder}/{name}"].size > src.limits.max_json_bytes:
                continue
            try:
                doc = src.read_json(f"{folder}/{name}")
            except BadArchive:
                if name in preferred:
                    raise
                continue
            if isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
                index_name = name
                break
        if index_name is None:
            raise BadArchive(f"{src.where(folder)}: no workspace index (the JSON array of document rows named "
                             f"like the workspace's title, or 'Documents')")
        rows = doc
        seen: set[str] = set()
        for n, row in enumerate(rows):
            at = f"{src.where(folder + '/' + index_name)}, row {n}"
            rid = row.get("_id")
            if not isinstance(rid, str) or not rid:
                raise BadArchive(f"{at}: no _id")
            if rid in seen:
                raise BadArchive(f"{at}: _id {rid!r} appears twice")
            seen.add(rid)
            if row.get("eType") not in ("file", "folder"):
                raise BadArchive(f"{at} ({rid}): eType {row.get('eType')!r} is neither file nor folder")
            if row["eType"] == "file":
                lap = row.get("localArchivePath")
                if not isinstance(lap, str):
                    raise BadArchive(f"{at} ({rid}): a file without localArchivePath")
                safe_entry_name(lap, at)
                name = unicodedata.normalize("NFC", f"{folder}/{lap}")
                if name not in src.entries:
                    raise BadArchive(f"{at} ({rid}): localArchivePath {lap!r} is not in the archive")
        return cls(folder, index_name, rows)

    def entries_used(self) -> set[str]:
        used = {f"{self.folder}/{self.index_name}"}
        used |= {unicodedata.normalize("NFC", f"{self.folder}/{r['localArchivePath']}")
                 for r in self.rows if r.get("eType") == "file"}
        return used

    def natural_paths(self) -> dict[str, str]:
        """_id -> category / names along eParent (same category only) / name."""
        by_id = {r["_id"]: r for r in self.rows}
        out: dict[str, str] = {}

        def path(row: dict[str, Any], trail: tuple[str, ...]) -> str:
            rid = row["_id"]
            if rid in out:
                return out[rid]
            cat = category_of(row)
            parent = by_id.get(row.get("eParent")) if isinstance(row.get("eParent"), str) else None
            if parent is not None and parent["eType"] == "folder" and category_of(parent) == cat \
                    and parent["_id"] not in trail:
                p = f"{path(parent, trail + (rid,))}/{segment(row.get('name'))}"
            else:
                p = f"{cat}/{segment(row.get('name'))}"
            out[rid] = p
            return p

        for row in self.rows:
            path(row, ())
        return out

    def drafts(self, sidecar: Sidecar, tz: ZoneInfo, entry_size: Callable[[str], int]) -> list[Draft]:
        paths = self.natural_paths()
        taken = {e["id"] for e in sidecar.items.get(VERTICAL, {}).values()}
        out: list[Draft] = []
        for row in self.rows:
            rid = row["_id"]
            natural = paths[rid]
            entry = sidecar.entry(VERTICAL, rid)
            if entry is not None:
                item_id = entry["id"]
            else:
                item_id = natural
                if item_id in taken:
                    stem, dot, ext = natural.rpartition(".")
                    item_id = (f"{stem} [{rid}].{ext}" if dot and "/" not in ext else f"{natural} [{rid}]")
                    if item_id in taken:
                        raise BadArchive(f"workspace rows: cannot give row {rid!r} an id of its own")
                taken.add(item_id)
            is_file = row["eType"] == "file"
            locator = unicodedata.normalize("NFC", f"{self.folder}/{row['localArchivePath']}") if is_file else None
            draft = Draft(rid, item_id, natural, row["eType"], row_metadata(row, tz),
                          entry_size(locator) if locator else 0, locator)
            out.append(sidecar.apply(VERTICAL, draft))
        return out

    # -- writing ----------------------------------------------------------------------------
    def find(self, drafts: list[Draft], item_id: str) -> dict[str, Any] | None:
        for d in drafts:
            if d.id == item_id:
                return next(r for r in self.rows if r["_id"] == d.key)
        return None

    def put(self, item: Item, drafts: list[Draft], tz: ZoneInfo, owner: str,
            occupied: AbstractSet[str] = frozenset()) -> tuple[dict[str, Any] | None, dict[str, Any], str | None]:
        """Build the row for ``item``; returns (old row, new row, localArchivePath of its file).

        The caller stores the row and the bytes; nothing here touches the disk.
        """
        existing = self.find(drafts, item.id)
        born = edifice_extra(item.metadata)
        base_row = born.get("row") if born.get("app") == APP and isinstance(born.get("row"), dict) else None
        base = dict(base_row if base_row is not None else (existing or {}))
        used_ids = {r["_id"] for r in self.rows} - ({existing["_id"]} if existing else set())
        if existing is not None:
            rid = existing["_id"]
        elif isinstance(base.get("_id"), str) and base["_id"] and base["_id"] not in used_ids:
            rid = base["_id"]
        else:
            rid = str(uuid.uuid5(NAMESPACE, f"{owner}\x00{item.id}"))
            if rid in used_ids:
                raise BadItem(f"row id {rid} is already taken in this archive")
        row = dict(base)
        row["_id"] = rid
        row["eType"] = item.kind
        head, _, rest = item.path.partition("/")
        category = head if rest and head in KNOWN_CATEGORIES else CATEGORIES_FR["documents"]
        if not (rest and head in KNOWN_CATEGORIES):
            rest = item.path
        name = rest.rsplit("/", 1)[-1]
        if segment(base.get("name")) != name:
            row["name"] = name
        parent_item = parent_path(item.path)
        parent_id = None
        if parent_item and parent_item != category:
            for d in drafts:
                if d.kind == "folder" and d.path == parent_item and d.key != rid:
                    parent_id = d.key
                    break
        if parent_id is not None or "eParent" not in row:
            row["eParent"] = parent_id
        meta = item.metadata
        derived = row_metadata(base, tz) if base else {}
        owner_meta = meta.get("owner")
        if isinstance(owner_meta, dict) and derived.get("owner") != owner_meta:
            row["owner"] = owner_meta["id"]
            if "name" in owner_meta:
                row["ownerName"] = owner_meta["name"]
        elif not isinstance(row.get("owner"), str):
            row["owner"] = owner
        for field in ("created", "modified"):
            if field in meta and derived.get(field) != meta[field]:
                row[field] = dates.to_edifice(meta[field], tz)
        lap: str | None = None
        if item.kind == "file":
            row.setdefault("file", str(uuid.uuid5(NAMESPACE, f"{owner}\x00file\x00{item.id}")))
            fmeta = dict(row["metadata"]) if isinstance(row.get("metadata"), dict) else {}
            if "media_type" in meta and derived.get("media_type") != meta["media_type"]:
                fmeta["content-type"] = meta["media_type"]
            fmeta.setdefault("content-type", "application/octet-stream")
            fmeta["size"] = item.size
            if not base or ("filename" in fmeta and row.get("name") != base.get("name")):
                fmeta["filename"] = row.get("name")
            row["metadata"] = fmeta
            lap = self._place(row, base, category, rest, rid, occupied)
        else:
            if not isinstance(row.get("localArchivePath"), str) or category_of(row) != category:
                row["localArchivePath"] = f"{category}/{disk_segment(name)}"
        return existing, row, lap

    def _place(self, row: dict[str, Any], base: dict[str, Any], category: str, rest: str, rid: str,
               occupied: AbstractSet[str]) -> str:
        """Where the file goes under the app folder: the row's own place if free, else a new one.

        ``occupied``: names under the app folder held by other files (opaque ones too)."""
        mine = next((r.get("localArchivePath") for r in self.rows if r["_id"] == rid), None)
        others = {r.get("localArchivePath") for r in self.rows if r["_id"] != rid and r.get("eType") == "file"}
        others |= occupied - {mine}
        old = base.get("localArchivePath")
        if isinstance(old, str) and old not in others and old.split("/", 1)[0] == category and "/" in old:
            try:
                safe_entry_name(old, "localArchivePath")
                lap = old
            except BadArchive:
                old = None
        if not (isinstance(old, str) and old not in others and old.split("/", 1)[0] == category and "/" in old):
            lap = f"{category}/" + "/".join(disk_segment(s) for s in rest.split("/"))
            if lap in others:
                stem, dot, ext = lap.rpartition(".")
                lap = f"{stem}_{rid}.{ext}" if dot and "/" not in ext else f"{lap}_{rid}"
        row["localArchivePath"] = lap
        return lap

    def store(self, old: dict[str, Any] | None, row: dict[str, Any], drafts: list[Draft], item_path: str) -> None:
        if old is None:
            self.rows.append(row)
        else:
            self.rows[self.rows.index(old)] = row
        if row["eType"] == "folder":
            # Rows written before their folder arrived sit at the root (eParent null): give
            # them their folder now, as Edifice shows trees by eParent only.
            orphans = {d.key for d in drafts if parent_path(d.path) == item_path and d.key != row["_id"]}
            for n, other in enumerate(self.rows):
                if other["_id"] in orphans and other.get("eParent") is None:
                    self.rows[n] = {**other, "eParent": row["_id"]}

    def sidecar_entry(self, item: Item, row: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
        paths = self.natural_paths()
        return residual(item.id, item.path, dict(item.metadata), paths[row["_id"]], row_metadata(row, tz))
