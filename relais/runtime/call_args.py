"""The arguments of `relais rpc SERVICE METHOD ARG...` as the method receives them (no I/O).

An argument is a string, exactly as written: `52006` (a structure's id), `0750001A` (a UAI) and
`007` reach the method as the strings "52006", "0750001A" and "007", whatever they look like.
Another type is asked for with the `json:` prefix, followed by a JSON value: `json:3` (a number),
`json:true`, `json:null`, `json:["6A","6B"]`, `json:{"a":1}`; `json:"json:x"` is the string
`json:x`.
"""

from __future__ import annotations

import json
from typing import Any

JSON_PREFIX = "json:"

SYNTAX = ('Each ARG is a string as written (52006 and 0750001A stay strings); prefix json: for another '
          'type: json:3, json:true, json:null, json:\'["6A","6B"]\'.')


class CallArgumentError(ValueError):
    """An argument that does not say what it holds: the message names it and its position."""


def call_argument(text: str, position: int) -> Any:
    """The value argument number `position` (1 for the first after METHOD) stands for."""
    if not text.startswith(JSON_PREFIX):
        return text
    try:
        return json.loads(text[len(JSON_PREFIX):])
    except json.JSONDecodeError as exc:
        raise CallArgumentError(f"argument {position} ({text!r}): what follows {JSON_PREFIX} is not JSON: "
                                f"{exc.msg} at column {exc.colno}") from None


def call_arguments(texts: list[str] | tuple[str, ...]) -> list[Any]:
    """Every argument's value, in order (see the module's docstring for the syntax)."""
    return [call_argument(text, i) for i, text in enumerate(texts, 1)]
