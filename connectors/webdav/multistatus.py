"""WebDAV (RFC 4918) wire format: PROPFIND / PROPPATCH / MKCOL bodies and multistatus parsing.

Shared by the WebDAV, CalDAV and CardDAV connectors. Responses are parsed with
:func:`connectors.sdk.parse_xml` (no DTD, no entities, no network).
"""
from __future__ import annotations

import unicodedata
import urllib.parse
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

from lxml import etree

from connectors.sdk import BadResponse, parse_xml

DAV = "DAV:"
CALDAV = "urn:ietf:params:xml:ns:caldav"
CARDDAV = "urn:ietf:params:xml:ns:carddav"
APPLE_ICAL = "http://apple.com/ns/ical/"
#: Dead properties Relais writes on what it imports (so a re-import and an export know it).
RELAIS = "urn:relais:vault:1"
NSMAP = {"d": DAV, "c": CALDAV, "card": CARDDAV, "ical": APPLE_ICAL, "r": RELAIS}


def clark(ns: str, name: str) -> str:
    return f"{{{ns}}}{name}"


@dataclass(frozen=True, slots=True)
class DavResource:
    """One ``<response>`` of a multistatus: its href and the properties found (status 200)."""

    href: str  # as the server sent it (percent-encoded), made a path
    path: str  # decoded: unquoted, no trailing slash
    props: Mapping[str, etree._Element] = field(default_factory=dict)
    resourcetypes: frozenset[str] = frozenset()

    @property
    def is_collection(self) -> bool:
        return clark(DAV, "collection") in self.resourcetypes

    def text(self, ns: str, name: str) -> str | None:
        el = self.props.get(clark(ns, name))
        if el is None:
            return None
        # lxml-stubs types itertext() as str | bytes; under Python 3 lxml yields str only
        return "".join(el.itertext()).strip()  # type: ignore[arg-type]

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def propfind_body(props: Iterable[tuple[str, str]]) -> bytes:
    root = etree.Element(clark(DAV, "propfind"), nsmap={"d": DAV})
    prop = etree.SubElement(root, clark(DAV, "prop"))
    for ns, name in props:
        etree.SubElement(prop, clark(ns, name))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def proppatch_body(set_props: Mapping[tuple[str, str], str | None]) -> bytes:
    """``set`` for values, ``remove`` for None."""
    root = etree.Element(clark(DAV, "propertyupdate"), nsmap=NSMAP)
    to_set = {k: v for k, v in set_props.items() if v is not None}
    to_remove = [k for k, v in set_props.items() if v is None]
    if to_set:
        prop = etree.SubElement(etree.SubElement(root, clark(DAV, "set")), clark(DAV, "prop"))
        for (ns, name), value in to_set.items():
            etree.SubElement(prop, clark(ns, name)).text = value
    if to_remove:
        prop = etree.SubElement(etree.SubElement(root, clark(DAV, "remove")), clark(DAV, "prop"))
        for ns, name in to_remove:
            etree.SubElement(prop, clark(ns, name))
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def mkcol_body(resourcetypes: Iterable[tuple[str, str]], props: Mapping[tuple[str, str], str]) -> bytes:
    """Extended MKCOL (RFC 5689): a collection of the given types, with properties."""
    root = etree.Element(clark(DAV, "mkcol"), nsmap=NSMAP)
    prop = etree.SubElement(etree.SubElement(root, clark(DAV, "set")), clark(DAV, "prop"))
    rt = etree.SubElement(prop, clark(DAV, "resourcetype"))
    etree.SubElement(rt, clark(DAV, "collection"))
    for ns, name in resourcetypes:
        etree.SubElement(rt, clark(ns, name))
    for (ns, name), value in props.items():
        etree.SubElement(prop, clark(ns, name)).text = value
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


def href_path(href: str) -> str:
    """The path part of an href (which may be a full URL), still percent-encoded."""
    return urllib.parse.urlsplit(href.strip()).path


def decode_path(path: str) -> str:
    """Percent-decoded, NFC, without trailing slash."""
    return unicodedata.normalize("NFC", urllib.parse.unquote(path)).rstrip("/")


def quote_segments(path: str) -> str:
    """Percent-encode each segment of a relative path (``/`` kept as the separator)."""
    return "/".join(urllib.parse.quote(seg, safe="") for seg in path.split("/"))


def parse_multistatus(data: bytes, *, connector: str, url: str) -> list[DavResource]:
    root = parse_xml(data, what="PROPFIND answer", connector=connector, url=url)
    if root.tag != clark(DAV, "multistatus"):
        raise BadResponse(f"PROPFIND answer: root element is {root.tag!r}, not DAV: multistatus",
                          connector=connector, url=url)
    out: list[DavResource] = []
    for n, response in enumerate(root.iterchildren(clark(DAV, "response")), 1):
        href_el = response.find(clark(DAV, "href"))
        href = (href_el.text or "") if href_el is not None else ""
        if not href.strip():
            raise BadResponse(f"PROPFIND answer: response #{n} has no href", connector=connector, url=url)
        props: dict[str, etree._Element] = {}
        for propstat in response.iterchildren(clark(DAV, "propstat")):
            status = (propstat.findtext(clark(DAV, "status")) or "").split()
            if len(status) < 2 or status[1] != "200":
                continue
            prop = propstat.find(clark(DAV, "prop"))
            if prop is not None:
                for el in prop:
                    if isinstance(el.tag, str):
                        props[el.tag] = el
        rt = props.get(clark(DAV, "resourcetype"))
        types = frozenset(c.tag for c in rt if isinstance(c.tag, str)) if rt is not None else frozenset()
        path = href_path(href)
        out.append(DavResource(href=path, path=decode_path(path), props=props, resourcetypes=types))
    return out


def http_date_to_iso(value: str | None) -> str | None:
    """``Mon, 23 Nov 2026 08:57:16 GMT`` -> ``2026-11-23T08:57:16Z``; None if unreadable."""
    if not value:
        return None
    try:
        dt = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return _iso(dt)


def iso8601_to_iso(value: str | None) -> str | None:
    """``creationdate`` (RFC 3339) normalised to UTC ``Z``; None if unreadable."""
    if not value:
        return None
    try:
        dt = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return _iso(dt)


def _iso(dt: datetime) -> str:
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
