"""contracts/asyncapi.yaml against the official AsyncAPI 3.0.0 JSON Schema (vendored: tests/kernel/schemas/README.md),
the one AsyncAPI Studio, `asyncapi validate` and the generators use: a document it refuses, vendors' tools refuse."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

from jsonschema import Draft7Validator
from jsonschema.exceptions import best_match

from relais.bus import contracts

OFFICIAL = Path(__file__).parent / "schemas" / "asyncapi-3.0.0.json"


def official_errors(document: dict[str, Any]) -> list[str]:
    """Every place `document` breaks the official schema, each as `<JSON path>: <the most specific reason>`."""
    schema = json.loads(OFFICIAL.read_text(encoding="utf-8"))
    validator = Draft7Validator(schema)
    return sorted(f"{error.json_path}: {error.message}"
                  for error in (best_match([e]) for e in validator.iter_errors(document)))


def test_the_vendored_schema_is_whole_and_offline():
    schema = json.loads(OFFICIAL.read_text(encoding="utf-8"))
    Draft7Validator.check_schema(schema)
    assert {"bindings-amqp-0.3.0-message", "bindings-amqp-0.3.0-operation",
            "bindings-amqp-0.3.0-channel"} <= set(schema["definitions"])
    remote = sorted(ref for ref in references(schema) if not ref.startswith("#"))
    assert remote == [], f"the vendored schema refers outside itself: {remote}"


def test_the_asyncapi_document_passes_the_official_schema():
    errors = official_errors(contracts.asyncapi_document())
    assert errors == [], (f"contracts/asyncapi.yaml breaks the official AsyncAPI 3.0.0 schema in {len(errors)} "
                          "place(s):\n" + "\n".join(errors))


def test_the_official_schema_checks_the_amqp_bindings():
    """The check is real: what binding 0.3.0 forbids is refused, message by message and operation by operation."""
    document = contracts.asyncapi_document()
    message = next(iter(document["components"]["messages"]))
    broken = copy.deepcopy(document)
    broken["components"]["messages"][message]["bindings"]["amqp"]["deliveryMode"] = 2
    assert official_errors(broken) == [f"$.components.messages.{message}.bindings.amqp: 'deliveryMode' does not "
                                       "match any of the regexes: '^x-[\\\\w\\\\d\\\\.\\\\x2d_]+$'"]
    send = next(key for key, op in document["operations"].items() if op["action"] == "send")
    broken = copy.deepcopy(document)
    broken["operations"][send]["bindings"]["amqp"]["deliveryMode"] = 3
    assert official_errors(broken) == [f"$.operations.{send}.bindings.amqp.deliveryMode: 3 is not one of [1, 2]"]


def test_every_event_is_sent_persistent():
    """What the relay does (delivery_mode 2), said where binding 0.3.0 puts it: on each send operation."""
    document = contracts.asyncapi_document()
    sends = {key: op for key, op in document["operations"].items()
             if op["action"] == "send" and op["channel"]["$ref"].rsplit("/", 1)[-1] in event_channels(document)}
    assert {document["channels"][op["channel"]["$ref"].rsplit("/", 1)[-1]]["address"] for op in sends.values()} == (
        contracts.known_types())
    assert {key: op.get("bindings", {}).get("amqp", {}).get("deliveryMode") for key, op in sends.items()} == (
        dict.fromkeys(sends, 2))


def event_channels(document: dict[str, Any]) -> set[str]:
    """The channels on the events' exchange, `relais.events`."""
    return {key for key, channel in document["channels"].items()
            if channel["bindings"]["amqp"].get("exchange", {}).get("name") == "relais.events"}


def references(schema: Any) -> set[str]:
    """Every `$ref` of a schema, but those in `examples` (sample documents, not schemas)."""
    if isinstance(schema, list):
        return set().union(*map(references, schema))
    if not isinstance(schema, dict):
        return set()
    own = {schema["$ref"]} if isinstance(schema.get("$ref"), str) else set()
    return own.union(*(references(value) for key, value in schema.items() if key not in ("examples", "$ref")))
