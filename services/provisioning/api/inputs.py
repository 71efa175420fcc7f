"""Input the APIs refuse before using it: what no database column or JSON record of ours can hold.

- a NUL character (U+0000) in text: PostgreSQL text cannot hold one, so an id, a
  filter value or an attribute holding one failed in the database as a server error;
- in a JSON body, an integer beyond 64 bits: the records are stored as JSON by
  orjson, which (like most JSON readers) holds integers to 64 bits;
- a query parameter given more than once: which one was meant is ambiguous.

Nothing legitimate needs either. The OneRoster and SCIM handlers answer 400 in
their own error shapes, naming where the problem is (never echoing the value).
"""

from __future__ import annotations

from typing import Any

from werkzeug.wrappers import Request

NUL = "\x00"
_INT64 = range(-(2**63), 2**63)


def nul_in_url(request: Request, path: str) -> str | None:
    """Where a NUL is in the request's path or query ("the path", "query parameter 'x'"), or None."""
    if NUL in path:
        return "the path"
    for name, value in request.args.items(multi=True):
        if NUL in name or NUL in value:
            return f"query parameter {name.replace(NUL, '')!r}"
    return None


def repeated_parameters(request: Request) -> str | None:
    """A query parameter given more than once ("query parameter count given more than once"), or None."""
    repeated = sorted(name for name, values in request.args.lists() if len(values) > 1)
    return f"query parameter {', '.join(repeated)} given more than once" if repeated else None


def json_problem(value: Any, where: str = "") -> str | None:
    """What is wrong with the first unstorable value of a JSON document, with its dotted path, or None."""
    here = where or "the body"
    if isinstance(value, str):
        return f"{here} holds a NUL character" if NUL in value else None
    if isinstance(value, int) and not isinstance(value, bool):
        return None if value in _INT64 else f"{here} is an integer beyond 64 bits"
    if isinstance(value, dict):
        for key, item in value.items():
            name = f"{where}.{str(key).replace(NUL, '')}".lstrip(".")
            if NUL in str(key):
                return f"the name of {name} holds a NUL character"
            found = json_problem(item, name)
            if found:
                return found
    if isinstance(value, list):
        for i, item in enumerate(value):
            found = json_problem(item, f"{where}[{i}]")
            if found:
                return found
    return None
