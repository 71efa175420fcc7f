"""A fast first check of a vertical's index.json (the SDK's JSON Schema check costs ~1.3 ms an item: most of a
bag's CPU), never more lenient than the exact one.

The vertical's schema is compiled to Python by fastjsonschema (as the bus's contracts are, relais/bus/contracts.py),
read as draft 7 with one change: an item record's ``unevaluatedProperties: false`` (2020-12) becomes
``additionalProperties: false`` over the names the item's own ``properties`` and the common item's
``properties`` declare (not those only a conditional declares). Those names are always evaluated in 2020-12,
so this is as strict or stricter (a ``$`` in a pattern is the end of the string, not before a last newline:
stricter too); formats
are checked by jsonschema's own format checker, so they mean the same. An index this check accepts is valid;
one it refuses is checked again by the exact check (:func:`connectors.sdk.index_document`), which decides and
names the fault. A schema of another shape (an item not built on the common item) gets no fast check.
"""
from __future__ import annotations

import copy
import functools
import json
from collections.abc import Callable
from typing import Any

from jsonschema import FormatChecker

from connectors.sdk.schemas import schemas_dir

_DRAFT7 = "http://json-schema.org/draft-07/schema#"


def _docs() -> dict[str, dict[str, Any]]:
    return {p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(schemas_dir().glob("*.json"))}


def _class_dollars_escaped(pattern: str) -> str:
    """``$`` inside a character class escaped: fastjsonschema turns every unescaped ``$`` into ``\\Z`` (end of
    string), which inside ``[...]`` is no valid regex. Same meaning for ``re``."""
    out, in_class, escaped = [], False, False
    for ch in pattern:
        if escaped:
            out.append(ch)
            escaped = False
            continue
        if ch == "\\":
            escaped = True
        elif ch == "[" and not in_class:
            in_class = True
        elif ch == "]" and in_class:
            in_class = False
        elif ch == "$" and in_class:
            out.append("\\")
        out.append(ch)
    return "".join(out)


def _patterns_fixed(node: Any) -> Any:
    if isinstance(node, dict):
        return {k: _class_dollars_escaped(v) if k == "pattern" and isinstance(v, str) else _patterns_fixed(v)
                for k, v in node.items()}
    if isinstance(node, list):
        return [_patterns_fixed(v) for v in node]
    return node


def _closed(doc: dict[str, Any], common_names: set[str]) -> dict[str, Any] | None:
    """The vertical's schema with its item closed by additionalProperties, or None when it is not of the shape
    this relies on."""
    item = doc.get("$defs", {}).get("item")
    if (not isinstance(item, dict) or item.get("unevaluatedProperties") is not False
            or (item.get("allOf") or [None])[0] != {"$ref": "common.json#/$defs/item"}
            or "additionalProperties" in item):
        return None  # other subschemas of allOf only add constraints: names they declare are not in the closed set
    out = copy.deepcopy(doc)
    closed = out["$defs"]["item"]
    del closed["unevaluatedProperties"]
    closed["properties"] = {**{name: {} for name in common_names}, **closed.get("properties", {})}
    closed["additionalProperties"] = False
    return out


@functools.cache
def fast_check(vertical: str) -> Callable[[dict[str, Any]], bool] | None:
    """Whether an index.json document of ``vertical`` is valid, when True; None when no fast check applies."""
    import fastjsonschema

    docs = _docs()
    common = docs.get("common.json", {})
    common_item = common.get("$defs", {}).get("item", {})
    if "unevaluatedProperties" in json.dumps(common_item.get("properties", {})) or f"{vertical}.json" not in docs:
        return None
    converted = _closed(docs[f"{vertical}.json"], set(common_item.get("properties", {})))
    if converted is None:
        return None
    by_id = {d["$id"]: _patterns_fixed({**d, "$schema": _DRAFT7}) for d in docs.values()}
    formats = FormatChecker()

    def resolve(uri: str) -> dict[str, Any]:
        return by_id[uri.split("#", 1)[0]]

    validate = fastjsonschema.compile(
        _patterns_fixed({**converted, "$schema": _DRAFT7}), handlers={"https": resolve},
        formats={"date-time": lambda v: formats.conforms(v, "date-time"),
                 "date": lambda v: formats.conforms(v, "date")})

    def check(doc: dict[str, Any]) -> bool:
        try:
            validate(doc)
        except fastjsonschema.JsonSchemaException:
            return False
        return True

    return check
