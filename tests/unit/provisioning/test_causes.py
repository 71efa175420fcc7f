"""Causes: which grants the rules call for, each with the first matching rule as its cause."""

from __future__ import annotations

from services.provisioning.grants.causes import is_manual, manual_cause, targets, wanted

from .helpers import OTHER, UAI, pupil, resources, ruleset, teacher

CATALOGUE = resources(
    {"id": "maths6", "licence": "per-user", "profiles": ["National_ELV"], "levels": ["1001"]},
    {"id": "dico", "licence": "unlimited"},
)


def test_the_first_matching_rule_in_order_is_the_cause():
    rules = ruleset({"id": "by-class", "resource": "maths6", "classes": ["6A"]},
                    {"id": "by-mef", "resource": "maths6", "mefs": ["1001"]})
    assert wanted(pupil(klass="6A"), rules, CATALOGUE) == {("maths6", UAI): "rule:by-class"}
    assert wanted(pupil(klass="6B"), rules, CATALOGUE) == {("maths6", UAI): "rule:by-mef"}


def test_every_criterion_given_must_hold():
    rules = ruleset({"id": "r", "resource": "dico", "classes": ["6A"], "mefs": ["1011"]})
    assert wanted(pupil(klass="6A", mef="10010012110"), rules, CATALOGUE) == {}
    assert wanted(pupil(klass="6A", mef="10110001110"), rules, CATALOGUE) == {("dico", UAI): "rule:r"}


def test_a_rule_for_some_structures_gives_nothing_elsewhere():
    rules = ruleset({"id": "there", "resource": "dico", "structures": [OTHER]})
    assert wanted(pupil(uai=UAI), rules, CATALOGUE) == {}
    assert wanted(pupil(uai=OTHER), rules, CATALOGUE) == {("dico", OTHER): "rule:there"}


def test_a_resource_goes_only_to_the_accounts_it_is_made_for():
    rules = ruleset({"id": "all", "resource": "maths6"})
    assert targets(CATALOGUE["maths6"], pupil()) and not targets(CATALOGUE["maths6"], teacher())
    assert not targets(CATALOGUE["maths6"], pupil(mef="10110001110"))  # 5e: not a level of the resource
    assert wanted(teacher(), rules, CATALOGUE) == {}


def test_a_rule_naming_a_resource_the_catalogue_lacks_gives_nothing():
    assert wanted(pupil(), ruleset({"id": "x", "resource": "gone"}), CATALOGUE) == {}


def test_the_memo_answers_for_accounts_with_the_same_view():
    rules = ruleset({"id": "by-class", "resource": "maths6", "classes": ["6A"]})
    memo: dict = {}
    first = wanted(pupil("1"), rules, CATALOGUE, memo)
    assert wanted(pupil("2"), rules, CATALOGUE, memo) is first and len(memo) == 1
    assert wanted(pupil("3", klass="6B"), rules, CATALOGUE, memo) == {} and len(memo) == 2


def test_manual_causes_name_the_manager():
    assert manual_cause("D1") == "manual:D1"
    assert is_manual("manual:D1") and not is_manual("rule:manual")
