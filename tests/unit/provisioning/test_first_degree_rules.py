"""Rules selecting first-degree pupils by level and cycle ("every CM2 pupil")."""

from __future__ import annotations

import pytest

from services.provisioning.grants.rules import RuleError, parse_rules
from tests.unit.provisioning.helpers import UAI, pupil


def ecolier(jointure: str, level: tuple[str, str] | None, cycle: tuple[str, str] | None = ("C3", "CYCLE 3")):
    first_degree = {"level": level and {"code": level[0], "label": level[1]},
                    "cycle": cycle and {"code": cycle[0], "label": cycle[1]},
                    "class_type": "MULTINIVEAU", "entry_date": None, "exit_date": None, "services": []}
    return pupil(jointure, klass="C12", mef=None, first_degree=first_degree)


def test_every_cm2_pupil_whatever_their_class():
    rules = parse_rules({"rules": [{"id": "cm2", "resource": "r", "levels": ["cm2"]},
                                   {"id": "c3", "resource": "r", "cycles": ["Cycle 3"]},
                                   {"id": "code", "resource": "r", "levels": ["0022"]}]})
    cm2, cm1 = ecolier("1", ("0022", "CM2")), ecolier("2", ("0021", "CM1"))  # one multi-level class, two levels
    by_id = {r.id: r for r in rules.rules}
    assert by_id["cm2"].selects(cm2, UAI) and not by_id["cm2"].selects(cm1, UAI)
    assert by_id["code"].selects(cm2, UAI) and not by_id["code"].selects(cm1, UAI)
    assert by_id["c3"].selects(cm2, UAI) and by_id["c3"].selects(cm1, UAI)
    assert not by_id["c3"].selects(ecolier("3", ("0011", "CP"), ("C2", "CYCLE 2")), UAI)
    assert not by_id["cm2"].selects(pupil("4"), UAI)  # a collégien has no first-degree level
    assert not by_id["cm2"].selects(ecolier("5", None), UAI)
    assert by_id["cm2"].to_dict() == {"id": "cm2", "resource": "r", "levels": ["CM2"]}


def test_level_and_cycle_are_part_of_what_rules_see():
    assert ecolier("1", ("0022", "CM2")).rule_view() != ecolier("2", ("0021", "CM1")).rule_view()
    assert ecolier("1", ("0022", "CM2")).levels == {"0022", "CM2"}


def test_levels_must_be_a_list():
    with pytest.raises(RuleError, match="levels must be a list"):
        parse_rules({"rules": [{"id": "cm2", "resource": "r", "levels": "CM2"}]})
