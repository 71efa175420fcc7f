"""Checking item records and index files against contracts/vault/schemas/<vertical>.json.

The SDK distribution carries those schemas (``vault_schemas/``, in the source tree a link to
contracts/vault/schemas, so there is one copy); ``RELAIS_CONTRACTS_DIR`` points at another
contracts folder (the server's image sets it).

The schemas are the archive format's (contracts/vault/SPEC.md §3): one per vertical, each
describing that vertical's ``index.json`` and, under ``$defs/item``, one item record
(:meth:`Item.record`). Vendor fields go in an item's ``extra`` object, kept verbatim.
"""
from __future__ import annotations

import functools
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource

from .errors import BadItem
from .items import VERTICALS, check_vertical

FORMAT_VERSION = "1.1"


def schemas_dir() -> Path:
    contracts = os.environ.get("RELAIS_CONTRACTS_DIR")
    return Path(contracts) / "vault" / "schemas" if contracts else Path(__file__).resolve().parent / "vault_schemas"


@functools.lru_cache(maxsize=1)
def _registry() -> tuple[Registry, dict[str, dict]]:
    folder = schemas_dir()
    docs = {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}
    missing = [v for v in VERTICALS if f"{v}.json" not in docs]
    if missing:
        raise FileNotFoundError(f"no vault schema for {', '.join(missing)} in {folder}")
    registry = Registry().with_resources((d["$id"], Resource.from_contents(d)) for d in docs.values())
    return registry, docs


@functools.cache
def _validator(vertical: str, part: str) -> Draft202012Validator:
    registry, docs = _registry()
    doc = docs[f"{vertical}.json"]
    schema = doc if part == "index" else {"$ref": f"{doc['$id']}#/$defs/item"}
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


def schema(vertical: str) -> dict:
    """The JSON Schema document of a vertical."""
    return _registry()[1][f"{check_vertical(vertical)}.json"]


def _first_error(validator: Draft202012Validator, doc: Any) -> str | None:
    errors = sorted(validator.iter_errors(doc), key=lambda e: (len(e.absolute_path), list(map(str, e.absolute_path))))
    if not errors:
        return None
    e = errors[0]
    where = "/".join(str(p) for p in e.absolute_path) or "(top level)"
    return f"at {where}: {e.message}"


def check_record(vertical: str, record: Mapping[str, Any]) -> None:
    """Raise :class:`BadItem` unless ``record`` is a valid item of ``vertical``."""
    error = _first_error(_validator(check_vertical(vertical), "item"), dict(record))
    if error:
        raise BadItem(f"metadata does not match contracts/vault/schemas/{vertical}.json {error}")


def index_document(vertical: str, records: Iterable[Mapping[str, Any]],
                   extensions: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """``data/<vertical>/index.json`` for these item records (:meth:`Item.record`), checked.

    Records are sorted by id so that the same items always give the same bytes."""
    doc: dict[str, Any] = {"format_version": FORMAT_VERSION, "vertical": check_vertical(vertical),
                           "items": sorted((dict(r) for r in records), key=lambda r: r["id"])}
    if extensions:
        doc["extensions"] = dict(extensions)
    check_index(vertical, doc)
    return doc


def check_index(vertical: str, doc: Mapping[str, Any]) -> None:
    """Raise :class:`BadItem` unless ``doc`` is a valid ``data/<vertical>/index.json``."""
    error = _first_error(_validator(check_vertical(vertical), "index"), dict(doc))
    if error:
        raise BadItem(f"{vertical}/index.json does not match contracts/vault/schemas/{vertical}.json {error}")
