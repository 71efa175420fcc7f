"""The order a run applies files and records in: the later file wins."""

from __future__ import annotations

from typing import NamedTuple

from services.directory.rules.import_order import distinct_key_runs, order_key


class Item(NamedTuple):
    key: str
    version: int


def test_files_go_family_by_family_references_first_then_by_name():
    names = [("Eleve", "P_Complet_20260902_Eleve_0000.xml"), (None, "notes.xml"),
             ("PersRelEleve", "P_Complet_20260901_PersRelEleve_0000.xml"),
             ("Eleve", "P_Complet_20260901_Eleve_0001.xml"), ("EtabEducNat", "P_Complet_20260903_EtabEducNat_0000.xml"),
             ("MatiereEducNat", "P_Complet_20260901_MatEducNat_0000.xml"), ("Eleve", "P_Delta_20260901_Eleve_0000.xml")]
    ordered = [name for _family, name in sorted(names, key=lambda f: order_key(*f))]
    assert ordered == ["P_Complet_20260903_EtabEducNat_0000.xml", "P_Complet_20260901_MatEducNat_0000.xml",
                       "P_Complet_20260901_Eleve_0001.xml", "P_Complet_20260902_Eleve_0000.xml",
                       "P_Delta_20260901_Eleve_0000.xml", "P_Complet_20260901_PersRelEleve_0000.xml", "notes.xml"]


def test_a_later_export_of_a_family_comes_later():
    earlier, later = "P_Complet_20260901_Eleve_0000.xml", "P_Complet_20260902_Eleve_0000.xml"
    assert order_key("Eleve", earlier) < order_key("Eleve", later)


def test_a_batch_without_repeated_keys_is_one_step():
    items = [Item("1", 1), Item("2", 1), Item("3", 1)]
    assert list(distinct_key_runs(items)) == [items]


def test_a_repeated_key_starts_a_new_step_so_the_later_version_applies_last():
    items = [Item("1", 1), Item("2", 1), Item("1", 2), Item("3", 1), Item("2", 2), Item("1", 3)]
    runs = list(distinct_key_runs(items))
    assert runs == [items[0:2], items[2:5], items[5:6]]  # a run ends only before a key already in it
    assert all(len({i.key for i in run}) == len(run) for run in runs)
    last = {}
    for run in runs:
        last.update({i.key: i.version for i in run})
    assert last == {"1": 3, "2": 2, "3": 1}


def test_an_empty_batch_is_one_empty_step():
    assert list(distinct_key_runs([])) == [[]]
