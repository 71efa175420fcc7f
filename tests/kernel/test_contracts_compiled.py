"""The compiled event checks (fastjsonschema) give jsonschema's verdict on every event type.

For each type: the smallest valid event its schema allows, built from the schema itself, then broken one
way at a time (a required field dropped, an unknown field added, a field of the wrong type, a bad date),
each judged by both. jsonschema is the reference.
"""

from __future__ import annotations

import copy

import pytest
from jsonschema import Draft202012Validator, FormatChecker

from relais.bus import contracts
from relais.bus.envelope import Event


def reference(type_: str) -> Draft202012Validator:
    return Draft202012Validator(contracts._schemas()[f"{type_}.json"], registry=contracts._registry(),
                                format_checker=FormatChecker())


def resolve(schema: dict, base: dict) -> tuple[dict, dict]:
    """Follow a $ref among the contracts: (the schema it names, the document it is in)."""
    ref = schema["$ref"]
    name, _, pointer = ref.partition("#")
    document = contracts._schemas()[name.rsplit("/", 1)[-1]] if name else base
    target = document
    for part in [p for p in pointer.split("/") if p]:
        target = target[part]
    return target, document


SAMPLES = {  # a value for each pattern the contracts use on payload fields
    "^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$": "2012-02-01",
    "^[0-9a-f]{64}$": "0" * 64,
    "^[A-Za-z0-9+/]*={0,2}$": "eA==",
    "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$": "01234567-89ab-cdef-0123-456789abcdef",
}


def minimal(schema: dict, base: dict):
    """The smallest instance of `schema` (the keywords the contracts use), or None when not found."""
    if "$ref" in schema:
        return minimal(*resolve(schema, base))
    if "const" in schema:
        return copy.deepcopy(schema["const"])
    if "enum" in schema:
        return copy.deepcopy(schema["enum"][0])
    if "allOf" in schema:
        merged: dict = {}
        for part in schema["allOf"]:
            merged = deep_merge(merged, minimal(part, base))
        return merged
    if "oneOf" in schema:
        return minimal(schema["oneOf"][0], base)
    kind = schema.get("type")
    kind = kind[0] if isinstance(kind, list) else kind
    if kind == "object" and schema.get("minProperties") and isinstance(schema.get("additionalProperties"), dict):
        return {"field": minimal(schema["additionalProperties"], base)}
    if kind == "object" or "properties" in schema:
        # the required properties, and those a later allOf part pins down (consts, nested objects)
        props = schema.get("properties", {})
        wanted = [*schema.get("required", []), *(n for n, p in props.items() if "const" in p or
                                                  p.get("type") == "object")]
        return {name: minimal(props.get(name, {}), base) for name in dict.fromkeys(wanted)}
    if kind == "array":
        return [minimal(schema.get("items", {}), base) for _ in range(schema.get("minItems", 0))]
    if kind == "string":
        return SAMPLES.get(schema.get("pattern"), "x" * max(1, schema.get("minLength", 1)))
    if kind in ("integer", "number"):
        return schema.get("minimum", 1)
    if kind == "boolean":
        return False
    return None


def deep_merge(a, b):
    if isinstance(a, dict) and isinstance(b, dict):
        return {**a, **{k: deep_merge(a[k], v) if k in a else v for k, v in b.items()}}
    return b


def valid_event(type_: str) -> dict:
    schema = contracts._schemas()[f"{type_}.json"]
    envelope = Event(type=type_, payload={}, source="relais.test", tenant="t", correlation_id="c").to_dict()
    shape = minimal(schema, schema)
    return {**envelope, **{k: v for k, v in shape.items() if k not in ("id", "occurred_at", "correlation_id",
                                                                      "causation_id", "tenant")}}


def broken(event: dict) -> list[dict]:
    out = []
    for key in event:
        out.append({k: v for k, v in event.items() if k != key})
        out.append({**event, key: {"not": "this"}})
    for key in event["payload"]:
        out.append({**event, "payload": {k: v for k, v in event["payload"].items() if k != key}})
        out.append({**event, "payload": {**event["payload"], key: {"not": "this"}}})
        out.append({**event, "payload": {**event["payload"], key: None}})
        out.append({**event, "payload": {**event["payload"], key: 12}})
    out.append({**event, "payload": {**event["payload"], "unknown_field": 1}})
    out.append({**event, "extra": 1})
    out.append({**event, "occurred_at": "2026-02-30T10:00:00Z"})  # no such day: RFC 3339 refuses it
    out.append({**event, "occurred_at": "2026-11-23T10:00:00"})  # no time zone
    out.append({**event, "version": True})
    return out


@pytest.mark.parametrize("type_", sorted(contracts.known_types()))
def test_the_compiled_check_agrees_with_jsonschema(type_):
    judge = reference(type_)
    event = valid_event(type_)
    assert judge.is_valid(event), [e.message for e in judge.iter_errors(event)]
    cases = [event, *broken(event)]
    verdicts = []
    for case in cases:
        try:
            contracts.validate_event(case)
            accepted = True
        except contracts.ContractError:
            accepted = False
        assert accepted == judge.is_valid(case), case
        verdicts.append(accepted)
    assert verdicts[0] and not all(verdicts[1:])  # the samples are not all valid, nor all refused


def test_a_refusal_still_says_what_and_where():
    event = valid_event("sso.login.succeeded")
    del event["payload"]["person"]
    with pytest.raises(contracts.ContractError, match=r"sso\.login\.succeeded\): at payload: must have person$"):
        contracts.validate_event(event)


SECRET = "Dupont-1969-12-31"  # a value no refusal may quote: it is logged and kept in dead letters' headers


@pytest.mark.parametrize("type_", sorted(contracts.known_types()))
def test_a_refusal_names_the_field_and_the_rule_never_the_value(type_):
    event = valid_event(type_)
    cases = [{**event, "payload": {**event["payload"], key: bad}}
             for key in event["payload"] for bad in (SECRET, [SECRET], {"x": SECRET}, {SECRET: SECRET})]
    cases += [{**event, "payload": {**event["payload"], "is_admin": SECRET}}, {**event, "id": SECRET}]
    refused = 0
    for case in cases:
        reason = contracts.refusal(case)
        if reason is None:
            continue
        refused += 1
        assert SECRET not in reason and "Dupont" not in reason, reason
        where = reason.split(":", 1)[0]
        assert where == "(the event)" or where.split(".")[0] in ("payload", "id"), reason
        with pytest.raises(contracts.ContractError) as caught:
            contracts.validate_event(case)
        assert SECRET not in str(caught.value)
    assert refused >= len(cases) // 2
