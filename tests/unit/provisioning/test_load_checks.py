"""All or nothing: a catalogue or rule set with any problem is refused whole, every problem named."""

from __future__ import annotations

import pytest

from services.provisioning.grants.catalogue import CatalogueError, parse_catalogue
from services.provisioning.grants.load_checks import CodesSeen, check_catalogue, check_codes, check_references
from services.provisioning.grants.rules import RuleError, parse_rules

from .helpers import OTHER, UAI, pupil, resources, ruleset

MATHS6 = {"id": "ark:/49591/maths6", "title": "Maths 6e", "publisher": "Éditions A", "licence": "per-user",
          "profiles": ["National_ELV"], "levels": ["1001"], "attributes": ["id", "classes"]}


def test_every_problem_of_a_document_is_named():
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue({"resources": [MATHS6, "oops", dict(MATHS6), {"id": "ark:/x", "licence": "per-seat"}]})
    assert caught.value.problems == [
        "resource #2: not a mapping",
        "resource #3 (ark:/49591/maths6): id 'ark:/49591/maths6' appears twice",
        "resource #4 (ark:/x): licence 'per-seat' is not one of per-user, per-structure, unlimited",
    ]
    with pytest.raises(RuleError) as caught:
        parse_rules({"rules": {"id": "x"}, "grace_days": -1})
    assert caught.value.problems == ["the document has no 'rules' list",
                                     "grace_days -1 is not a whole number of days ≥ 0"]


def test_a_catalogue_entry_needs_a_licence_model_and_sound_quotas():
    with pytest.raises(CatalogueError) as caught:
        parse_catalogue({"resources": [{"id": "a"}, {"id": "b", "licence": "unlimited", "quota": 3},
                                       {"id": "c", "licence": "per-structure", "quotas": {UAI: 2}}]})
    assert caught.value.problems == [
        "resource #1 (a): no licence model (one of per-user, per-structure, unlimited)",
        "resource #2 (b): an unlimited licence has no quota",
        "resource #3 (c): per-structure quotas ('quotas') only apply to a per-user licence",
    ]


def test_a_catalogue_dropping_a_resource_a_rule_names_is_refused():
    rules = ruleset({"id": "maths", "resource": "maths6"})
    with pytest.raises(CatalogueError) as caught:
        check_catalogue(resources({"id": "dico", "licence": "unlimited"}), rules, [])
    assert caught.value.problems == ["rule maths needs resource 'maths6', which the new catalogue drops"]


def test_a_catalogue_taking_licences_away_is_refused_with_every_problem():
    rules = ruleset({"id": "maths", "resource": "gone"})
    new = resources({"id": "atlas", "licence": "per-user", "quota": 1})
    with pytest.raises(CatalogueError) as caught:
        check_catalogue(new, rules, [("atlas", UAI, 2)])
    assert len(caught.value.problems) == 2 and "below the 2 licences held" in caught.value.problems[1]
    check_catalogue(new, ruleset({"id": "atlas", "resource": "atlas"}), [("atlas", UAI, 1)])  # fits: no error


def test_rules_naming_unknown_resources_or_structures_are_refused():
    rules = ruleset({"id": "a", "resource": "nothing"}, {"id": "b", "resource": "dico", "structures": [OTHER]},
                    managers={"9999999Z": ["D1"]})
    with pytest.raises(RuleError) as caught:
        check_references(rules, ["dico"], [UAI])
    assert caught.value.problems == ["rule a: resource 'nothing' is not in the catalogue",
                                     f"rule b: structure {OTHER} is not in the directory",
                                     "managers: structure 9999999Z is not in the directory"]
    check_references(ruleset({"id": "b", "resource": "dico", "structures": [UAI]}), ["dico"], [UAI])


def test_classes_and_groups_are_found_in_the_accounts_read():
    rules = ruleset({"id": "x", "resource": "dico", "structures": [UAI], "classes": ["6A", "6Z"]})
    seen = CodesSeen(rules)
    seen.note([pupil("1", klass="6A"), pupil("2", klass="6C")])
    with pytest.raises(RuleError) as caught:
        check_codes(rules, [UAI], seen)
    assert caught.value.problems == [f"rule x: class '6Z' is not in {UAI}"]


def test_codes_seen_by_several_workers_are_merged():
    rules = ruleset({"id": "x", "resource": "dico", "classes": ["6A", "6B"]})
    one, two = CodesSeen(rules), CodesSeen(rules)
    one.note([pupil("1", klass="6A")])
    two.note([pupil("2", klass="6B"), pupil("3", klass="6Q")])
    one.merge(two)
    assert one.found["classes"] == {UAI: {"6A", "6B"}}  # only codes some rule names are kept
    check_codes(rules, [UAI], one)
