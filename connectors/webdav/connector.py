"""Documents over WebDAV (RFC 4918): an owner is a collection under the base URL.

Layout at the server: ``<url>/<owner>/<folder tree>/<file>``. Item ids are the paths under the
owner's collection (NFC, decoded). Listing walks the tree one folder at a time (``Depth: 1``,
since many servers refuse ``Depth: infinity``); a page holds the children of as many folders as
make ``page_size`` items, and the cursor is the list of folders still to visit, so a listing
resumes where it stopped.

What Relais imports carries three dead properties in the ``urn:relais:vault:1`` namespace:
``metadata`` (the item's metadata as JSON), ``sha256`` and ``etag`` (the server's ETag right
after the upload). An export reads metadata from them when present (else from the live
properties: content type, dates), and announces the sha256 while the ETag has not changed,
so a file altered on the server since is not taken for what Relais wrote. A re-import
compares with them and writes nothing when bytes and metadata are the same.

Incremental sync (:meth:`WebDavExporter.changes`): where the server lists ``sync-collection`` in an
owner collection's ``supported-report-set``, RFC 6578's REPORT (``sync-level: infinite``) says what
changed since the last token; elsewhere (wsgidav) the owner is listed and ETags compared, in one
``Depth: infinity`` PROPFIND where the server allows it (folder by folder where it does not).

Options (``options`` in the configuration): ``page_size`` (default 500 items).
"""
from __future__ import annotations

import builtins
import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlsplit

from connectors.sdk import (
    BadResponse,
    Body,
    ConnectorConfig,
    ConnectorError,
    Exporter,
    Importer,
    Item,
    ItemRef,
    Kind,
    NotFound,
    Outcome,
    Page,
    TransientError,
    redact_url,
)
from connectors.sdk.http import announced_sha256, iter_body
from connectors.sdk.items import ref_label
from connectors.sdk.sync import ETAG, SYNC_COLLECTION, Changes, diff_listing, known_etags

from .client import DavClient
from .multistatus import DAV, RELAIS, DavResource, decode_path, http_date_to_iso, iso8601_to_iso, quote_segments
from .sync import offers_sync_collection, sync_collection

NAME = "webdav"
log = logging.getLogger("connectors.webdav")
LIST_PROPS = [(DAV, "resourcetype"), (DAV, "getcontentlength"), (DAV, "getlastmodified"), (DAV, "creationdate"),
              (DAV, "getcontenttype"), (DAV, "getetag"), (RELAIS, "metadata"), (RELAIS, "sha256"), (RELAIS, "etag")]
#: What a sync compares (half a server's work of LIST_PROPS on wsgidav: no dead property read).
SYNC_PROPS = [(DAV, "resourcetype"), (DAV, "getetag"), (DAV, "getlastmodified")]


def _base(url: str) -> str:
    return url if url.endswith("/") else url + "/"


class _WebDav:
    def __init__(self, config: ConnectorConfig) -> None:
        self.config = config
        self.base = _base(config.require_url(NAME))
        self.http = config.http_client(NAME)
        self.dav = DavClient(self.http)
        self.page_size = int(config.options.get("page_size", 500))

    def owner_url(self, owner: str) -> str:
        if not owner or "/" in owner:
            raise BadResponse(f"owner {owner!r} must be a non-empty name without '/'", connector=NAME)
        return self.base + quote_segments(owner) + "/"

    def item_url(self, owner: str, item_id: str, folder: bool = False) -> str:
        return self.owner_url(owner) + quote_segments(item_id) + ("/" if folder else "")

    def close(self) -> None:
        self.http.close()


def _metadata(res: DavResource, kind: str) -> dict[str, Any]:
    """What Relais stored, else what the live properties say."""
    stored = res.text(RELAIS, "metadata")
    derived: dict[str, Any] = {}
    modified = http_date_to_iso(res.text(DAV, "getlastmodified"))
    if kind == "file":
        media = (res.text(DAV, "getcontenttype") or "").split(";")[0].strip()
        if media and "/" in media:
            derived["media_type"] = media
        created = iso8601_to_iso(res.text(DAV, "creationdate"))
        if created:
            derived["created"] = created
        if modified:
            derived["modified"] = modified
    elif modified:
        derived["modified"] = modified
    if stored:
        try:
            meta = json.loads(stored)
        except ValueError:
            meta = None
        if isinstance(meta, dict):
            if kind == "file" and not _etag_unchanged(res) and modified:
                meta["modified"] = modified  # changed on the server since Relais wrote it
            return meta
    return derived


