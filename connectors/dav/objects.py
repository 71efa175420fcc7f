"""Reading just enough of iCalendar (RFC 5545) and vCard (RFC 6350) bytes: no I/O, no rewriting.

The connectors never re-serialise content (the bytes go through as the source served them);
these functions only read a UID, a component name or a version for the item's metadata, and
decide whether two serialisations say the same thing (:func:`same_content`), since some
servers (Radicale) rewrite what they store: they reorder properties and refold lines.
"""
from __future__ import annotations

from collections import Counter


def unfold(data: bytes) -> list[str]:
    """Content lines, unfolded (RFC 5545 §3.1), line endings dropped, empty lines skipped."""
    text = data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    lines: list[str] = []
    for raw in text.split("\n"):
        if raw[:1] in (" ", "\t") and lines:
            lines[-1] += raw[1:]
        elif raw:
            lines.append(raw)
    return lines


def _name(line: str) -> str:
    head = line.split(":", 1)[0]
    return head.split(";", 1)[0].upper()


def _value(line: str) -> str:
    return line.split(":", 1)[1] if ":" in line else ""


def first_value(data: bytes, prop: str) -> str | None:
    """The value of the first ``prop`` line (``UID``, ``VERSION``...), None if absent."""
    prop = prop.upper()
    for line in unfold(data):
        if _name(line) == prop:
            return _value(line).strip()
    return None


def main_component(data: bytes, container: str = "VCALENDAR") -> str | None:
    """The first component inside ``container`` other than VTIMEZONE (``VEVENT``, ``VTODO``...)."""
    depth = 0
    for line in unfold(data):
        name = _name(line)
        if name == "BEGIN":
            comp = _value(line).strip().upper()
            if depth == 1 and comp != "VTIMEZONE":
                return comp
            depth += 1
        elif name == "END":
            depth -= 1
    return None


def _tree(lines: list[str]) -> tuple[Counter, list]:
    """(multiset of property lines, sorted child trees) of one component's lines."""
    props: Counter = Counter()
    children: list = []
    i = 0
    while i < len(lines):
        line = lines[i]
        if _name(line) == "BEGIN":
            comp = _value(line).strip().upper()
            depth, j = 1, i + 1
            while j < len(lines) and depth:
                n = _name(lines[j])
                if n == "BEGIN":
                    depth += 1
                elif n == "END":
                    depth -= 1
                j += 1
            children.append((comp, _tree(lines[i + 1:j - 1])))
            i = j
        else:
            props[_canonical(line)] += 1
            i += 1
    return props, sorted(children, key=repr)


def _canonical(line: str) -> str:
    """Property name upper-cased, parameters sorted, names upper-cased, values unquoted
    (``CN="Mme Dupont"`` and ``CN=Mme Dupont`` are the same parameter)."""
    head, value = _split_value(line)
    parts = _split_params(head)
    params = []
    for p in parts[1:]:
        name, _, val = p.partition("=")
        if len(val) >= 2 and val[0] == val[-1] == '"':
            val = val[1:-1]
        params.append(f"{name.upper()}={val}")
    return ";".join([parts[0].upper(), *sorted(params)]) + ":" + value


def _split_value(line: str) -> tuple[str, str]:
    """Split at the first ':' outside a quoted parameter value."""
    quoted = False
    for i, ch in enumerate(line):
        if ch == '"':
            quoted = not quoted
        elif ch == ":" and not quoted:
            return line[:i], line[i + 1:]
    return line, ""


def _split_params(head: str) -> list[str]:
    parts: list[str] = []
    cur: list[str] = []
    quoted = False
    for ch in head:
        if ch == '"':
            quoted = not quoted
        if ch == ";" and not quoted:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    return parts


def same_content(a: bytes, b: bytes) -> bool:
    """True when ``a`` and ``b`` are the same objects, properties and values, in any order and folding."""
    return a == b or _tree(unfold(a)) == _tree(unfold(b))
