"""Calendars over CalDAV (RFC 4791) and contacts over CardDAV (RFC 6352).

Layout at the server: ``<url>/<owner>/`` is an owner's home (Radicale's layout); each calendar
or address book in it is a folder item (id: the collection's name), each calendar object or
vCard a file item (id: ``<collection>/<resource name>``). Bytes go through as the server
serves them, never re-serialised.

Collections keep their metadata: ``displayname``, ``color`` (Apple's ``calendar-color``),
``description`` as the live properties clients show, and the whole metadata as the Relais dead
property ``urn:relais:vault:1 metadata`` (vendor ``extra`` fields included). Calendar objects and
vCards carry no properties of their own on most servers, so their metadata is what their bytes
say (``media_type``, ``uid``, ``component`` or ``vcard_version``): an importer refuses an item
whose metadata says more, rather than drop it silently.

A server may rewrite what it stores (Radicale reorders properties and refolds lines): an
object already there is ``unchanged`` when it says the same thing (:func:`.objects.same_content`).

Incremental sync (:meth:`DavExporter.changes`) asks each calendar or address book what changed
since its last sync token (RFC 6578 ``sync-collection``; a token refused lists it in full again);
a collection's own metadata is compared as it is, and a collection gone takes its items with it.
"""
from __future__ import annotations

import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from connectors.sdk import (
    BadItem,
    BadResponse,
    Body,
    ConfigError,
    ConnectorConfig,
    ConnectorError,
    Content,
    Exporter,
    Importer,
    Item,
    ItemRef,
    NotFound,
    Outcome,
    Page,
    TransientError,
    redact_url,
)
from connectors.sdk.http import announced_sha256, iter_body
from connectors.sdk.items import ref_label
from connectors.sdk.sync import ETAG, SYNC_COLLECTION, Changes, known_etags
from connectors.webdav.client import DavClient
from connectors.webdav.connector import norm_etag
from connectors.webdav.multistatus import (
    APPLE_ICAL,
    CALDAV,
    CARDDAV,
    DAV,
    RELAIS,
    DavResource,
    decode_path,
    mkcol_body,
    quote_segments,
)
from connectors.webdav.sync import SyncAnswer, sync_collection

from .discovery import Discovery, discover
from .objects import first_value, main_component, same_content

log = logging.getLogger("connectors.dav")


@dataclass(frozen=True)
class Flavor:
    name: str
    vertical: str
    collection: tuple[str, str]
    media_type: str
    props: dict[str, tuple[str, str]]  # metadata key -> live property of a collection

    def describe(self, data: bytes) -> dict[str, Any]:
        meta: dict[str, Any] = {"media_type": self.media_type}
        uid = first_value(data, "UID")
        if uid:
            meta["uid"] = uid
        if self.vertical == "calendars":
            comp = main_component(data)
            if comp:
                meta["component"] = comp
        else:
            version = first_value(data, "VERSION")
            if version in ("2.1", "3.0", "4.0"):
                meta["vcard_version"] = version
        return meta


CALDAV_FLAVOR = Flavor("caldav", "calendars", (CALDAV, "calendar"), "text/calendar",
                       {"displayname": (DAV, "displayname"), "color": (APPLE_ICAL, "calendar-color"),
                        "description": (CALDAV, "calendar-description")})
CARDDAV_FLAVOR = Flavor("carddav", "contacts", (CARDDAV, "addressbook"), "text/vcard",
                        {"displayname": (DAV, "displayname"), "description": (CARDDAV, "addressbook-description")})

_OBJECT_PROPS = [(DAV, "resourcetype"), (DAV, "getcontentlength"), (DAV, "getetag"), (DAV, "getcontenttype")]


