"""The four kinds of record (person, structure, MEF, subject): how each AAF family maps to a table and to events."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from ..adapters import tables
from ..rules.canonical_records import (
    PERSON_SCALARS,
    STRUCTURE_SCALARS,
    mef_from_attributes,
    person_from_attributes,
    structure_from_attributes,
    subject_from_attributes,
)
from ..rules.families import PERSON_FAMILIES
from ..rules.search_keys import search_key


@dataclass(frozen=True)
class Kind:
    """How one AAF family maps to a table and to events."""

    name: str  # person | structure | mef | subject
    table: Any
    key: Any  # key column
    event_prefix: str

    def canonical(self, family: str, key: str, attrs: dict[str, list[str]]) -> dict:
        if self.name == "person":
            return person_from_attributes(key, family, attrs)
        if self.name == "structure":
            return structure_from_attributes(key, attrs)
        if self.name == "mef":
            return mef_from_attributes(key, attrs)
        return subject_from_attributes(key, attrs)

    @property
    def columns(self) -> tuple[str, ...]:
        """Column order of `row()`: the key first."""
        if self.name == "person":
            return ("jointure", "category", "structure", "last_key", "first_key", "email_key", "ine",
                    "struct_rattach_id", "raw_hash", "record_hash", "data")
        if self.name == "structure":
            return ("jointure", "uai", "raw_hash", "record_hash", "data")
        return ("code", "raw_hash", "record_hash", "data")

    def row(self, key: str, record: dict, record_json: bytes, attrs_json: bytes, fingerprint: str,
            raw_hash: str | None) -> tuple:
        # {"record": ..., "attributes": ...} from the parts serialized once for hash, row and event
        data = b'{"record":' + record_json + b',"attributes":' + attrs_json + b"}"
        if self.name == "person":
            return (key, record["category"], record["structure"], search_key(record["last_name"]),
                    search_key(record["first_name"]), search_key(record["email"]) or None,
                    record["ine"], record["struct_rattach_id"], raw_hash, fingerprint, data)
        if self.name == "structure":
            return (key, record["uai"], raw_hash, fingerprint, data)
        return (key, raw_hash, fingerprint, data)

    def identity(self, record: dict) -> dict:
        """The payload fields naming the record in updated/deleted events."""
        if self.name == "person":
            return {"jointure": record["jointure"], "category": record["category"]}
        if self.name == "structure":
            return {"jointure": record["jointure"], "uai": record["uai"]}
        return {"code": record["code"]}

    def scalar_fields(self, record: dict) -> Iterable[str]:
        if self.name == "person":
            return PERSON_SCALARS
        if self.name == "structure":
            return STRUCTURE_SCALARS
        return [f for f in record if f not in ("jointure", "code")]


KINDS: dict[str, Kind] = {
    "EtabEducNat": Kind("structure", tables.structure, tables.structure.c.jointure, "directory.structure"),
    "MefEducNat": Kind("mef", tables.mef, tables.mef.c.code, "directory.mef"),
    "MatiereEducNat": Kind("subject", tables.subject, tables.subject.c.code, "directory.subject"),
    **{f: Kind("person", tables.person, tables.person.c.jointure, "directory.person") for f in PERSON_FAMILIES},
}

MEMBERSHIP_COLUMNS = ("person", "kind", "structure", "code", "subject", "other", "legal_guardian")


def membership_rows(record: dict) -> list[tuple]:
    """A person's memberships as rows of `tables.membership` (`MEMBERSHIP_COLUMNS`)."""
    j = record["jointure"]
    return [
        (j, m["kind"], m.get("structure"), m.get("code"), m.get("subject"), m.get("person"), m.get("legal_guardian"))
        for m in record["memberships"]
    ]
