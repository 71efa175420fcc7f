"""Reading AAF attribute values: first values, `$`-separated fields, dates and flags.

A value that breaks its format raises `RecordRejected`: the record is
reported and skipped, the file goes on.
"""

from __future__ import annotations


class RecordRejected(ValueError):
    """The record breaks a rule; it is reported and skipped, the file goes on."""


def first(attrs: dict[str, list[str]], name: str) -> str | None:
    """The attribute's first value, None when it has none."""
    values = attrs.get(name)
    return values[0] if values else None


def fields(name: str, value: str, count: int, *, required: int | None = None, at_least: bool = False) -> list[str]:
    """Split a `$` value into `count` fields (or more, `at_least`); the first `required` must be set."""
    parts = value.split("$")
    required = count if required is None else required
    ok = len(parts) >= count if at_least else len(parts) == count
    if not ok or not all(parts[:required]):
        expected = f"{count}{' or more' if at_least else ''}"
        raise RecordRejected(
            f"attribute {name} value {value!r}: broken '$' format, expected {expected} fields "
            f"with the first {required} set, got {len(parts)}"
        )
    return parts


def optional(parts: list[str], index: int) -> str | None:
    """Field `index` of a split value, None when it is empty or missing."""
    return parts[index] or None if index < len(parts) else None


def iso_date(name: str, value: str | None) -> str | None:
    """A dd/mm/yyyy value as yyyy-mm-dd (None when empty)."""
    if not value:
        return None
    parts = value.split("/")
    if len(parts) != 3 or not all(p.isdigit() for p in parts) or len(parts[2]) != 4:
        raise RecordRejected(f"attribute {name} value {value!r}: expected a date dd/mm/yyyy")
    day, month, year = (int(p) for p in parts)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        raise RecordRejected(f"attribute {name} value {value!r}: not a valid date")
    return f"{year:04d}-{month:02d}-{day:02d}"


def flag(value: str) -> bool:
    """A yes/no field: anything but empty, `0` or `N` is yes (the exports write 1, 2, O...)."""
    return value not in ("", "0", "N", "n")