class _Dav:
    flavor: Flavor

    def __init__(self, config: ConnectorConfig, flavor: Flavor) -> None:
        self.flavor = flavor
        url = config.require_url(flavor.name)
        self.url = url if url.endswith("/") else url + "/"
        self.http = config.http_client(flavor.name)
        self.dav = DavClient(self.http)
        self.collection_props = [(DAV, "resourcetype"), (RELAIS, "metadata"), *flavor.props.values()]
        discover_opt = config.options.get("discover", False)
        if not isinstance(discover_opt, bool):
            raise ConfigError(f"options.discover must be true or false, not {discover_opt!r}", connector=flavor.name)
        self.discovery: Discovery | None = None
        self._base: str | None = None if discover_opt else self.url
        self._base_lock = threading.Lock()

    @property
    def base(self) -> str:
        """Where the owners' homes are: the URL configured, or (``options.discover``) the parent of the
        account's own home, found on first use (RFC 6764, :mod:`.discovery`)."""
        if self._base is None:
            with self._base_lock:
                if self._base is None:
                    self.discovery = discover(self.http, self.url, self.flavor.name)
                    self._base = self.discovery.owners_base(self.flavor.name)
        return self._base

    def home(self, owner: str) -> str:
        if not owner or "/" in owner:
            raise BadItem(f"owner {owner!r} must be a non-empty name without '/'", connector=self.flavor.name)
        return self.base + quote_segments(owner) + "/"

    def absolute(self, href: str) -> str:
        parts = urlsplit(self.base)
        return f"{parts.scheme}://{parts.netloc}{href}"

    def close(self) -> None:
        self.http.close()

    def collection_metadata(self, res: DavResource) -> dict[str, Any]:
        stored = res.text(RELAIS, "metadata")
        if stored:
            try:
                value = json.loads(stored)
            except ValueError:
                value = None
            if isinstance(value, dict):
                return value
        return {key: res.text(*prop) for key, prop in self.flavor.props.items() if res.text(*prop)}


