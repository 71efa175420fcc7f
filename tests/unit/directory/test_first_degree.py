"""First-degree records: their names, classes, levels, dates, services, guardians, directors and écoles."""

from __future__ import annotations

import pytest

from services.directory.rules.aaf_values import RecordRejected
from services.directory.rules.canonical_records import person_from_attributes, structure_from_attributes
from services.directory.rules.first_degree import code_and_label, is_first_degree, normalize_1d

PUPIL_1D = {
    "ENTPersonJointure": ["E1"], "ENTPersonNom": ["Petit"], "ENTPersonPrenom": ["Léo"],
    "ENTPersonDateNaissance": ["03/04/2016"], "ENTEleveINE": ["123456789AB"], "ENTPersonStructRattach": ["S1"],
    "ENTPersonClasses": ["S1$2026$CE2-CM1$C12$CE2-CM1 Mme Roux"], "ENTPersonGroupes": ["S1$2026$-$G3$Chorale"],
    "ENTEleveNiveau": ["2211$CM1"], "ENTEleveCycle": ["C3$CYCLE 3"], "ENTEleveTypeClasse": ["MULTINIVEAU"],
    "ENTEleveDateEntreeClasses": ["S1$C12$01/09/2026"], "ENTEleveDateSortieClasses": ["S1$C12$03/07/2027"],
    "ENTEleveDateEntreeStructRattach": ["02/09/2024"],
    "ENTEleveRestaurantScolaire": ["O"], "ENTEleveTransport": ["N"], "ENTEleveGarderieMatin": ["O"],
    "ENTEleveGarderieSoir": ["N"], "ENTEleveEtudesSurveillees": [""],
    "ENTEleveAutoriteParentale": ["R1", "R2$MERE"],
}


def test_first_degree_names_stand_for_second_degree_ones():
    attrs = {"ENTPersonNom": ["Petit"], "ENTPersonPrenom": ["Léo"], "ENTPersonMail": ["leo@ac.fr"]}
    out = normalize_1d(attrs)
    assert (out["sn"], out["givenName"], out["mail"]) == (["Petit"], ["Léo"], ["leo@ac.fr"])
    assert out["ENTPersonNom"] == ["Petit"]  # kept as received
    assert "sn" not in attrs  # the record read is not changed


def test_a_second_degree_value_wins():
    out = normalize_1d({"sn": ["Durand"], "ENTPersonNom": ["Petit"], "givenName": [], "ENTPersonPrenom": ["Léo"]})
    assert out["sn"] == ["Durand"] and out["givenName"] == ["Léo"]


def test_second_degree_records_are_left_as_they_are():
    attrs = {"sn": ["Durand"], "ENTEleveTransport": ["N"], "ENTEleveAutoriteParentale": ["R1"]}
    assert normalize_1d(attrs) is attrs
    assert not is_first_degree(attrs)
    assert "first_degree" not in person_from_attributes("1", "Eleve", attrs)


def test_a_first_degree_pupil_in_a_multi_level_class():
    p = person_from_attributes("E1", "Eleve", PUPIL_1D)
    assert (p["last_name"], p["first_name"], p["birth_date"]) == ("Petit", "Léo", "2016-04-03")
    assert p["first_degree"] == {
        "level": {"code": "2211", "label": "CM1"}, "cycle": {"code": "C3", "label": "CYCLE 3"},
        "class_type": "MULTINIVEAU", "entry_date": "2024-09-02", "exit_date": None,
        "services": ["canteen", "morning_childcare"],
    }
    assert p["memberships"] == [
        {"kind": "class", "structure": "S1", "code": "C12", "label": "CE2-CM1 Mme Roux",
         "entry_date": "2026-09-01", "exit_date": "2027-07-03"},
        {"kind": "group", "structure": "S1", "code": "G3", "label": "Chorale"},
        {"kind": "relative", "person": "R1", "link": None, "financial": False, "legal_guardian": True,
         "contact": False, "payment": False},
        {"kind": "relative", "person": "R2", "link": None, "financial": False, "legal_guardian": True,
         "contact": False, "payment": False},
        {"kind": "structure", "structure": "S1"},
    ]


def test_second_degree_relatives_win_over_parental_authority():
    p = person_from_attributes("E1", "Eleve", {**PUPIL_1D, "ENTElevePersRelEleve": ["R9$10$1$0$1$0"]})
    assert [(m["person"], m["legal_guardian"]) for m in p["memberships"] if m["kind"] == "relative"] == [("R9", False)]


