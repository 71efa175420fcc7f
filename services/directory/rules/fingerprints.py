"""Unchanged means unchanged: the hashes that say a record has not changed.

Two fingerprints, both keyed by `MODEL_VERSION`:
- `raw_fingerprint`, of a record's bytes as written in the export: a record
  whose bytes equal the last imported ones is not even read;
- `fingerprint`, of its family, key and kept attributes (`kept_attributes`,
  serialized by `attributes_json`): the canonical record is a function of
  these, so a record whose fingerprint equals the stored one is not written.
Bump `MODEL_VERSION` when the mapping from attributes to canonical records
changes: every stored record then counts as changed on the next import and
is rewritten.
"""

from __future__ import annotations

import hashlib

import orjson

MODEL_VERSION = b"directory-model-3"  # 2: persons' other_first_names; 3: first-degree facts


def kept_attributes(attrs: dict[str, list[str]]) -> dict[str, list[str]]:
    """The raw attributes worth storing: non-empty ones (AAF sends many empty `<value/>`)."""
    return {k: v for k, v in attrs.items() if v}


def attributes_json(attributes: dict[str, list[str]]) -> bytes:
    """The attributes serialized with sorted names: equal attributes, equal bytes."""
    return orjson.dumps(attributes, option=orjson.OPT_SORT_KEYS)


def fingerprint(family: str, key: str, attributes_json: bytes) -> str:
    """A short stable hash of a record: the canonical record is a function of these."""
    h = hashlib.blake2b(MODEL_VERSION, digest_size=16)
    h.update(f"\0{family}\0{key}\0".encode())
    h.update(attributes_json)
    return h.hexdigest()


def raw_fingerprint(raw: bytes) -> str:
    """A short hash of a record's bytes as written in the export."""
    h = hashlib.blake2b(MODEL_VERSION, digest_size=16)
    h.update(raw)
    return h.hexdigest()