def norm_etag(value: str | None) -> str | None:
    """ETags compared by value: servers differ on quotes (wsgidav's getetag has none)."""
    if not value:
        return None
    value = value.strip()
    if value.startswith("W/"):
        value = value[2:]
    return value.strip('"') or None


def _etag_unchanged(res: DavResource) -> bool:
    stored, live = norm_etag(res.text(RELAIS, "etag")), norm_etag(res.text(DAV, "getetag"))
    return stored is not None and stored == live


def _etag(res: DavResource, kind: str) -> str | None:
    """What incremental sync compares: a file's ETag; a folder's last modification (its ETag, where a
    server gives one, moves with every member)."""
    if kind == "file":
        return norm_etag(res.text(DAV, "getetag"))
    return "modified:" + (res.text(DAV, "getlastmodified") or "")


def _stored_sha256(res: DavResource) -> str | None:
    sha = res.text(RELAIS, "sha256")
    if sha and _etag_unchanged(res):
        return sha
    return None


class WebDavExporter(_WebDav, Exporter):
    def __init__(self, config: ConnectorConfig, vertical: str = "documents") -> None:
        _WebDav.__init__(self, config)
        Exporter.__init__(self, NAME, vertical, retry=config.retry)

    def owners(self, cursor: str | None = None) -> Page[str]:
        found = self.dav.propfind(self.base, [(DAV, "resourcetype")], depth=1)
        root = decode_path(_path_of(self.base))
        owners = sorted(r.name for r in found if r.is_collection and r.path != root)
        return Page(owners)

    def list(self, owner: str, cursor: str | None = None) -> Page[ItemRef]:
        # the cursor: folders still to visit, as [id, href] (the server's own href: its bytes
        # may differ from our NFC id, e.g. NFD names written by a Mac)
        todo: list[list[str]] = json.loads(cursor)["todo"] if cursor else [["", ""]]
        refs: list[ItemRef] = []
        root_url = self.owner_url(owner)
        root_path = decode_path(_path_of(root_url))
        while todo and len(refs) < self.page_size:
            folder, href = todo.pop()
            url = self._absolute(href) if href else root_url
            try:
                found = self.dav.propfind(url, LIST_PROPS, depth=1, item=f"{owner}:{self.vertical}/{folder}")
            except NotFound as exc:
                if not folder:
                    exc.with_context(item=f"owner {owner}")
                    raise
                log.warning("%s: folder %r of %s vanished during the listing; its content is not exported",
                            NAME, folder, owner)
                continue
            here = decode_path(_path_of(url))
            children = sorted((r for r in found if r.path != here), key=lambda r: r.path)
            subfolders: list[list[str]] = []
            for res in children:
                if not res.path.startswith(root_path + "/"):
                    raise BadResponse(f"PROPFIND of {folder or 'the owner root'} listed {res.href}, outside it",
                                      connector=NAME, url=redact_url(url))
                ref = self._ref(owner, root_path, res)
                refs.append(ref)
                if ref.kind == "folder":
                    subfolders.append([ref.id, res.href])
            todo.extend(reversed(subfolders))  # depth first, in name order
        return Page(refs, json.dumps({"todo": todo}, ensure_ascii=False) if todo else None)

    def _ref(self, owner: str, root_path: str, res: DavResource) -> ItemRef:
        rel = res.path[len(root_path) + 1:]
        kind: Kind = "folder" if res.is_collection else "file"
        size = None
        if kind == "file":
            length = res.text(DAV, "getcontentlength")
            size = int(length) if length and length.isdigit() else None
        return ItemRef(owner=owner, vertical=self.vertical, id=rel, path=rel, kind=kind,
                       metadata=_metadata(res, kind), size=size if kind == "file" else 0,
                       sha256=_stored_sha256(res) if kind == "file" else None, locator=res.href,
                       etag=_etag(res, kind))

    sync_modes = (ETAG, SYNC_COLLECTION)
    _offers_sync: bool | None = None

    def changes(self, owner: str, state: dict[str, Any] | None = None) -> Changes:
        """RFC 6578 where the server offers it on the owner's collection (asked once per exporter: a
        server's collections are alike), else the listing with ETags compared."""
        root_url = self.owner_url(owner)
        if self._offers_sync is None:
            self._offers_sync = offers_sync_collection(self.dav, root_url, item=f"owner {owner}")
        if not self._offers_sync:
            light = bool(known_etags(state))  # a first sync reads everything: listed whole at once
            whole = self._whole_listing(owner, root_url, SYNC_PROPS if light else LIST_PROPS)
            if whole is None:
                return diff_listing(self.iter_refs(owner), state)
            out = diff_listing(whole, state)
            if light:
                self._describe_changed(owner, root_url, out, known_etags(state))
            return out
        token = state.get("token") if isinstance(state, dict) else None
        label = f"owner {owner}"
        answer = sync_collection(self.http, root_url, token, LIST_PROPS, level="infinite", item=label) \
            if isinstance(token, str) and token else None
        incremental = answer is not None
        if answer is None:  # the first sync, or the token refused: every member
            answer = sync_collection(self.http, root_url, None, LIST_PROPS, level="infinite", item=label)
            assert answer is not None  # an empty token is never refused
        before = known_etags(state)
        root_path = decode_path(_path_of(root_url))
        etags = dict(before) if incremental else {}
        out = Changes(mode=SYNC_COLLECTION, full=not incremental)
        for path in answer.removed:
            if path.startswith(root_path + "/"):
                gone = path[len(root_path) + 1:]
                for item_id in [i for i in etags if i == gone or i.startswith(gone + "/")]:
                    del etags[item_id]
        for res in sorted(answer.changed, key=lambda r: r.path):
            if res.path == root_path:
                continue
            if not res.path.startswith(root_path + "/"):
                raise BadResponse(f"sync-collection of {owner} listed {res.href}, outside it", connector=NAME,
                                  url=redact_url(root_url))
            ref = self._ref(owner, root_path, res)
            etags[ref.id] = ref.etag or ""
            if not ref.etag or before.get(ref.id) != ref.etag:
                out.changed.append(ref)
        out.deleted = sorted(set(before) - set(etags))
        out.state = {"etags": etags, "token": answer.token}
        return out

    _infinite: bool | None = None

    def _describe_changed(self, owner: str, root_url: str, out: Changes, before: dict[str, str]) -> None:
        """The items a light listing found changed, with every property (one PROPFIND each); one gone
        meanwhile is dropped (and deleted if the vault had it)."""
        root_path = decode_path(_path_of(root_url))
        described: builtins.list[ItemRef] = []
        for ref in out.changed:
            res = self.dav.propfind_one(self._url(ref), LIST_PROPS, item=ref_label(ref))
            if res is None:
                out.state["etags"].pop(ref.id, None)
                if ref.id in before:
                    out.deleted.append(ref.id)
                continue
            described.append(self._ref(owner, root_path, res))
        out.changed = described

    def _whole_listing(self, owner: str, root_url: str, props: builtins.list[tuple[str, str]]
                       ) -> Sequence[ItemRef] | None:
        """The owner's tree in one ``Depth: infinity`` PROPFIND where the server allows it (wsgidav
        does), None where it refuses (RFC 4918 §9.1 lets it): the sync then walks folder by folder."""
        if self._infinite is False:
            return None
        try:
            found = self.dav.propfind(root_url, props, depth="infinity", item=f"owner {owner}")
        except (NotFound, TransientError):
            raise
        except ConnectorError as exc:
            log.info("%s: no Depth: infinity here (%s); listing folder by folder", NAME, exc)
            self._infinite = False
            return None
        self._infinite = True
        root_path = decode_path(_path_of(root_url))
        refs: builtins.list[ItemRef] = []
        for res in sorted(found, key=lambda r: r.path):
            if res.path == root_path:
                continue
            if not res.path.startswith(root_path + "/"):
                raise BadResponse(f"PROPFIND of {owner} listed {res.href}, outside it", connector=NAME,
                                  url=redact_url(root_url))
            refs.append(self._ref(owner, root_path, res))
        return refs

    def open(self, ref: ItemRef) -> Body:
        url = self._url(ref)
        label = ref_label(ref)
        resp = self.http.request("GET", url, item=label, stream=True, headers={"Accept-Encoding": "identity"})
        length = resp.headers.get("Content-Length")
        return Body(chunks=iter_body(resp, connector=NAME, item=label),
                    size=int(length) if length and length.isdigit() else None,
                    sha256=announced_sha256(resp.headers), url=redact_url(url), close=resp.close)

    def _url(self, ref: ItemRef) -> str:
        return self._absolute(ref.locator) if ref.locator else self.item_url(ref.owner, ref.id)

    def _absolute(self, href: str) -> str:
        """An href path (``/dav/a%20b``) on the server of the base URL."""
        parts = urlsplit(self.base)
        return f"{parts.scheme}://{parts.netloc}{href}"