def test_a_date_alone_dates_every_class_and_short_classes_read():
    p = person_from_attributes("E1", "Eleve", {"ENTPersonClasses": ["S1$CP", "S2$2026$CP$CPB$"],
                                               "ENTEleveDateEntreeClasses": ["01/09/2026"]})
    classes = [m for m in p["memberships"] if m["kind"] == "class"]
    assert classes == [{"kind": "class", "structure": "S1", "code": "CP", "entry_date": "2026-09-01"},
                       {"kind": "class", "structure": "S2", "code": "CPB", "entry_date": "2026-09-01"}]
    assert p["first_degree"]["level"] is None and p["first_degree"]["services"] == []


def test_a_level_alone_is_a_label():
    assert code_and_label("CM2") == {"code": None, "label": "CM2"}
    assert code_and_label("") is None


def test_first_degree_staff_directors_and_teachers():
    t = person_from_attributes("T1", "PersEducNat", {
        "ENTPersonNom": ["Roux"], "ENTPersonPrenom": ["Anne"], "ENTPersonStructRattach": ["S1"],
        "ENTEnsFonctionDir": ["S1"], "ENTPersonCategorieEnseignant": ["O"],
        "ENTPersonClasses": ["S1$2026$CE2-CM1$C12$CE2-CM1 Mme Roux"]})
    assert t["profiles"] == ["National_DIR", "National_ENS"]
    assert {"kind": "function", "structure": "S1", "code": "DIR", "label": "DIRECTION", "discipline": None} \
        in t["memberships"]
    assert {"kind": "class", "structure": "S1", "code": "C12", "label": "CE2-CM1 Mme Roux"} in t["memberships"]
    assert t["first_degree"]["level"] is None
    staff = person_from_attributes("T2", "PersEducNat",
                                   {"ENTPersonNom": ["Roux"], "ENTPersonCategorieEnseignant": ["N"]})
    assert staff["profiles"] == ["National_ETA"]


def test_an_ecole_and_its_circonscription():
    s = structure_from_attributes("S1", {
        "ENTStructureUAI": ["0130001A"], "ENTStructureNomCourant": ["ECOLE ELEMENTAIRE JEAN MOULIN"],
        "ENTStructureTypeStruct": ["ECOLE ELEMENTAIRE PUBLIQUE"], "ENTEcoleCirconscription": ["0131234X"],
        "ENTEcoleCommune": ["MARSEILLE"], "ENTEcoleRPI": [""]})
    assert s["uai"] == "0130001A"
    assert s["first_degree"] == {"district": "0131234X", "town": "MARSEILLE", "sector": None, "rpi": None}
    assert "first_degree" not in structure_from_attributes("S2", {"ENTStructureTypeStruct": ["CLG"]})
    assert structure_from_attributes("S3", {"ENTStructureTypeStruct": ["ECOLE MATERNELLE"]})["first_degree"] == {
        "district": None, "town": None, "sector": None, "rpi": None}
    circonscription = structure_from_attributes("S4", {"ENTStructureTypeStruct": ["Circonscription IEN"]})
    assert circonscription["first_degree"] == {"district": None, "town": None, "sector": None, "rpi": None}


@pytest.mark.parametrize(("attrs", "message"), [
    ({"ENTPersonClasses": ["S1$2026$C12$CE2"]}, "ENTPersonClasses value 'S1\\$2026\\$C12\\$CE2'.*got 4 fields"),
    ({"ENTPersonGroupes": ["S1$a$b$$label"]}, "ENTPersonGroupes"),
    ({"ENTEleveNiveau": ["a$b$c"]}, "ENTEleveNiveau"),
    ({"ENTEleveCycle": ["C3$"]}, "ENTEleveCycle"),
    ({"ENTPersonClasses": ["S1$C1"], "ENTEleveDateEntreeClasses": ["S1$C2$01/09/2026"]}, "not one of the pupil"),
    ({"ENTPersonClasses": ["S1$C1"], "ENTEleveDateSortieClasses": ["S1$C1$2026-09-01"]}, "expected a date"),
    ({"ENTPersonClasses": ["S1$C1"], "ENTEleveDateSortieClasses": ["C1$01/09/2026"]}, "got 2 fields"),
    ({"ENTEleveDateEntreeStructRattach": ["32/01/2026"]}, "ENTEleveDateEntreeStructRattach"),
    ({"ENTEleveAutoriteParentale": ["$MERE"]}, "ENTEleveAutoriteParentale"),
    ({"ENTEnsFonctionDir": [""]}, "ENTEnsFonctionDir"),
])
def test_a_broken_first_degree_value_rejects_the_record(attrs, message):
    with pytest.raises(RecordRejected, match=message):
        person_from_attributes("1", "Eleve", {"ENTPersonNom": ["Petit"], **attrs})