class DavExporter(_Dav, Exporter):
    def __init__(self, config: ConnectorConfig, flavor: Flavor) -> None:
        _Dav.__init__(self, config, flavor)
        Exporter.__init__(self, flavor.name, flavor.vertical, retry=config.retry)

    def owners(self, cursor: str | None = None) -> Page[str]:
        found = self.dav.propfind(self.base, [(DAV, "resourcetype")], depth=1)
        root = decode_path(urlsplit(self.base).path)
        return Page(sorted(r.name for r in found if r.is_collection and r.path != root))

    def _collections(self, owner: str) -> list[DavResource]:
        """The owner's collections of our kind (calendars or address books) in their home, by path."""
        home = self.home(owner)
        try:
            found = self.dav.propfind(home, self.collection_props, depth=1, item=f"owner {owner}")
        except NotFound as exc:
            exc.with_context(item=f"owner {owner}")
            raise
        here = decode_path(urlsplit(home).path)
        return sorted((r for r in found if r.path != here and self.flavor.collection in
                       {_pair(t) for t in r.resourcetypes}), key=lambda r: r.path)

    def list(self, owner: str, cursor: str | None = None) -> Page[ItemRef]:
        if cursor is None:  # first page: the owner's collections of our kind
            mine = self._collections(owner)
            collections = [ItemRef(owner, self.vertical, r.name, r.name, "folder", self.collection_metadata(r), 0,
                                   locator=r.href) for r in mine]
            todo = [[r.name, r.href] for r in reversed(mine)]
            return Page(collections, json.dumps({"todo": todo}) if todo else None)
        todo = json.loads(cursor)["todo"]
        name, href = todo.pop()
        refs: list[ItemRef] = []
        url = self.absolute(href)
        found = self.dav.propfind(url, _OBJECT_PROPS, depth=1, item=f"{owner}:{self.vertical}/{name}")
        here = decode_path(urlsplit(url).path)
        for r in sorted(found, key=lambda r: r.path):
            if r.path == here or r.is_collection:
                continue
            length = r.text(DAV, "getcontentlength")
            item_id = f"{name}/{r.name}"
            refs.append(ItemRef(owner, self.vertical, item_id, item_id, "file", {"media_type": self.flavor.media_type},
                                int(length) if length and length.isdigit() else None, locator=r.href))
        return Page(refs, json.dumps({"todo": todo}) if todo else None)

    sync_modes = (ETAG, SYNC_COLLECTION)

    def changes(self, owner: str, state: dict[str, Any] | None = None) -> Changes:
        """What changed in the owner's collections since ``state``, each asked with its sync token."""
        mine = self._collections(owner)
        before = known_etags(state)
        tokens_before = state.get("tokens") if isinstance(state, dict) else None
        tokens_before = tokens_before if isinstance(tokens_before, dict) else {}
        out = Changes(mode=SYNC_COLLECTION, full=not before)
        etags: dict[str, str] = {}
        tokens: dict[str, str] = {}
        for r in mine:
            meta = self.collection_metadata(r)
            tag = "meta:" + json.dumps(meta, sort_keys=True, ensure_ascii=False)
            etags[r.name] = tag
            if before.get(r.name) != tag:
                out.changed.append(ItemRef(owner, self.vertical, r.name, r.name, "folder", meta, 0, locator=r.href,
                                           etag=tag))
            tokens[r.name] = self._sync_one(owner, r, before, tokens_before.get(r.name), etags, out)
        names = {r.name for r in mine}
        out.deleted.extend(i for i in before if i.split("/", 1)[0] not in names)  # collections gone, with items
        out.deleted.sort()
        out.state = {"etags": etags, "tokens": tokens}
        return out

    def _sync_one(self, owner: str, coll: DavResource, before: dict[str, str], token: object,
                  etags: dict[str, str], out: Changes) -> str:
        """One collection's changes into ``etags`` and ``out``; returns its new token."""
        name, url = coll.name, self.absolute(coll.href)
        label = f"{owner}:{self.vertical}/{name}"
        prior = {k: v for k, v in before.items() if k.startswith(name + "/")}
        props = [(DAV, "getetag"), (DAV, "getcontentlength"), (DAV, "resourcetype")]
        answer = sync_collection(self.http, url, token, props, item=label) \
            if isinstance(token, str) and token else None
        incremental = answer is not None
        if answer is None:  # first sync of this collection, its token refused, or a server without the REPORT
            answer = self._every_member(url, props, label)
            if not answer.token:
                out.mode = ETAG  # this server has no sync-collection
        if not incremental:
            prior_kept: dict[str, str] = {}
            out.full = True
        else:
            prior_kept = dict(prior)
        here = decode_path(urlsplit(url).path)
        seen: set[str] = set()
        for res in answer.changed:
            if res.path == here or res.is_collection:
                continue
            item_id = f"{name}/{res.name}"
            tag = norm_etag(res.text(DAV, "getetag")) or ""
            seen.add(item_id)
            prior_kept.pop(item_id, None)
            etags[item_id] = tag
            if not tag or prior.get(item_id) != tag:
                length = res.text(DAV, "getcontentlength")
                out.changed.append(ItemRef(owner, self.vertical, item_id, item_id, "file",
                                           {"media_type": self.flavor.media_type},
                                           int(length) if length and length.isdigit() else None,
                                           locator=res.href, etag=tag or None))
        for path in answer.removed:
            item_id = f"{name}/{path.rsplit('/', 1)[-1]}"
            prior_kept.pop(item_id, None)
            if item_id in prior and item_id not in seen:
                out.deleted.append(item_id)
        if not incremental:
            out.deleted.extend(i for i in prior if i not in seen)
        etags.update(prior_kept)
        return answer.token

    def _every_member(self, url: str, props: Sequence[tuple[str, str]], label: str) -> SyncAnswer:
        """The REPORT with no token; a server without it (an error other than not found or transient)
        is listed instead (``Depth: 1``) with an empty token, so that the next sync lists and compares
        ETags again."""
        try:
            answer = sync_collection(self.http, url, None, props, item=label)
        except (NotFound, TransientError):
            raise
        except ConnectorError as exc:
            log.info("%s: no sync-collection at %s (%s); ETags compared", self.connector, redact_url(url), exc)
            return SyncAnswer("", self.dav.propfind(url, props, depth=1, item=label), [])
        assert answer is not None  # an empty token is never refused
        return answer

    def open(self, ref: ItemRef) -> Body:
        url = self.absolute(ref.locator) if ref.locator else self.home(ref.owner) + quote_segments(ref.id)
        label = ref_label(ref)
        resp = self.http.request("GET", url, item=label, stream=True, headers={"Accept-Encoding": "identity"})
        length = resp.headers.get("Content-Length")
        return Body(iter_body(resp, connector=self.connector, item=label),
                    size=int(length) if length and length.isdigit() else None,
                    sha256=announced_sha256(resp.headers), url=redact_url(url), close=resp.close)

    def describe(self, ref: ItemRef, content: Content) -> dict[str, Any]:
        if ref.kind == "folder":
            return dict(ref.metadata)
        return self.flavor.describe(content.read())


