"""Validation of events against the JSON Schemas in `contracts/`.

Producers validate what they publish (the bulk import path validates in tests
and on demand); consumers validate every event they receive against the
schema of its type (`refusal`) and dead-letter what breaks it.

The checks run on the schemas compiled to Python by fastjsonschema, once per
type and process (a few microseconds an event, against ~0.5 ms for
`jsonschema`, which an SSO login would pay on its own events). A refusal names
the field and the rule it breaks, never the value (`payload.person.birth_date:
must match pattern ...`): it is logged and travels in a dead letter's headers,
and a value may be a pupil's birth date. `jsonschema` stays the reference: the
tests hold the compiled check to its verdicts (the schemas use only keywords
draft 7 has, so the compiled form reads them as draft 7; `date-time` is checked
by the same RFC 3339 validator in both).
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relais.config import Settings

if TYPE_CHECKING:
    from referencing import Registry


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


def known_types() -> frozenset[str]:
    """The message types that have a schema."""
    return frozenset(name[:-5] for name in _schemas() if name not in ("envelope.json", "common.json"))


@functools.lru_cache(maxsize=1)
def _registry() -> Registry:
    """The schemas by `$id`, for `jsonschema`, the reference the tests hold the compiled checks to."""
    from referencing import Registry, Resource

    return Registry().with_resources((schema["$id"], Resource.from_contents(schema)) for schema in _schemas().values())


def validate_event(event: Mapping[str, Any]) -> None:
    """Raise ContractError unless `event` matches the schema of its type (the message names no value)."""
    type_ = event.get("type") if isinstance(event, Mapping) else None
    if not isinstance(type_, str) or type_ not in known_types():
        raise ContractError(f"unknown event type {_safe(type_)}: no schema in {contracts_dir() / 'schemas'}")
    reason = refusal(event)
    if reason is not None:
        id_ = event.get("id")
        raise ContractError(f"event {id_ if isinstance(id_, str) and _UUID.fullmatch(id_) else '(bad id)'} "
                            f"({type_}): at {reason}")


def refusal(event: Mapping[str, Any]) -> str | None:
    """Why `event`, of a type in `known_types()`, breaks the schema of its type; None when it keeps it.

    The first breach found, as `<field path>: <rule>` (`payload.person.profiles: must be array`,
    `payload: additional property is_admin not allowed`), never the value found there.
    """
    return _compiled(f"{event['type']}.json")(event)


def validate_envelope(event: Any) -> None:
    """Raise ContractError unless `event` is a well-formed envelope (any type)."""
    reason = _compiled("envelope.json")(event)
    if reason is not None:
        raise ContractError(f"envelope: at {reason}")


def types_bound(bindings: Iterable[str]) -> frozenset[str]:
    """The types with a schema that a queue bound with these routing keys receives (AMQP topic
    patterns: `*` one word, `#` zero or more)."""
    patterns = [b.split(".") for b in bindings]
    return frozenset(t for t in known_types() if any(_topic_matches(p, t.split(".")) for p in patterns))


def _topic_matches(pattern: list[str], words: list[str]) -> bool:
    if not pattern:
        return not words
    head, rest = pattern[0], pattern[1:]
    if head == "#":
        return any(_topic_matches(rest, words[i:]) for i in range(len(words) + 1))
    return bool(words) and head in ("*", words[0]) and _topic_matches(rest, words[1:])


@functools.cache
def _compiled(file_name: str) -> Callable[[Any], str | None]:
    """The schema compiled to Python (on first use): what an event breaks, or None.

    Its libraries load here: every process that writes events imports this module (the
    directory's parser processes among them, several MB each), and only those that validate
    need them.
    """
    import fastjsonschema
    from rfc3339_validator import validate_rfc3339

    by_id = {schema["$id"]: _as_draft7(schema) for schema in _schemas().values()}

    def resolve(uri: str) -> dict:
        try:
            return by_id[uri.split("#", 1)[0]]
        except KeyError:
            raise ContractError(f"{file_name}: $ref to {uri}, which is not one of the contracts") from None

    validate = fastjsonschema.compile(_as_draft7(_schemas()[file_name]), handlers={"https": resolve},
                                      formats={"date-time": validate_rfc3339})
    refused = fastjsonschema.JsonSchemaValueException

    def breach(event: Any) -> str | None:
        try:
            validate(event)
        except refused as exc:
            return _described(exc)
        return None

    return breach


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_NAME = re.compile(r"(?=.{1,64}$)[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")  # a field, a type


def _safe(value: Any) -> str:
    """A key or type quoted in a message if it looks like a field's name (`is_admin`, `attributes.ENTPersonNom`);
    else not quoted: a key that is not a field may be anything, personal data included."""
    return value if isinstance(value, str) and _NAME.fullmatch(value) else "(a key that is not a field name)"


def _described(exc: Any) -> str:
    """`<path>: <rule>` from fastjsonschema's refusal, which holds the value apart (`exc.value`)."""
    where = _where(exc.path[1:])
    value, rule, definition = exc.value, exc.rule, exc.rule_definition
    if rule == "required" and isinstance(value, Mapping):
        missing = [key for key in definition if key not in value]
        return f"{where}: must have {', '.join(missing)}"
    if rule == "additionalProperties" and isinstance(value, Mapping):
        schema = exc.definition if isinstance(exc.definition, Mapping) else {}
        extra = [_safe(key) for key in value if key not in schema.get("properties", {})
                 and not any(re.search(p, key) for p in schema.get("patternProperties", {}))]
        return f"{where}: additional propert{'y' if len(extra) == 1 else 'ies'} {', '.join(extra)} not allowed"
    if rule == "const":
        return f"{where}: must be {json.dumps(definition)}"
    # fastjsonschema's own words, `<name> <rule>`: made of the schema, never of the value
    return f"{where}: {str(exc.message).removeprefix(str(exc.name)).strip()}"


def _where(parts: list[str]) -> str:
    """`payload.person.memberships[0]`; a key that does not look like a field's name shows as `(key)`."""
    out = ""
    for part in parts:
        if part.isdigit():
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (part if _NAME.fullmatch(part) else "(key)")
    return out or "(the event)"


def _as_draft7(schema: dict) -> dict:
    return dict(schema, **{"$schema": "http://json-schema.org/draft-07/schema#"})


def asyncapi_document() -> dict:
    import yaml  # on first use, as the validators' libraries (see `_compiled`)

    return yaml.safe_load((contracts_dir() / "asyncapi.yaml").read_text(encoding="utf-8"))


@functools.lru_cache(maxsize=1)
def _receivers() -> tuple[tuple[str, str, bool], ...]:
    """(consumer, event type, planned) for each AsyncAPI `receive` operation that names its consumer."""
    doc = asyncapi_document()
    channels = doc.get("channels") or {}
    out = []
    for key, op in (doc.get("operations") or {}).items():
        name = op.get("x-relais-consumer")
        if op.get("action") != "receive" or not name:
            continue
        ref = (op.get("channel") or {}).get("$ref", "")
        channel = channels.get(ref.rsplit("/", 1)[-1])
        if channel is None:
            raise ContractError(f"asyncapi.yaml: operation {key} refers to channel {ref!r}, which is not there")
        out.append((name, channel["address"], bool(op.get("x-relais-planned"))))
    return tuple(out)


def _by_consumer(planned: bool) -> dict[str, tuple[str, ...]]:
    out: dict[str, list[str]] = {}
    for name, type_, is_planned in _receivers():
        if is_planned == planned:
            out.setdefault(name, []).append(type_)
    return {name: tuple(sorted(types)) for name, types in out.items()}


@functools.lru_cache(maxsize=1)
def subscriptions() -> dict[str, tuple[str, ...]]:
    """Consumer name -> the event types it receives, from the AsyncAPI `receive` operations.

    Each such operation names its consumer with `x-relais-consumer`; the
    consumer's queue is `relais.q.<name>`, bound to those types. Operations
    marked `x-relais-planned` (a consumer named in the contracts but not built
    yet) are left out: no queue is bound for them (see `planned_subscriptions`).
    """
    return _by_consumer(planned=False)


@functools.lru_cache(maxsize=1)
def planned_subscriptions() -> dict[str, tuple[str, ...]]:
    """Consumer name -> the event types it will receive once built (`x-relais-planned` operations).

    Publishers declare no queue for them, so their events go to `relais.unrouted`,
    which is bounded (`relais.bus.bounds`), instead of filling a queue nobody reads.
    """
    return _by_consumer(planned=True)


def consumers_of() -> dict[str, tuple[str, ...]]:
    """Event type -> every consumer the contracts name for it, built or planned."""
    out: dict[str, set[str]] = {}
    for name, type_, _planned in _receivers():
        out.setdefault(type_, set()).add(name)
    return {type_: tuple(sorted(names)) for type_, names in out.items()}


def published_types() -> frozenset[str]:
    """The event types some AsyncAPI `send` operation publishes."""
    doc = asyncapi_document()
    channels = doc.get("channels") or {}
    return frozenset(channels[op["channel"]["$ref"].rsplit("/", 1)[-1]]["address"]
                     for op in (doc.get("operations") or {}).values() if op.get("action") == "send")


def expected_consumers(settings: Settings) -> tuple[str, ...]:
    """The consumers whose queues publishers declare, so no event waits in `relais.unrouted` for them:
    RELAIS_CONSUMERS when set, else every consumer the contracts name that is built (not only planned)."""
    if settings.consumers is not None:
        return settings.consumers
    return tuple(sorted(subscriptions()))
