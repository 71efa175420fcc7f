"""A pupil's relatives: `relative$link$financial$legal$contact$payment`, and who is a legal guardian."""

from __future__ import annotations

import pytest

from services.directory.rules.aaf_values import RecordRejected
from services.directory.rules.relatives import relative_membership


def test_a_relative_with_all_its_flags():
    assert relative_membership("2867253$10$1$1$1$1") == {
        "kind": "relative", "person": "2867253", "link": "10",
        "financial": True, "legal_guardian": True, "contact": True, "payment": True}


@pytest.mark.parametrize(("legal", "guardian"), [("1", True), ("2", True), ("O", True),
                                                 ("0", False), ("N", False), ("n", False), ("", False)])
def test_any_non_zero_legal_field_marks_a_legal_guardian(legal, guardian):
    assert relative_membership(f"R1$20$0${legal}$0$0")["legal_guardian"] is guardian


def test_only_the_relatives_jointure_is_required():
    assert relative_membership("R1$$$$$") == {
        "kind": "relative", "person": "R1", "link": None,
        "financial": False, "legal_guardian": False, "contact": False, "payment": False}


@pytest.mark.parametrize("value", ["$10$1$1$1$1", "R1$10$1$1$1", "R1$10$1$1$1$1$1"])
def test_a_broken_value_rejects_the_record(value):
    with pytest.raises(RecordRejected, match="ENTElevePersRelEleve"):
        relative_membership(value)
