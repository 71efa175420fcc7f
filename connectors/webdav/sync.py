"""Collection synchronisation (RFC 6578): what changed in a WebDAV collection since a token.

:func:`offers_sync_collection` reads the collection's ``supported-report-set`` (§3.1: a server
that has the report says so there); :func:`sync_collection` sends the ``DAV:sync-collection``
REPORT (``Depth: 0``) with the token of the last sync (empty: the first, every member listed)
and returns the members changed (with the properties asked for), the hrefs removed (a response
whose own status is 404) and the new token, or None when the server refuses the token (403 or
409 with ``valid-sync-token``: expired, say), in which case the caller lists in full.
Shared by the WebDAV, CalDAV and CardDAV connectors; answers parsed with the SDK's safe parser.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from lxml import etree

from connectors.sdk import BadResponse, HttpClient, parse_xml, redact_url

from .client import DavClient
from .multistatus import DAV, DavResource, clark, decode_path, href_path

_REFUSED = (403, 409)


@dataclass(frozen=True)
class SyncAnswer:
    token: str
    changed: list[DavResource]
    removed: list[str]  # decoded paths of members gone since the token


def offers_sync_collection(dav: DavClient, url: str, *, item: str | None = None) -> bool:
    """Whether the collection at ``url`` lists ``DAV:sync-collection`` in its supported reports."""
    res = dav.propfind_one(url, [(DAV, "supported-report-set")], item=item)
    if res is None:
        return False
    el = res.props.get(clark(DAV, "supported-report-set"))
    return el is not None and el.find(f".//{clark(DAV, 'sync-collection')}") is not None


def sync_body(token: str, props: Iterable[tuple[str, str]], level: str) -> bytes:
    root = etree.Element(clark(DAV, "sync-collection"), nsmap={"d": DAV})
    etree.SubElement(root, clark(DAV, "sync-token")).text = token or None
    etree.SubElement(root, clark(DAV, "sync-level")).text = level
    prop = etree.SubElement(root, clark(DAV, "prop"))
    for ns, name in props:
        etree.SubElement(prop, clark(ns, name))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def sync_collection(http: HttpClient, url: str, token: str | None, props: Iterable[tuple[str, str]], *,
                    level: str = "1", item: str | None = None) -> SyncAnswer | None:
    """The REPORT; None when the server refuses ``token``."""
    resp = http.request("REPORT", url, item=item, body=sync_body(token or "", props, level), ok=_REFUSED,
                        headers={"Depth": "0", "Content-Type": "application/xml; charset=utf-8"})
    try:
        safe = redact_url(url)
        if resp.status_code in _REFUSED:
            if token and b"valid-sync-token" in resp.content:
                return None
            raise BadResponse(f"sync-collection REPORT answered HTTP {resp.status_code}", connector=http.connector,
                              url=safe, item=item)
        if resp.status_code != 207:
            raise BadResponse(f"sync-collection REPORT answered HTTP {resp.status_code}, expected 207 Multi-Status",
                              connector=http.connector, url=safe, item=item)
        return parse_sync(resp.content, connector=http.connector, url=safe)
    finally:
        resp.close()


def parse_sync(data: bytes, *, connector: str, url: str) -> SyncAnswer:
    root = parse_xml(data, what="sync-collection answer", connector=connector, url=url)
    if root.tag != clark(DAV, "multistatus"):
        raise BadResponse(f"sync-collection answer: root element is {root.tag!r}, not DAV: multistatus",
                          connector=connector, url=url)
    token = (root.findtext(clark(DAV, "sync-token")) or "").strip()
    if not token:
        raise BadResponse("sync-collection answer: no sync-token", connector=connector, url=url)
    changed: list[DavResource] = []
    removed: list[str] = []
    for n, response in enumerate(root.iterchildren(clark(DAV, "response")), 1):
        href = (response.findtext(clark(DAV, "href")) or "").strip()
        if not href:
            raise BadResponse(f"sync-collection answer: response #{n} has no href", connector=connector, url=url)
        status = (response.findtext(clark(DAV, "status")) or "").split()
        path = href_path(href)
        if len(status) >= 2 and status[1] == "404":
            removed.append(decode_path(path))
            continue
        props: dict[str, etree._Element] = {}
        for propstat in response.iterchildren(clark(DAV, "propstat")):
            pstatus = (propstat.findtext(clark(DAV, "status")) or "").split()
            prop = propstat.find(clark(DAV, "prop"))
            if len(pstatus) >= 2 and pstatus[1] == "200" and prop is not None:
                props.update({el.tag: el for el in prop if isinstance(el.tag, str)})
        rt = props.get(clark(DAV, "resourcetype"))
        types = frozenset(c.tag for c in rt if isinstance(c.tag, str)) if rt is not None else frozenset()
        changed.append(DavResource(href=path, path=decode_path(path), props=props, resourcetypes=types))
    return SyncAnswer(token, changed, removed)


__all__ = ["SyncAnswer", "offers_sync_collection", "parse_sync", "sync_body", "sync_collection"]
