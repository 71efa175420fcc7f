"""SCIM filters (RFC 7644 §3.4.2.2) and attribute paths, in plain Python: parse once, test resources (dicts).

`parse(text)` returns a predicate over a SCIM resource or raises `FilterError`
(the caller answers 400 invalidFilter). Attribute names are case-insensitive;
string comparisons are too, except for the attributes in `CASE_EXACT` (the
schemas say `caseExact: true` for those).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]

CORE_PREFIXES = ("urn:ietf:params:scim:schemas:core:2.0:user:", "urn:ietf:params:scim:schemas:core:2.0:group:")
CASE_EXACT = frozenset({"id", "externalid", "meta.version", "meta.location", "members.value", "members.$ref",
                        "groups.value", "groups.$ref"})
OPERATORS = frozenset({"eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"})
_TOKEN = re.compile(r'\s*(?:(?P<punct>[()\[\]])|(?P<string>"(?:[^"\\]|\\.)*")|(?P<word>[^\s()\[\]"]+))')


class FilterError(ValueError):
    """The filter does not parse or compares what cannot be compared."""


def strip_schema(path: str) -> str:
    """`urn:…:core:2.0:User:name.givenName` -> `name.givenName`."""
    low = path.lower()
    for prefix in CORE_PREFIXES:
        if low.startswith(prefix):
            return path[len(prefix):]
    return path


def get_attr(obj: Any, name: str) -> Any:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k.lower() == name.lower():
                return v
    return None


def values(resource: dict[str, Any], path: str) -> list[Any]:
    """The leaf values at `path` (sub-attributes through multi-valued attributes; `emails` means `emails.value`)."""
    current: list[Any] = [resource]
    for part in strip_schema(path).split("."):
        nxt: list[Any] = []
        for obj in current:
            v = get_attr(obj, part)
            nxt.extend(v if isinstance(v, list) else [v])
        current = [v for v in nxt if v is not None]
    out: list[Any] = []
    for v in current:
        out.append(get_attr(v, "value") if isinstance(v, dict) and get_attr(v, "value") is not None else v)
    return out


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos:
            raise FilterError(f"unexpected character at position {pos} of the filter")
        kind = m.lastgroup or ""
        out.append((kind, m.group(kind)))
        pos = m.end()
    return out


def _literal(kind: str, raw: str) -> Any:
    if kind == "string":
        return json.loads(raw)
    low = raw.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "null":
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise FilterError(f"{raw!r} is not a comparison value (strings need double quotes)") from None


def _compare(op: str, have: Any, want: Any, exact: bool) -> bool:
    if isinstance(have, str) and isinstance(want, str) and not exact:
        have, want = have.lower(), want.lower()
    if op == "eq":
        return have == want
    if op == "ne":
        return have != want
    if op in ("co", "sw", "ew"):
        if not isinstance(have, str) or not isinstance(want, str):
            return False
        return want in have if op == "co" else have.startswith(want) if op == "sw" else have.endswith(want)
    if isinstance(have, bool) or isinstance(want, bool) or want is None:
        raise FilterError(f"{op} does not apply to booleans or null")
    if type(have) is not type(want) and not (isinstance(have, (int, float)) and isinstance(want, (int, float))):
        return False
    return {"gt": have > want, "ge": have >= want, "lt": have < want, "le": have <= want}[op]


def _either(a: Predicate, b: Predicate) -> Predicate:
    return lambda r: a(r) or b(r)


def _both(a: Predicate, b: Predicate) -> Predicate:
    return lambda r: a(r) and b(r)


class _Parser:
    def __init__(self, text: str):
        self.toks = _tokens(text)
        self.i = 0

    def peek(self, offset: int = 0) -> tuple[str, str] | None:
        j = self.i + offset
        return self.toks[j] if j < len(self.toks) else None

    def take(self) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise FilterError("the filter ends too early")
        self.i += 1
        return tok

    def word(self, *choices: str) -> bool:
        tok = self.peek()
        return tok is not None and tok[0] == "word" and tok[1].lower() in choices

    def expect(self, punct: str) -> None:
        tok = self.take()
        if tok != ("punct", punct):
            raise FilterError(f"expected {punct!r}, found {tok[1]!r}")

    def expr(self, prefix: str = "") -> Predicate:
        left = self.term(prefix)
        while self.word("or"):
            self.i += 1
            right = self.term(prefix)
            left = _either(left, right)
        return left

    def term(self, prefix: str) -> Predicate:
        left = self.factor(prefix)
        while self.word("and"):
            self.i += 1
            right = self.factor(prefix)
            left = _both(left, right)
        return left

    def factor(self, prefix: str) -> Predicate:
        if self.word("not") and self.peek(1) == ("punct", "("):
            self.i += 1
            inner = self.factor(prefix)
            return lambda r: not inner(r)
        if self.peek() == ("punct", "("):
            self.i += 1
            inner = self.expr(prefix)
            self.expect(")")
            return inner
        kind, path = self.take()
        if kind != "word" or path.lower() in OPERATORS | {"and", "or", "not", "pr"}:
            raise FilterError(f"expected an attribute path, found {path!r}")
        path = strip_schema(path)
        if self.peek() == ("punct", "["):  # valuePath: emails[type eq "work" and value co "@x"]
            self.i += 1
            inner = self.expr(prefix=path)
            self.expect("]")

            def any_item(r: dict[str, Any], path: str = path, inner: Predicate = inner) -> bool:
                items = get_attr(r, path) if "." not in path else None
                items = items if isinstance(items, list) else [items] if isinstance(items, dict) else []
                return any(isinstance(it, dict) and inner(it) for it in items)
            return any_item
        full = f"{prefix}.{path}" if prefix else path
        exact = full.lower() in CASE_EXACT
        op_tok = self.take()
        op = op_tok[1].lower()
        if op_tok[0] != "word" or op not in OPERATORS | {"pr"}:
            raise FilterError(f"expected an operator after {path!r}, found {op_tok[1]!r}")
        if op == "pr":
            return lambda r: any(v not in ("", [], {}) for v in values(r, path))
        want = _literal(*self.take())

        def test(r: dict[str, Any]) -> bool:
            have = values(r, path)
            if op == "ne":
                return not any(_compare("eq", h, want, exact) for h in have)
            return any(_compare(op, h, want, exact) for h in have)
        return test


def parse(text: str) -> Predicate:
    """A predicate for the SCIM filter `text`; FilterError if it is not one."""
    if not text or not text.strip():
        raise FilterError("the filter is empty")
    p = _Parser(text)
    pred = p.expr()
    if p.peek() is not None:
        raise FilterError(f"unexpected {p.peek()[1]!r} after a complete filter")  # type: ignore[index]
    return pred
