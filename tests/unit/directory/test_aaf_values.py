"""Reading AAF attribute values: `$` fields, dates, flags."""

from __future__ import annotations

import pytest

from services.directory.rules.aaf_values import RecordRejected, fields, first, flag, iso_date, optional


def test_dates_become_iso():
    assert iso_date("d", "14/09/1995") == "1995-09-14"
    assert iso_date("d", "1/2/2003") == "2003-02-01"
    assert iso_date("d", "") is None and iso_date("d", None) is None


@pytest.mark.parametrize("value", ["1995-09-14", "14/09/95", "14/9", "aa/bb/cccc", "32/01/2000", "01/00/2000"])
def test_bad_dates_reject_the_record(value):
    with pytest.raises(RecordRejected, match="ENTPersonDateNaissance"):
        iso_date("ENTPersonDateNaissance", value)


def test_fields_counted_and_required():
    assert fields("a", "S1$3A", 2) == ["S1", "3A"]
    assert fields("a", "S1$DOC$DOCUMENTATION", 2, at_least=True) == ["S1", "DOC", "DOCUMENTATION"]
    assert fields("a", "R1$$", 3, required=1) == ["R1", "", ""]
    with pytest.raises(RecordRejected, match="expected 2 fields with the first 2 set, got 1"):
        fields("a", "S1", 2)
    with pytest.raises(RecordRejected, match="expected 2 or more fields"):
        fields("a", "$DOC", 2, at_least=True)


def test_first_optional_and_flag():
    assert first({"sn": ["A", "B"]}, "sn") == "A" and first({"sn": []}, "sn") is None and first({}, "sn") is None
    assert optional(["a", "", "c"], 1) is None and optional(["a"], 3) is None and optional(["a", "b"], 1) == "b"
    assert [flag(v) for v in ("1", "2", "O", "0", "N", "n", "")] == [True, True, True, False, False, False, False]
