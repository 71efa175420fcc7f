"""What the national IdPs' attributes are called (rules/national_attributes.py)."""

from __future__ import annotations

from services.sso.rules.national_attributes import ATTRIBUTE_OIDS, EDUCONNECT_OID, named_attributes

AFFILIATION = EDUCONNECT_OID + "7"


def test_attribute_names_from_oids_friendly_names_or_as_sent():
    named = named_attributes([
        (AFFILIATION, "eduPersonAffiliation", ["eleve2d"]),
        ("urn:oid:9.9.9", "FrEduVecteur", ["4|||1|A"]),  # an OID we do not know, a FriendlyName we do
        ("urn:oid:9.9.8", "Whatever", ["x"]),
        ("FrEduVecteur", None, ["4|||1|A", "4|||2|A"]),  # the same attribute twice: values pooled
    ])
    assert named == {"FrEduCtPersonAffiliation": ["eleve2d"], "FrEduVecteur": ["4|||1|A", "4|||2|A"],
                     "urn:oid:9.9.8": ["x"]}


def test_the_known_oids():
    assert ATTRIBUTE_OIDS["FrEduCtId"] == "urn:oid:1.3.6.1.4.1.20326.10.999.1.57"
    assert ATTRIBUTE_OIDS["sn"] == "urn:oid:2.5.4.4" and ATTRIBUTE_OIDS["givenName"] == "urn:oid:2.5.4.42"
    assert ATTRIBUTE_OIDS["FrEduCtRefId"] is None and ATTRIBUTE_OIDS["FrEduVecteur"] is None  # by name only
    assert named_attributes([("urn:oid:0.9.2342.19200300.100.1.3", None, ["a@b.fr"])]) == {"mail": ["a@b.fr"]}
