"""Parsing XML that peers send (PROPFIND multistatus...) without trusting it.

As for AAF files (services/directory/adapters/aaf/reader.py): no DTD is loaded, no entity expanded, the
network never touched; a document that declares a DTD or an entity is refused outright
(the vehicle of billion-laughs and XXE attacks), and a malformed one raises
:class:`BadResponse` with the line where it broke.
"""
from __future__ import annotations

import re

from lxml import etree

from .errors import BadResponse

_DTD = re.compile(rb"<!DOCTYPE|<!ENTITY", re.IGNORECASE)
MAX_XML_BYTES = 64 << 20  # a multistatus bigger than this is not a listing but an attack


def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=True, remove_pis=True)


def parse_xml(data: bytes, *, what: str, connector: str | None = None, url: str | None = None) -> etree._Element:
    """Parse ``data`` and return its root element, or raise :class:`BadResponse`."""
    if len(data) > MAX_XML_BYTES:
        raise BadResponse(f"{what}: {len(data)} bytes of XML, more than the {MAX_XML_BYTES} accepted",
                          connector=connector, url=url)
    if _DTD.search(data):
        raise BadResponse(f"{what}: the XML declares a DTD or an entity; refused (never loaded)",
                          connector=connector, url=url)
    if not data.strip():
        raise BadResponse(f"{what}: empty body where XML was expected", connector=connector, url=url)
    try:
        return etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = f" at line {exc.lineno}" if exc.lineno else ""
        raise BadResponse(f"{what}: not well-formed XML{line}: {exc.msg}", connector=connector,
                          url=url) from None
