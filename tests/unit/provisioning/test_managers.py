"""Resource managers: listed in the rules for a UAI, or holding a manager function there."""

from __future__ import annotations

from services.provisioning.grants.managers import directors, is_manager, managed_structures, managers_of

from .helpers import OTHER, UAI, ruleset, teacher


def test_a_manager_is_listed_or_holds_a_manager_function_there():
    rules = ruleset(managers={UAI: ["T9"]})
    assert is_manager(rules, teacher("T9"), UAI) and not is_manager(rules, teacher("T9"), OTHER)
    assert is_manager(rules, teacher("D1", functions=("DIR",)), UAI)
    assert not is_manager(rules, teacher("D1", functions=("DOC",)), UAI)
    assert is_manager(ruleset(manager_functions=["DOC"]), teacher("D1", functions=("DOC",)), UAI)


def test_directors_are_found_in_the_staff_records_by_uai():
    staff = [("D1", {"memberships": [{"kind": "function", "structure": "S1", "code": "DIR"}]}),
             ("T1", {"memberships": [{"kind": "teaching", "structure": "S1", "code": "6A"}]}),
             ("D2", {"memberships": [{"kind": "function", "structure": "S2", "code": "DIR"},
                                     {"kind": "function", "structure": "S1", "code": "DOC"}]})]
    assert directors(staff, {"DIR"}, {"S1": UAI, "S2": OTHER}) == {UAI: {"D1"}, OTHER: {"D2"}}


def test_the_managers_of_a_structure_and_the_structures_of_a_manager():
    rules = ruleset(managers={UAI: ["T9", "D1"]})
    found = {UAI: {"D1"}, OTHER: {"D1", "D2"}}
    assert managers_of(rules, found, UAI) == ["D1", "T9"] and managers_of(rules, found, "0000000X") == []
    assert managed_structures(rules, found) == {"T9": {UAI}, "D1": {UAI, OTHER}, "D2": {OTHER}}