def _pair(clark_name: str) -> tuple[str, str]:
    ns, _, name = clark_name[1:].partition("}")
    return ns, name


class DavImporter(_Dav, Importer):
    def __init__(self, config: ConnectorConfig, flavor: Flavor) -> None:
        _Dav.__init__(self, config, flavor)
        Importer.__init__(self, flavor.name, flavor.vertical)
        self._known: set[str] = set()
        self._lock = threading.Lock()

    def check(self, item: Item) -> None:
        super().check(item)
        if item.kind == "folder":
            if "/" in item.id:
                raise BadItem(f"a {self.flavor.collection[1]} is a collection directly in the owner's home; "
                              f"{item.id!r} is nested", connector=self.connector, item=item.label)
            return
        if item.id.count("/") != 1:
            raise BadItem(f"id must be <{self.flavor.collection[1]}>/<name>, got {item.id!r}",
                          connector=self.connector, item=item.label)
        derived = self.flavor.describe(item.content.read())
        for key, value in item.metadata.items():
            if key == "media_type" and str(value).split(";")[0].strip().lower() in (
                    self.flavor.media_type, "text/x-vcard"):
                continue
            if derived.get(key) != value:
                raise BadItem(f"metadata {key!r} = {value!r} cannot be kept: the server stores only the "
                              f"object's bytes, which say {derived.get(key)!r}",
                              connector=self.connector, item=item.label)

    def _ensure_home(self, owner: str, label: str) -> None:
        url = self.home(owner)
        with self._lock:
            if url in self._known:
                return
        self.dav.mkcol(url, item=label)
        with self._lock:
            self._known.add(url)

    def write(self, item: Item) -> Outcome:
        self._ensure_home(item.owner, item.label)
        if item.kind == "folder":
            return self._write_collection(item.owner, item.id, dict(item.metadata), item.label)
        collection, _ = item.id.split("/")
        coll_url = self.home(item.owner) + quote_segments(collection) + "/"
        with self._lock:
            known = coll_url in self._known
        if not known:
            self._write_collection(item.owner, collection, None, item.label)
        url = self.home(item.owner) + quote_segments(item.id)
        current = self._get(url, item.label)
        if current is not None and same_content(current, item.content.read()):
            return Outcome.UNCHANGED
        headers = {"Content-Type": f"{self.flavor.media_type}; charset=utf-8"}
        if current is None:
            headers["If-None-Match"] = "*"
        resp = self.http.request("PUT", url, item=item.label, body=item.content.read(), headers=headers)
        resp.close()
        return Outcome.CREATED if current is None else Outcome.UPDATED

    def _get(self, url: str, label: str) -> bytes | None:
        try:
            resp = self.http.request("GET", url, item=label, headers={"Accept-Encoding": "identity"})
        except NotFound:
            return None
        try:
            return resp.content
        finally:
            resp.close()

    def _write_collection(self, owner: str, name: str, metadata: dict | None, label: str) -> Outcome:
        """Create or update a collection; ``metadata=None`` only makes sure it exists."""
        url = self.home(owner) + quote_segments(name) + "/"
        current = self.dav.propfind_one(url, self.collection_props, item=label)
        if current is not None and self.flavor.collection not in {_pair(t) for t in current.resourcetypes}:
            raise BadResponse(f"{name!r} exists at the target but is not a {self.flavor.collection[1]}",
                              connector=self.connector, url=redact_url(url), item=label)
        wanted = self._props(metadata) if metadata is not None else {}
        if current is None:
            self.dav.mkcol(url, body=mkcol_body([self.flavor.collection], wanted), item=label)
            outcome = Outcome.CREATED
        elif metadata is None or self.collection_metadata(current) == metadata:
            outcome = Outcome.UNCHANGED
        else:
            stale = {p: None for k, p in self.flavor.props.items() if k not in metadata and current.text(*p)}
            self.dav.proppatch(url, {**wanted, **stale}, item=label)
            outcome = Outcome.UPDATED
        with self._lock:
            self._known.add(url)
        return outcome

    def _props(self, metadata: dict) -> dict[tuple[str, str], str]:
        props = {prop: str(metadata[key]) for key, prop in self.flavor.props.items() if metadata.get(key)}
        props[(RELAIS, "metadata")] = json.dumps(metadata, sort_keys=True, ensure_ascii=True, separators=(",", ":"))
        return props
