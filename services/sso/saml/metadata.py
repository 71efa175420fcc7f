"""Reading SAML metadata, as the SP (the national IdPs' metadata) and the IdP (the platforms') both do.

`metadata_root` parses a metadata document safely (xml.parse: no DTD, entities or
network) within a size bound and checks its root; `the_entity` picks the one
entity of a given role (and entity id) in it; `Endpoint` is a service location
read from it; `parse_duration` reads a `cacheDuration`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from lxml import etree

from .xml import MD, Refused, parse

SAML2_PROTOCOL = "urn:oasis:names:tc:SAML:2.0:protocol"


@dataclass(frozen=True)
class Endpoint:
    """A service of an entity (SingleSignOnService, SingleLogoutService...): its binding and location."""

    binding: str
    location: str
    response_location: str | None = None


_DURATION = re.compile(r"-?P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)D)?(?:T(?:(\d+)H)?(?:(\d+)M)?(?:(\d+(?:\.\d+)?)S)?)?")


def parse_duration(value: str | None) -> timedelta | None:
    """An xs:duration such as PT1H or P1D (years and months counted as 365 and 30 days)."""
    if not value:
        return None
    m = _DURATION.fullmatch(value.strip())
    if m is None or value.strip() in ("P", "PT") or value.strip().startswith("-"):
        return None
    y, mo, d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
    return timedelta(days=365 * y + 30 * mo + d, hours=h, minutes=mi, seconds=s)


def the_entity(root: etree._Element, descriptor: str, entity_id: str | None, where: str, one: str,
               many: str) -> etree._Element:
    """The one md:EntityDescriptor of a metadata document (`root`, already checked to be an
    EntityDescriptor or EntitiesDescriptor) having a `descriptor` role, and `entity_id` if given.

    `one` / `many`: the role in words ("an identity provider" / "identity providers"), for the errors.
    """
    entities = [root] if root.tag == f"{MD}EntityDescriptor" else list(root.iter(f"{MD}EntityDescriptor"))
    candidates = [e for e in entities if e.find(f"{MD}{descriptor}") is not None
                  and (entity_id is None or e.get("entityID") == entity_id)]
    if not candidates:
        wanted = f"entity {entity_id!r}" if entity_id else f"{one} ({descriptor})"
        raise Refused("metadata-unusable", f"metadata {where}: holds no {wanted}")
    if len(candidates) > 1:
        raise Refused("metadata-unusable", f"metadata {where}: holds {len(candidates)} {many}; "
                                           "set entity_id to choose one")
    return candidates[0]


def metadata_root(document: bytes, where: str, max_bytes: int) -> etree._Element:
    """The root of a metadata document, an md:EntityDescriptor or md:EntitiesDescriptor, parsed safely;
    raises `Refused` (reason `metadata-unreadable`) saying what is wrong and where."""
    try:
        root = parse(document, f"metadata {where}", max_bytes=max_bytes, allow_comments=True)
    except Refused as exc:
        raise Refused("metadata-unreadable", exc.detail) from None
    if root.tag not in (f"{MD}EntityDescriptor", f"{MD}EntitiesDescriptor"):
        raise Refused("metadata-unreadable", f"metadata {where}: the root is <{root.tag}>, not an "
                                             "md:EntityDescriptor or md:EntitiesDescriptor")
    return root
