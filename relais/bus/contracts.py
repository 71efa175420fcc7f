"""Validation of events against the JSON Schemas in `contracts/`.

Producers validate what they publish (the bulk import path validates in tests
and on demand), consumers validate the envelope to spot poison messages.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import fastjsonschema
import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource


class ContractError(ValueError):
    """An event does not match its contract."""


def contracts_dir() -> Path:
    return Path(os.environ.get("RELAIS_CONTRACTS_DIR") or Path(__file__).resolve().parents[2] / "contracts")


@functools.lru_cache(maxsize=1)
def _schemas() -> dict[str, dict]:
    folder = contracts_dir() / "schemas"
    if not folder.is_dir():
        raise ContractError(f"no contracts folder at {folder} (set RELAIS_CONTRACTS_DIR)")
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(folder.glob("*.json"))}


@functools.lru_cache(maxsize=1)
def _registry() -> Registry:
    return Registry().with_resources(
        (schema["$id"], Resource.from_contents(schema)) for schema in _schemas().values()
    )


def known_types() -> frozenset[str]:
    """The message types that have a schema."""
    return frozenset(name[:-5] for name in _schemas() if name not in ("envelope.json", "common.json"))


@functools.lru_cache(maxsize=None)
def _validator(file_name: str) -> Draft202012Validator:
    return Draft202012Validator(_schemas()[file_name], registry=_registry(), format_checker=FormatChecker())


def _check(validator: Draft202012Validator, event: Mapping[str, Any], what: str) -> None:
    error = next(iter(sorted(validator.iter_errors(event), key=lambda e: e.path)), None)
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ContractError(f"{what}: at {where}: {error.message}")


def validate_event(event: Mapping[str, Any]) -> None:
    """Raise ContractError unless `event` matches the schema of its type."""
    type_ = event.get("type") if isinstance(event, Mapping) else None
    if not isinstance(type_, str) or type_ not in known_types():
        raise ContractError(f"unknown event type {type_!r}: no schema in {contracts_dir() / 'schemas'}")
    _check(_validator(f"{type_}.json"), event, f"event {event.get('id')} ({type_})")


def validate_envelope(event: Any) -> None:
    """Raise ContractError unless `event` is a well-formed envelope (any type).

    Consumers call this on every delivery, so the envelope schema is also
    compiled to Python by fastjsonschema (~5 µs against ~150 µs): an envelope
    it accepts is accepted; one it refuses goes through `jsonschema` for the
    full message. (The envelope uses only keywords draft 7 has, so the
    compiled form reads it as draft 7.)
    """
    try:
        _fast_envelope()(event)
    except fastjsonschema.JsonSchemaException:
        _check(_validator("envelope.json"), event, "envelope")
        raise ContractError(f"envelope: {event!r:.200}: refused") from None  # the two disagreed: refuse anyway


@functools.lru_cache(maxsize=1)
def _fast_envelope() -> Callable[[Any], Any]:
    schema = dict(_schemas()["envelope.json"], **{"$schema": "http://json-schema.org/draft-07/schema#"})
    return fastjsonschema.compile(schema)


def asyncapi_document() -> dict:
    return yaml.safe_load((contracts_dir() / "asyncapi.yaml").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def subscriptions() -> dict[str, tuple[str, ...]]:
    """Consumer name -> the event types it receives, from the AsyncAPI `receive` operations.

    Each such operation names its consumer with `x-relais-consumer`; the
    consumer's queue is `relais.q.<name>`, bound to those types.
    """
    doc = asyncapi_document()
    channels = doc.get("channels") or {}
    out: dict[str, list[str]] = {}
    for op in (doc.get("operations") or {}).values():
        name = op.get("x-relais-consumer")
        if op.get("action") == "receive" and name:
            channel = channels[op["channel"]["$ref"].rsplit("/", 1)[-1]]
            out.setdefault(name, []).append(channel["address"])
    return {name: tuple(sorted(types)) for name, types in out.items()}
