"""The mass-deletion guard: which deletions of a Complet happen, and when the import is refused."""

from __future__ import annotations

from services.directory.rules.complet_scope import WHOLE
from services.directory.rules.mass_deletion import Absentees, verdict


def pupils(structure: str, *numbers: int) -> list[tuple[str, str]]:
    return [(f"{structure}-{n}", structure) for n in numbers]


def test_a_share_under_the_limit_is_deleted():
    judged = verdict([Absentees("Eleve", pupils("S1", 20), {"S1": 20})], 0.10, force=False)
    assert judged.refusal is None and not judged.mass_deletions
    assert judged.deletions == [("Eleve", ["S1-20"])]


def test_a_share_at_the_limit_is_not_a_mass_deletion():
    judged = verdict([Absentees("Eleve", pupils("S1", 1, 2), {"S1": 20})], 0.10, force=False)
    assert judged.refusal is None and judged.deletions == [("Eleve", ["S1-1", "S1-2"])]


def test_above_the_limit_refuses_everything_and_names_the_structure():
    absent = [Absentees("Eleve", pupils("S1", 16, 17, 18, 19, 20), {"S1": 21}),
              Absentees("PersRelEleve", pupils("S1", 1), {"S1": 40})]
    judged = verdict(absent, 0.10, force=False)
    assert judged.deletions == []
    assert [(m.family, m.structure, m.absent, m.accounts) for m in judged.mass_deletions] == [("Eleve", "S1", 5, 21)]
    assert judged.refusal is not None
    assert "more than 10% of a structure's accounts" in judged.refusal
    assert "Eleve: 5 of 21 (24%) in structure S1 are absent from the Complet" in judged.refusal
    assert "--force" in judged.refusal and "Nothing was changed." in judged.refusal


def test_each_structure_is_judged_on_its_own_accounts():
    absent = pupils("S1", 1) + pupils("S2", 1, 2, 3)  # S1 loses 1 of 20, S2 3 of 6
    judged = verdict([Absentees("Eleve", absent, {"S1": 20, "S2": 6})], 0.10, force=False)
    assert [m.structure for m in judged.mass_deletions] == ["S2"]
    assert "structure S2" in judged.refusal and "structure S1" not in judged.refusal


def test_force_deletes_all_the_same():
    judged = verdict([Absentees("Eleve", pupils("S1", *range(3, 11)), {"S1": 10})], 0.10, force=True)
    assert judged.refusal is None
    assert judged.deletions == [("Eleve", [f"S1-{n}" for n in range(3, 11)])]
    assert [m.share for m in judged.mass_deletions] == [0.8]


def test_a_family_without_structures_is_one_whole():
    absent = [(f"M{n}", WHOLE) for n in range(5)]
    judged = verdict([Absentees("MefEducNat", absent, {WHOLE: 10})], 0.10, force=False)
    assert "MefEducNat: 5 of 10 (50%) in all records are absent from the Complet" in judged.refusal


def test_a_larger_share_allowed_applies_it():
    absent = [Absentees("Eleve", pupils("S1", 1, 2, 3, 4, 5), {"S1": 21})]
    assert verdict(absent, 0.5, force=False).deletions == [("Eleve", [f"S1-{n}" for n in range(1, 6)])]


def test_a_refusal_names_ten_structures_at_most():
    absent = [(f"S{n}-1", f"S{n}") for n in range(12)]
    judged = verdict([Absentees("Eleve", absent, {f"S{n}": 1 for n in range(12)})], 0.10, force=False)
    assert len(judged.mass_deletions) == 12
    assert "structure S9 " in judged.refusal and "structure S10 " not in judged.refusal
    assert judged.refusal.count(" are absent from the Complet") == 10 and "; …)" in judged.refusal


def test_nothing_absent_deletes_nothing():
    judged = verdict([Absentees("Eleve", [], {}), Absentees("PersEducNat", [], {})], 0.10, force=False)
    assert judged.deletions == [] and judged.refusal is None


def test_families_are_deleted_in_the_order_given():
    judged = verdict([Absentees("PersRelEleve", pupils("S1", 1), {"S1": 100}),
                      Absentees("Eleve", pupils("S1", 2), {"S1": 100})], 0.10, force=False)
    assert [family for family, _keys in judged.deletions] == ["PersRelEleve", "Eleve"]
