"""The report as files (services/usage/outputs/files.py): CSV one line per cell under a stable header, JSON with the
period, when it was made and Row.to_dict per cell; numbers as numbers, a suppressed cell empty (CSV) or null (JSON)."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pytest

from services.usage.outputs import files
from services.usage.outputs.files import COLUMNS, csv_number, render, to_csv, to_json
from services.usage.rules.rows import ALL, GRAINS, INDICATORS, STATUSES, Row

NOV = date(2026, 11, 1)
ROWS = [
    Row("2026-11", "month", NOV, "connections", structure="0750001A", profile="National_ELV", value=1234.0),
    Row("2026-11", "month", NOV, "active_users", structure="0750001A", profile="National_ENS", value=None,
        status="suppressed"),
    Row("2026-11", "month", NOV, "adoption_rate", structure="0750001A", resource="ark:/49591/maths", value=0.75),
    Row("2026-11", "week", date(2026, 11, 30), "active_users", structure="Lycée « Hôtel-de-Ville », 1", value=0.0),
    Row("2026-11", "month", NOV, "active_users", value=41.0, status="noisy"),
]
GENERATED = datetime(2026, 12, 3, 6, 30, tzinfo=UTC)


def read_csv(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text, newline="")))


def test_the_header_is_the_rows_fields_in_their_order():
    """The columns are what the data dictionary documents: a change to Row must change them (and it) knowingly."""
    assert COLUMNS == Row._fields
    assert to_csv([]).splitlines() == [",".join(COLUMNS)]


def test_one_line_per_cell_with_values_as_numbers_and_a_suppressed_one_empty():
    lines = read_csv(to_csv(ROWS))
    assert [line["value"] for line in lines] == ["1234", "", "0.75", "0", "41"]
    assert [line["status"] for line in lines] == ["published", "suppressed", "published", "published", "noisy"]
    assert lines[0] == {"period": "2026-11", "grain": "month", "start": "2026-11-01", "indicator": "connections",
                        "structure": "0750001A", "profile": "National_ELV", "level": ALL, "resource": ALL,
                        "value": "1234", "status": "published"}


def test_text_with_commas_quotes_and_accents_survives_a_csv_reader():
    text = to_csv(ROWS)
    assert read_csv(text)[3]["structure"] == "Lycée « Hôtel-de-Ville », 1"
    assert text.encode("utf-8").decode("utf-8") == text and not text.startswith("\ufeff")
    assert text.endswith("\r\n")


def test_a_value_is_written_positionally_never_in_exponent_form():
    assert [csv_number(v) for v in (0.00001, 1e20, 12.5, -0.0, None)] == ["0.00001", "100000000000000000000",
                                                                          "12.5", "0", ""]


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_a_value_that_is_not_a_finite_number_is_refused_naming_the_row(bad):
    row = ROWS[0]._replace(value=bad)
    with pytest.raises(ValueError, match="connections.*not a finite number"):
        to_csv([row])
    with pytest.raises(ValueError, match="connections.*not a finite number"):
        to_json([row], "2026-11", GENERATED)


def test_json_holds_the_period_when_it_was_made_and_each_row_as_to_dict():
    document = json.loads(to_json(ROWS, "2026-11", GENERATED))
    assert list(document) == ["period", "generated_at", "rows"]
    assert document["period"] == "2026-11"
    assert document["generated_at"] == "2026-12-03T06:30:00Z"
    assert document["rows"][0] == {**ROWS[0].to_dict(), "value": 1234}
    assert [r["value"] for r in document["rows"]] == [1234, None, 0.75, 0, 41]
    assert isinstance(document["rows"][0]["value"], int)


def test_json_written_at_another_offset_is_given_in_utc_and_a_naive_time_is_refused():
    paris = datetime(2026, 12, 3, 7, 30, tzinfo=timezone(timedelta(hours=1)))
    assert json.loads(to_json([], "2026-11", paris))["generated_at"] == "2026-12-03T06:30:00Z"
    with pytest.raises(ValueError, match="no time zone"):
        to_json([], "2026-11", datetime(2026, 12, 3, 6, 30))


def test_json_carries_the_reports_details_between_its_time_and_its_rows():
    document = json.loads(to_json(ROWS[:1], "2026-11", GENERATED, {"provisional": True, "by": ["structure"]}))
    assert list(document) == ["period", "generated_at", "provisional", "by", "rows"]
    with pytest.raises(ValueError, match="overwrite"):
        to_json(ROWS, "2026-11", GENERATED, {"rows": []})


def test_a_row_of_another_period_is_refused_in_either_format():
    stray = ROWS[0]._replace(period="2026-10")
    for fmt in ("csv", "json"):
        with pytest.raises(ValueError, match="period '2026-10', not to the report's '2026-11'"):
            render(fmt, [*ROWS, stray], "2026-11", GENERATED)


def test_render_gives_each_format_and_refuses_another():
    assert render("csv", ROWS, "2026-11", GENERATED) == to_csv(ROWS)
    assert render("json", ROWS, "2026-11", GENERATED) == to_json(ROWS, "2026-11", GENERATED)
    with pytest.raises(ValueError, match="formats are csv, json"):
        render("xlsx", ROWS, "2026-11", GENERATED)


DICTIONARY = Path(files.__file__).resolve().parents[1] / "DATA-DICTIONARY.md"


def test_the_data_dictionary_describes_every_column_and_indicator_in_french_and_in_english():
    french, english = DICTIONARY.read_text(encoding="utf-8").split("\n## English\n")
    for part in (french, english):
        for name in (*COLUMNS, *INDICATORS):
            assert f"| `{name}` |" in part, f"{name} has no line in a table of DATA-DICTIONARY.md"
        for value in (*STATUSES, *GRAINS):
            assert f"`{value}`" in part, f"{value} is not described in DATA-DICTIONARY.md"


def test_the_data_dictionarys_csv_example_is_what_the_report_writes():
    examples = re.findall(r"```csv\n(.*?)```", DICTIONARY.read_text(encoding="utf-8"), re.S)
    assert len(examples) == 2 and examples[0] == examples[1]
    lines = list(csv.DictReader(io.StringIO(examples[0])))
    rows = [Row(period=x["period"], grain=x["grain"], start=date.fromisoformat(x["start"]), indicator=x["indicator"],
                structure=x["structure"], profile=x["profile"], level=x["level"], resource=x["resource"],
                value=float(x["value"]) if x["value"] else None, status=x["status"]) for x in lines]
    assert to_csv(rows).replace("\r\n", "\n") == examples[0]
