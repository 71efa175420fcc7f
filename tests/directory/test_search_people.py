"""The directory's person search (`Directory.search_people`, the operator console's): by jointure, INE or name."""

from __future__ import annotations

from services.directory.api import Directory
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from tests import aaf_builder as aaf


def load(engine, folder) -> Directory:
    runs = [("EtabEducNat", [aaf.school("S1", "0750001A"), aaf.school("S2", "0750002B")]),
            ("Eleve", [aaf.pupil("1001", structure="S1", sn="Lefèvre", givenName="Zoé"),
                       aaf.pupil("1002", structure="S1", sn="Le Fèvre", givenName="Hugo"),
                       aaf.pupil("2001", structure="S2", sn="Lefebvre", givenName="Zoé"),
                       aaf.pupil("2002", structure="S2", sn="Martin_x", givenName="Léa")])]
    for n, (family, records) in enumerate(runs):
        path = aaf.write(folder, f"P_Complet_2026090{n}_{family}_0000.xml", *records)
        assert DirectoryImporter(engine, "test", ImportOptions()).run([path]).ok
    return Directory(engine, "test")


def jointures(found: list[dict]) -> list[str]:
    return [p["jointure"] for p in found]


def test_names_by_prefix_ignoring_case_accents_and_order_of_first_and_last(engine, tmp_path):
    d = load(engine, tmp_path)
    assert jointures(d.search_people("LEFE")) == ["1001", "2001"]
    assert jointures(d.search_people("lefèvre")) == ["1001"]
    assert jointures(d.search_people("le fevre")) == ["1002"]
    assert jointures(d.search_people("zoe lefeb")) == ["2001"]  # first name, then the start of the last
    assert jointures(d.search_people("lefevre zo")) == ["1001"]  # last name, then the start of the first
    assert jointures(d.search_people("martin_")) == ["2002"] and d.search_people("martin%") == []  # no wildcards
    assert d.search_people("   ") == [] and d.search_people("nobody") == []


def test_an_identifier_is_found_through_its_index_alone(engine, tmp_path):
    d = load(engine, tmp_path)
    assert jointures(d.search_people("2002")) == ["2002"]
    assert jointures(d.search_people("ine1001")) == ["1001"]


def test_within_structures_and_at_most_limit(engine, tmp_path):
    d = load(engine, tmp_path)
    assert jointures(d.search_people("lef", structures=["0750002B"])) == ["2001"]
    assert jointures(d.search_people("1001", structures=["S2"])) == []  # not there: not shown
    assert d.search_people("lef", structures=[]) == []
    assert jointures(d.search_people("l", limit=2)) == ["1001", "1002"]
