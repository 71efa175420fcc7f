"""A rule change's preview: grants the rules call for, added and removed per structure (grants/preview.py)."""

from __future__ import annotations

from services.provisioning.grants.catalogue import parse_catalogue
from services.provisioning.grants.member import Member
from services.provisioning.grants.preview import SAMPLE, rule_change
from services.provisioning.grants.rules import parse_rules

A, B = "0750001A", "0750002B"
CATALOGUE = {r.id: r for r in parse_catalogue({"resources": [
    {"id": "ark:/1/atlas", "title": "Atlas", "publisher": "P", "licence": "per-user"},
    {"id": "ark:/1/dico", "title": "Dico", "publisher": "P", "licence": "unlimited", "profiles": ["National_ELV"]},
]})}


def pupil(j: str, uai: str, klass: str) -> Member:
    return Member(j, "Eleve", frozenset({"National_ELV"}), None, frozenset({uai}), classes=frozenset({(uai, klass)}))


def rules(*items: dict) -> object:
    return parse_rules({"rules": list(items)})


DICO = {"id": "dico", "resource": "ark:/1/dico", "profiles": ["National_ELV"]}
ATLAS_6A = {"id": "atlas-6a", "resource": "ark:/1/atlas", "structures": [A], "classes": ["6A"]}


def test_a_new_rule_adds_in_its_school_and_class_only():
    members = [pupil("1", A, "6A"), pupil("2", A, "6A"), pupil("3", A, "5B"), pupil("4", B, "6A")]
    change = rule_change(members, rules(DICO), rules(DICO, ATLAS_6A), CATALOGUE)
    assert change.accounts == 4 and (change.added, change.removed) == (2, 0)
    assert list(change.structures) == [A] and change.structures[A].added_sample == ["1", "2"]


def test_a_rule_taken_away_removes_and_an_unchanged_set_does_nothing():
    members = [pupil("1", A, "6A"), pupil("4", B, "6A")]
    gone = rule_change(members, rules(DICO, ATLAS_6A), rules(ATLAS_6A), CATALOGUE)
    assert {u: (s.added, s.removed) for u, s in gone.structures.items()} == {A: (0, 1), B: (0, 1)}
    same = rule_change(members, rules(DICO, ATLAS_6A), rules(ATLAS_6A, DICO), CATALOGUE)
    assert same.structures == {} and same.accounts == 2


def test_names_are_sampled_but_every_grant_is_counted():
    members = [pupil(str(n), A, "6A") for n in range(SAMPLE + 5)]
    change = rule_change(members, rules(), rules(ATLAS_6A), CATALOGUE)
    assert change.structures[A].added == SAMPLE + 5 and len(change.structures[A].added_sample) == SAMPLE


def test_only_the_structures_a_changed_rule_names_are_affected():
    from services.provisioning.grants.preview import affected_structures

    assert affected_structures(rules(DICO), rules(DICO, ATLAS_6A)) == {A}
    assert affected_structures(rules(DICO, ATLAS_6A), rules(ATLAS_6A, DICO)) == frozenset()
    moved = {**ATLAS_6A, "structures": [B]}
    assert affected_structures(rules(ATLAS_6A), rules(moved)) == {A, B}  # where it was and where it goes
    assert affected_structures(rules(ATLAS_6A), rules(ATLAS_6A, DICO)) is None  # a rule for every structure