def _path_of(url: str) -> str:
    return urlsplit(url).path


class WebDavImporter(_WebDav, Importer):
    def __init__(self, config: ConnectorConfig, vertical: str = "documents") -> None:
        _WebDav.__init__(self, config)
        Importer.__init__(self, NAME, vertical)
        self._known_folders: set[str] = set()
        self._folder_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()

    def _ensure_folder(self, url: str, item: str) -> bool:
        """Create a collection unless known to exist; True if it was created now.

        Import threads share parent folders: one lock per folder URL makes a single
        thread send its MKCOL, since servers (wsgidav among them) may answer two
        concurrent MKCOLs of one path with a 500 rather than a 405.
        """
        with self._lock:
            folder_lock = self._folder_locks.setdefault(url, threading.Lock())
        with folder_lock:
            if url in self._known_folders:
                return False
            created = self.dav.mkcol(url, item=item)
            self._known_folders.add(url)
        return created

    def _ensure_parents(self, item: Item) -> None:
        owner_url = self.owner_url(item.owner)
        self._ensure_folder(owner_url, item.label)
        segments = item.id.split("/")[:-1]
        for n in range(1, len(segments) + 1):
            self._ensure_folder(owner_url + quote_segments("/".join(segments[:n])) + "/", item.label)

    def write(self, item: Item) -> Outcome:
        self._ensure_parents(item)
        meta_json = json.dumps(dict(item.metadata), sort_keys=True, ensure_ascii=True, separators=(",", ":"))
        if item.kind == "folder":
            return self._write_folder(item, meta_json)
        url = self.item_url(item.owner, item.id)
        current = self.dav.propfind_one(url, LIST_PROPS, item=item.label)
        if current is not None and current.is_collection:
            raise BadResponse("a folder already has this file's path at the target", connector=NAME,
                              url=redact_url(url), item=item.label)
        if current is None:
            self._upload(url, item, meta_json)
            return Outcome.CREATED
        same_bytes = self._current_sha256(url, current, item) == item.sha256
        same_meta = _stored_meta(current) == dict(item.metadata)
        if same_bytes and same_meta:
            return Outcome.UNCHANGED
        if same_bytes:
            self.dav.proppatch(url, {(RELAIS, "metadata"): meta_json, (RELAIS, "sha256"): item.sha256,
                                     (RELAIS, "etag"): norm_etag(current.text(DAV, "getetag")) or ""}, item=item.label)
        else:
            self._upload(url, item, meta_json)
        return Outcome.UPDATED

    def _write_folder(self, item: Item, meta_json: str) -> Outcome:
        url = self.item_url(item.owner, item.id, folder=True)
        current = self.dav.propfind_one(url, [(DAV, "resourcetype"), (RELAIS, "metadata")], item=item.label)
        if current is not None and not current.is_collection:
            raise BadResponse("a file already has this folder's path at the target", connector=NAME,
                              url=redact_url(url), item=item.label)
        if current is None:
            self._ensure_folder(url, item.label)
            outcome = Outcome.CREATED
        elif _stored_meta(current) == dict(item.metadata):
            return Outcome.UNCHANGED
        else:
            outcome = Outcome.UPDATED
        self.dav.proppatch(url, {(RELAIS, "metadata"): meta_json}, item=item.label)
        return outcome

    def _upload(self, url: str, item: Item, meta_json: str) -> None:
        media = str(item.metadata.get("media_type") or "application/octet-stream")
        etag = self.dav.put(url, item.content.open, item.size, media, item=item.label)
        if not etag:
            after = self.dav.propfind_one(url, [(DAV, "getetag")], item=item.label)
            etag = after.text(DAV, "getetag") if after else None
        self.dav.proppatch(url, {(RELAIS, "metadata"): meta_json, (RELAIS, "sha256"): item.sha256,
                                 (RELAIS, "etag"): norm_etag(etag) or ""}, item=item.label)

    def _current_sha256(self, url: str, current: DavResource, item: Item) -> str:
        known = _stored_sha256(current)
        if known:
            return known
        length = current.text(DAV, "getcontentlength")
        if length and length.isdigit() and int(length) != item.size:
            return "size differs"
        # written by someone else: hash what is there (once; the upload then records it)
        h = hashlib.sha256()
        resp = self.http.request("GET", url, item=item.label, stream=True, headers={"Accept-Encoding": "identity"})
        try:
            for chunk in iter_body(resp, connector=NAME, item=item.label):
                h.update(chunk)
        except ConnectorError:
            raise
        return h.hexdigest()


def _stored_meta(res: DavResource) -> dict | None:
    stored = res.text(RELAIS, "metadata")
    if not stored:
        return None
    try:
        value = json.loads(stored)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
