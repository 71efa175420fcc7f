"""The national IdPs' attributes: the names the SP knows them by, and the OIDs they travel under (pure).

Requested attributes are written by name and sent as their OID when one is known
(the EduConnect OIDs, `sn`, `givenName`, `mail`); attributes received under a
known OID are read back under their name, others under a known `FriendlyName`,
else as sent. `FrEduCtRefId` and `FrEduVecteur` are matched by name (no OID is
published for them here).
"""

from __future__ import annotations

from collections.abc import Iterable

EDUCONNECT_OID = "urn:oid:1.3.6.1.4.1.20326.10.999.1."

# Attribute names the SP understands, with the OID national IdPs send them under (None: by name only).
ATTRIBUTE_OIDS: dict[str, str | None] = {
    "FrEduUrlRetour": EDUCONNECT_OID + "5",
    "FrEduCtPersonAffiliation": EDUCONNECT_OID + "7",
    "FrEduCtId": EDUCONNECT_OID + "57",
    "FrEduCtEleveINEHash": EDUCONNECT_OID + "64",
    "FrEduCtDateNaissance": EDUCONNECT_OID + "67",
    "FrEduCtEleveUAI": EDUCONNECT_OID + "72",
    "FrEduCtEleveNiveau": EDUCONNECT_OID + "73",
    "sn": "urn:oid:2.5.4.4",
    "givenName": "urn:oid:2.5.4.42",
    "mail": "urn:oid:0.9.2342.19200300.100.1.3",
    "FrEduCtRefId": None,
    "FrEduVecteur": None,
}
_BY_OID = {oid: name for name, oid in ATTRIBUTE_OIDS.items() if oid}


def named_attributes(raw: Iterable[tuple[str, str | None, list[str]]]) -> dict[str, list[str]]:
    """(Name, FriendlyName, values) as sent -> values by the names above.

    A known OID becomes its name; else a known FriendlyName is used; else the Name as sent.
    Values of attributes sent twice are pooled.
    """
    out: dict[str, list[str]] = {}
    for name, friendly, values in raw:
        key = _BY_OID.get(name) or (friendly if friendly in ATTRIBUTE_OIDS else None) or name
        bucket = out.setdefault(key, [])
        bucket.extend(v for v in values if v not in bucket)
    return out
