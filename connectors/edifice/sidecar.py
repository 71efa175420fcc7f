"""What Relais keeps in an archive it writes, beside Edifice's own files: ``relais.json``.

An Edifice row cannot hold everything a vault item says (an id from another ENT, a
description, sharing: Edifice's import makes imported documents private, see
``FolderImporter.sanitiseDocData``). So for every item it writes, the importer records at
the export's top level, in ``relais.json``, the item's id, its path when the row does not
give it back, and its *residual* metadata: the fields whose value differs from what the
row itself says (``metadata``) and the fields the row says that the item did not have
(``absent``). Reading applies them over what the rows say, so archive -> items -> archive
-> items gives back the same items exactly. Edifice's import reads only the folders its
Manifest.json names, so it ignores this file.

Root files Edifice would check (``archive.signature``: per-folder RSA signatures that no
longer match once Relais rewrote a folder) are held under ``relais-held/`` instead of the
top level, and come back under their own name.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from connectors.sdk import check_path

from .archive import BadArchive

SIDECAR = "relais.json"
HELD = "relais-held"
#: Root files that must not sit at the top of an archive Relais rewrote.
HOLD = frozenset({"archive.signature"})


@dataclass
class Draft:
    """An item as an archive holds it, before the sidecar and before its content is read.

    ``key`` names it within its app (a row's ``_id``, an entry's name); ``locator`` says
    where its bytes are (an entry name, or a row field for message bodies).
    """

    key: str
    id: str
    path: str
    kind: str
    metadata: dict[str, Any]
    size: int
    locator: str | None = None
    sha256: str | None = None


@dataclass
class Sidecar:
    """``relais.json``: per vertical, per key, what the importer could not say in Edifice's terms."""

    items: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)

    @classmethod
    def parse(cls, doc: Any, where: str) -> Sidecar:
        if not isinstance(doc, dict) or doc.get("relais") != 1 or not isinstance(doc.get("items"), dict):
            raise BadArchive(f"{where}: {SIDECAR} is not a Relais sidecar (version 1 with items)")
        for vertical, entries in doc["items"].items():
            if not isinstance(entries, dict):
                raise BadArchive(f"{where}: {SIDECAR} items of {vertical!r} must be an object")
            for key, entry in entries.items():
                ok = (isinstance(entry, dict) and isinstance(entry.get("id"), str)
                      and isinstance(entry.get("metadata", {}), dict)
                      and isinstance(entry.get("absent", []), list)
                      and isinstance(entry.get("path", ""), str) and entry.get("implied", False) in (True, False))
                if not ok:
                    raise BadArchive(f"{where}: {SIDECAR} entry {vertical}/{key} is malformed")
                try:
                    check_path(entry["id"])
                    if "path" in entry:
                        check_path(entry["path"], "path")
                except Exception:
                    raise BadArchive(f"{where}: {SIDECAR} entry {vertical}/{key} has an unsafe id or path") from None
        return cls(items=doc["items"])

    def render(self) -> dict[str, Any]:
        return {"relais": 1, "items": {v: dict(sorted(e.items())) for v, e in sorted(self.items.items()) if e}}

    def entry(self, vertical: str, key: str) -> dict[str, Any] | None:
        return self.items.get(vertical, {}).get(key)

    def set(self, vertical: str, key: str, entry: dict[str, Any] | None) -> None:
        bucket = self.items.setdefault(vertical, {})
        if entry is None:
            bucket.pop(key, None)
        else:
            bucket[key] = entry

    def apply(self, vertical: str, draft: Draft) -> Draft:
        """The draft as the item that was written: its id, path and metadata."""
        entry = self.entry(vertical, draft.key)
        if entry is None:
            return draft
        meta = {k: v for k, v in draft.metadata.items() if k not in set(entry.get("absent", []))}
        meta.update(entry.get("metadata", {}))
        return Draft(draft.key, entry["id"], entry.get("path", draft.path), draft.kind, meta, draft.size,
                     draft.locator, draft.sha256)


def edifice_extra(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """``extra.edifice`` of an item's metadata, what it says of the archive it was read from ({} if none)."""
    extra = metadata.get("extra")
    edifice = extra.get("edifice") if isinstance(extra, dict) else None
    return edifice if isinstance(edifice, dict) else {}


def residual(item_id: str, item_path: str, wanted: Mapping[str, Any], derived_path: str,
             derived: Mapping[str, Any]) -> dict[str, Any]:
    """The sidecar entry that turns what a row says (``derived``) into the item that was written."""
    entry: dict[str, Any] = {"id": item_id}
    if item_path != derived_path:
        entry["path"] = item_path
    diff = {k: v for k, v in wanted.items() if derived.get(k, _MISSING) != v}
    if diff:
        entry["metadata"] = diff
    gone = sorted(k for k in derived if k not in wanted)
    if gone:
        entry["absent"] = gone
    return entry


_MISSING = object()
