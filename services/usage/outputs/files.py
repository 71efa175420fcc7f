"""The report as files for machines: CSV (one line per cell) and JSON, pure functions of the rows.

Both keep the machine names (columns, indicators, profile codes): open-data portals and scripts join
on them; people read labels from the catalogue (labels.py). The data dictionary
(services/usage/DATA-DICTIONARY.md) describes every column; `COLUMNS` is its order and never changes
without it.

- CSV (RFC 4180): UTF-8 without BOM, comma-separated, CRLF line ends, a header line of `COLUMNS`, then
  one line per Row in the order given. `value` is a plain number with a dot (`37`, `0.75`, never
  `1e-05`), a count without `.0`; a suppressed cell's `value` is empty (and its `status` says so).
- JSON: `{"period": ..., "generated_at": ..., "rows": [Row.to_dict(), ...]}`, UTF-8, `generated_at`
  an ISO 8601 UTC instant (`2026-12-01T06:00:00Z`), a count as an integer, a suppressed value null.
  What the report says of itself (`provisional`, `by`, `grain`, `threshold`, `epsilon`...) may go
  between `generated_at` and `rows` (`details`).

A row of another period than the report's, or a value that is not a finite number, is refused with
ValueError naming the row: a file must not silently mix periods or carry NaN.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from services.usage.rules.rows import Row

COLUMNS = ("period", "grain", "start", "indicator", "structure", "profile", "level", "resource", "value", "status")
FORMATS = ("csv", "json")


def number(value: float | None) -> int | float | None:
    """A cell's value as the number it is: a whole value as an int (37, not 37.0), else the float; None stays."""
    if value is None:
        return None
    if not math.isfinite(value):
        raise ValueError(f"value {value!r} is not a finite number")
    return int(value) if float(value).is_integer() else float(value)


def csv_number(value: float | None) -> str:
    """A value as CSV text: `37`, `0.75`, `0.00001` (positional, dot decimal); empty for a suppressed cell."""
    n = number(value)
    if n is None:
        return ""
    if isinstance(n, int):
        return str(n)
    return format(Decimal(repr(n)), "f")


def to_csv(rows: Iterable[Row]) -> str:
    """The rows as CSV text: the header line, then one line per cell (see the module's docstring)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    writer.writerows([row.period, row.grain, row.start.isoformat(), row.indicator, row.structure, row.profile,
                      row.level, row.resource, _csv_value(row), row.status] for row in rows)
    return out.getvalue()


def _csv_value(row: Row) -> str:
    if type(row.value) is int:  # most cells: a count, written as it is
        return str(row.value)
    try:
        return csv_number(row.value)
    except ValueError as e:
        raise ValueError(f"row {row.to_dict()}: {e}") from None


def to_json(rows: Iterable[Row], period: str, generated_at: datetime, details: Mapping[str, Any] | None = None) -> str:
    """The report as JSON text: its period, when it was generated (an aware datetime), its details and its rows."""
    if generated_at.tzinfo is None:
        raise ValueError(f"generated_at {generated_at.isoformat()} has no time zone: give an aware datetime (UTC)")
    clash = sorted(set(details or {}) & {"period", "generated_at", "rows"})
    if clash:
        raise ValueError(f"report details {clash} would overwrite the document's own keys")
    document = {
        "period": period,
        "generated_at": generated_at.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        **(details or {}),
        "rows": [_json_row(row, period) for row in rows],
    }
    return json.dumps(document, ensure_ascii=False, indent=1, allow_nan=False) + "\n"


def render(fmt: str, rows: Sequence[Row], period: str, generated_at: datetime,
           details: Mapping[str, Any] | None = None) -> str:
    """The report in a format of FORMATS (what `relais usage report --format` prints)."""
    if fmt == "csv":
        for row in rows:
            _same_period(row, period)
        return to_csv(rows)
    if fmt == "json":
        return to_json(rows, period, generated_at, details)
    raise ValueError(f"unknown report format {fmt!r}: formats are {', '.join(FORMATS)}")


def _cells(row: Row) -> dict[str, Any]:
    cells = row.to_dict()
    try:
        number(row.value)
    except ValueError as e:
        raise ValueError(f"row {cells}: {e}") from None
    return cells


def _json_row(row: Row, period: str) -> dict[str, Any]:
    _same_period(row, period)
    return {**_cells(row), "value": number(row.value)}


def _same_period(row: Row, period: str) -> None:
    if row.period != period:
        raise ValueError(f"row {row.to_dict()} belongs to period {row.period!r}, not to the report's {period!r}")
