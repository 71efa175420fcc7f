"""What changed between two versions of a record."""

from __future__ import annotations

from services.directory.rules.changes import diff_attributes, diff_fields, diff_memberships


def test_changed_fields_only():
    before = {"last_name": "Nom1", "first_name": "A", "mef": None}
    after = {"last_name": "Nouveau", "first_name": "A", "mef": "M1"}
    assert diff_fields(before, after, ["last_name", "first_name", "mef"]) == {
        "last_name": {"before": "Nom1", "after": "Nouveau"}, "mef": {"before": None, "after": "M1"}}


def test_changed_attributes_added_and_removed():
    assert diff_attributes({"sn": ["A"], "mail": ["a@x"]}, {"sn": ["B"], "title": ["M"]}) == {
        "attributes.mail": {"before": ["a@x"], "after": None},
        "attributes.sn": {"before": ["A"], "after": ["B"]},
        "attributes.title": {"before": None, "after": ["M"]},
    }


def test_memberships_moved():
    a3 = {"kind": "class", "structure": "S1", "code": "3A"}
    b3 = {"kind": "class", "structure": "S1", "code": "3B"}
    s1 = {"structure": "S1", "kind": "structure"}
    added, removed = diff_memberships([a3, s1], [{"kind": "structure", "structure": "S1"}, b3])
    assert (added, removed) == ([b3], [a3])


def test_a_changed_relative_flag_is_one_removed_and_one_added():
    guardian = {"kind": "relative", "person": "R1", "legal_guardian": True}
    not_guardian = {"kind": "relative", "person": "R1", "legal_guardian": False}
    assert diff_memberships([guardian], [not_guardian]) == ([not_guardian], [guardian])
