"""The XML ground every SAML message stands on: namespaces, safe parsing, and the refusal every check raises.

- `parse` reads XML without DTD, entities or network; a DOCTYPE is refused, and so
  are comments and processing instructions (the NameID comment trick:
  exclusive canonicalisation ignores comments, so `user@a<!---->.evil` verifies
  as `user@a.evil` while a naive reader sees `user@a`).
- `check_unique_ids`: IDs must be unique across a document (and `xml:id` is refused),
  so a signature's reference can name one element only (signatures.py).
- `text_of`, `parse_instant` / `format_instant`, `new_id`, `serialize`: reading and
  writing the values of SAML messages.

A failed check raises `Refused(reason, detail)`: `reason` is a stable code for
logs, audit events and tests; `detail` a short text without message contents.
The rest of the ground is beside this module: keys.py (our key pairs, trusted
certificates), signatures.py (strict XML signatures), bindings.py (HTTP-Redirect
and HTTP-POST), encryption.py (XML Encryption), metadata.py (reading metadata).
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime

from lxml import etree

NS = {
    "samlp": "urn:oasis:names:tc:SAML:2.0:protocol",
    "saml": "urn:oasis:names:tc:SAML:2.0:assertion",
    "md": "urn:oasis:names:tc:SAML:2.0:metadata",
    "ds": "http://www.w3.org/2000/09/xmldsig#",
    "xenc": "http://www.w3.org/2001/04/xmlenc#",
    "xsi": "http://www.w3.org/2001/XMLSchema-instance",
}
SAMLP, SAML, MD, DS, XENC = (f"{{{NS[k]}}}" for k in ("samlp", "saml", "md", "ds", "xenc"))
XML_ID = "{http://www.w3.org/XML/1998/namespace}id"

BINDING_REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
BINDING_POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
STATUS_SUCCESS = "urn:oasis:names:tc:SAML:2.0:status:Success"

MAX_MESSAGE_BYTES = 512 * 1024  # a SAML message bigger than this is refused before parsing


class Refused(Exception):
    """A SAML message (or metadata) failed a check. `reason` is a stable code; `detail` is safe to log."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


# -- parsing ------------------------------------------------------------------------------

def _parser() -> etree.XMLParser:
    return etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, dtd_validation=False,
                           huge_tree=False, remove_comments=False, remove_pis=False, remove_blank_text=False)


def parse(data: bytes, what: str = "SAML message", *, max_bytes: int = MAX_MESSAGE_BYTES,
          allow_comments: bool = False) -> etree._Element:
    """Parse untrusted XML: no DTD, no entities, no network; comments refused unless `allow_comments`."""
    if len(data) > max_bytes:
        raise Refused("too-large", f"{what} is {len(data)} bytes (limit {max_bytes})")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        raise Refused("malformed", f"{what} is not well-formed XML: {exc.msg} (line {exc.lineno})") from None
    info = root.getroottree().docinfo
    # lxml-stubs 0.5.1 lack DocInfo.doctype (lxml has it): the ignore is theirs, not ours
    if info.doctype or info.internalDTD is not None:  # type: ignore[union-attr]
        raise Refused("dtd-refused", f"{what} declares a DTD (entity expansion / XXE risk)")
    for node in root.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity):
        if isinstance(node, etree._Comment) and allow_comments:
            continue
        parent = node.getparent()
        where = etree.QName(parent).localname if parent is not None else "document"
        kind = {etree._Comment: "a comment", etree._Entity: "an entity reference"}.get(type(node),
                                                                                     "a processing instruction")
        raise Refused("xml-comment" if kind == "a comment" else "malformed", f"{what} holds {kind} inside <{where}>")
    return root


def text_of(element: etree._Element | None) -> str | None:
    """All the text of an element, children included (never a comment's text)."""
    if element is None:
        return None
    if not len(element):  # a leaf (most values): its text is all there is; no need to walk it
        text = element.text
        return text.strip() if text else ""
    # lxml-stubs 0.5.1 type itertext() as str | bytes; lxml yields str
    return "".join(element.itertext()).strip()  # type: ignore[arg-type]


def check_unique_ids(root: etree._Element, what: str) -> None:
    """Every ID-like attribute value is unique, and xml:id (an ID libxml2 resolves by itself) is refused."""
    seen: set[str] = set()
    for el in root.iter(etree.Element):
        if XML_ID in el.attrib:
            raise Refused("duplicate-id", f"{what}: xml:id attributes are not allowed")
        for name in ("ID", "Id", "id"):
            value = el.get(name)
            if value is None:
                continue
            if value in seen:
                raise Refused("duplicate-id", f"{what}: the ID {value!r} appears more than once")
            seen.add(value)


# -- time -----------------------------------------------------------------------------------

def parse_instant(value: str | None, what: str) -> datetime | None:
    """An xs:dateTime (UTC; a value without zone is read as UTC, as SAML requires UTC anyway)."""
    if value is None:
        return None
    try:
        if "T" not in value:
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        raise Refused("malformed", f"{what}: not a date-time: {value[:40]!r}") from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def format_instant(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def new_id() -> str:
    """A message ID: an NCName (starts with a letter or _) with 160 random bits."""
    return "_" + secrets.token_hex(20)


def serialize(element: etree._Element) -> bytes:
    return etree.tostring(element, xml_declaration=False, encoding="utf-8")
