"""Which families a run's Complet files may delete from."""

from __future__ import annotations

from services.directory.rules.complet_scope import families_to_sweep


def test_complete_families_that_had_records_are_swept_in_the_order_met():
    sweep = families_to_sweep({"PersRelEleve": True, "Eleve": True}, {"Eleve": True, "PersRelEleve": True})
    assert sweep.families == ["PersRelEleve", "Eleve"] and sweep.incomplete == []


def test_a_family_with_a_failed_complet_file_is_left_out_and_said():
    sweep = families_to_sweep({"Eleve": False, "PersEducNat": True}, {"Eleve": True, "PersEducNat": True})
    assert sweep.families == ["PersEducNat"] and sweep.incomplete == ["Eleve"]


def test_a_family_empty_before_the_run_has_nothing_absent():
    sweep = families_to_sweep({"Eleve": True, "PersEducNat": False}, {"Eleve": False})
    assert sweep.families == [] and sweep.incomplete == []


def test_a_file_name_naming_no_family_is_ignored():
    sweep = families_to_sweep({"Alien": True, "MatEducNat": True}, {"Alien": True, "MatEducNat": True})
    assert sweep.families == [] and sweep.incomplete == []
