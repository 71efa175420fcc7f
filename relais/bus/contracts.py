"""Validation of events against the JSON Schemas in `contracts/`.

Producers validate what they publish (the bulk import path validates in tests
and on demand), consumers validate the envelope to spot poison messages.

Both checks run on the schemas compiled to Python by fastjsonschema (a few
microseconds an event, against ~0.5 ms for `jsonschema`, which an SSO login
would pay on its own events); `jsonschema` stays the reference: it writes the
message when the compiled check refuses, and the tests hold the two to the
same verdicts. (The schemas use only keywords draft 7 has, so the compiled
form reads them as draft 7; `date-time` is checked by the same RFC 3339
validator in both.)
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from relais.config import Settings

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
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


@functools.cache
def _validator(file_name: str) -> Draft202012Validator:
    """The reference validator, which says why an event is refused.

    jsonschema and referencing load here, on the first refusal: they cost a process about 5 MB
    and 60 ms, which every process writing events (the directory's parser processes among them)
    would pay for nothing on a day without a bad event.
    """
    from jsonschema import Draft202012Validator, FormatChecker

    return Draft202012Validator(_schemas()[file_name], registry=_registry(), format_checker=FormatChecker())


@functools.lru_cache(maxsize=1)
def _registry() -> Registry:
    """The schemas by `$id`, for the reference validator (loaded with it: see `_validator`)."""
    from referencing import Registry, Resource

    return Registry().with_resources((schema["$id"], Resource.from_contents(schema)) for schema in _schemas().values())


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
    _checked(f"{type_}.json", event, f"event {event.get('id')} ({type_})")


def validate_envelope(event: Any) -> None:
    """Raise ContractError unless `event` is a well-formed envelope (any type)."""
    _checked("envelope.json", event, "envelope")


def _checked(file_name: str, event: Any, what: str) -> None:
    """The compiled check; when it refuses, `jsonschema` says why (and if the two disagree, refused anyway)."""
    if not _compiled(file_name)(event):
        _check(_validator(file_name), event, what)
        raise ContractError(f"{what}: {event!r:.200}: refused") from None


@functools.cache
def _compiled(file_name: str) -> Callable[[Any], bool]:
    """Whether an event passes the schema compiled to Python (compiled on first use).

    Its libraries load here, as the reference validator's do (`_validator`): every process that
    writes events imports this module (the directory's parser processes among them, several MB
    each), and only those that validate need them.
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
    refused = fastjsonschema.JsonSchemaException

    def passes(event: Any) -> bool:
        try:
            validate(event)
        except refused:
            return False
        return True

    return passes


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
