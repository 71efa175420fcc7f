"""AAF attributes -> canonical records, as the bus contracts carry them."""

from __future__ import annotations

import pytest

from services.directory.rules.aaf_values import RecordRejected
from services.directory.rules.canonical_records import (
    mef_from_attributes,
    membership_key,
    person_from_attributes,
    structure_from_attributes,
    subject_from_attributes,
)

PUPIL = {
    "ENTPersonJointure": ["1"], "sn": ["Long"], "givenName": ["Kù"], "personalTitle": ["M"],
    "ENTPersonDateNaissance": ["14/09/1995"], "ENTEleveINE": ["INE1"], "ENTEleveStructRattachId": ["837982"],
    "ENTPersonStructRattach": ["S1"], "ENTEleveMEF": ["24133610210"],
    "ENTEleveClasses": ["S1$3A", "S1$3A"], "ENTEleveGroupes": ["S2$G1"],
    "ENTElevePersRelEleve": ["R2$20$0$2$1$0", "R1$10$1$1$1$1"],
}


def test_a_pupil_with_classes_groups_and_relatives():
    p = person_from_attributes("1", "Eleve", PUPIL)
    assert {k: v for k, v in p.items() if k != "memberships"} == {
        "jointure": "1", "category": "Eleve", "profiles": ["National_ELV"], "last_name": "Long", "first_name": "Kù",
        "title": "M", "birth_date": "1995-09-14", "email": None, "ine": "INE1", "struct_rattach_id": "837982",
        "structure": "S1", "mef": "24133610210"}
    assert p["memberships"] == [
        {"kind": "class", "structure": "S1", "code": "3A"},
        {"kind": "group", "structure": "S2", "code": "G1"},
        {"kind": "relative", "person": "R1", "link": "10", "financial": True, "legal_guardian": True,
         "contact": True, "payment": True},
        {"kind": "relative", "person": "R2", "link": "20", "financial": False, "legal_guardian": True,
         "contact": True, "payment": False},
        {"kind": "structure", "structure": "S1"},
        {"kind": "structure", "structure": "S2"},  # a group there makes S2 one of the pupil's structures
    ]


def test_a_teacher_teaches_classes_and_groups_and_has_functions():
    t = person_from_attributes("T1", "PersEducNat", {
        "sn": ["Durand"], "ENTPersonStructRattach": ["S1"], "ENTAuxEnsClasses": ["S1$1S2"],
        "ENTAuxEnsClassesMatieres": ["S1$1S2$006600"], "ENTAuxEnsGroupesMatieres": ["S3$G7$0300"],
        "ENTPersonFonctions": ["S1$ENS$ENSEIGNEMENT$L1500", "S4$DIR"],
        "ENTEleveClasses": ["S9$X"],  # a pupil's attribute: not a teacher's class
    })
    assert t["profiles"] == ["National_DIR", "National_ENS"]
    kinds = [(m["kind"], m.get("structure"), m.get("code")) for m in t["memberships"]]
    assert kinds == [("class", "S1", "1S2"), ("function", "S1", "ENS"), ("function", "S4", "DIR"),
                     ("structure", "S1", None), ("structure", "S3", None), ("structure", "S4", None),
                     ("teaching", "S1", "1S2"), ("teaching", "S3", "G7")]
    function = next(m for m in t["memberships"] if m["kind"] == "function" and m["code"] == "ENS")
    assert function == {"kind": "function", "structure": "S1", "code": "ENS", "label": "ENSEIGNEMENT",
                        "discipline": "L1500"}
    teaching = [m for m in t["memberships"] if m["kind"] == "teaching"]
    assert [(m["scope"], m["subject"]) for m in teaching] == [("class", "006600"), ("group", "0300")]


def test_a_first_degree_record_reads_its_names():
    p = person_from_attributes("E1", "Eleve", {"ENTPersonNom": ["Petit"], "ENTPersonPrenom": ["Léo"],
                                               "ENTPersonClasses": ["S1$CP"]})
    assert (p["last_name"], p["first_name"]) == ("Petit", "Léo")
    assert {"kind": "class", "structure": "S1", "code": "CP"} in p["memberships"]


@pytest.mark.parametrize(("attrs", "message"), [
    ({"ENTPersonJointure": ["2"]}, "differs from ENTPersonJointure"),
    ({"ENTEleveClasses": ["S1"]}, "ENTEleveClasses"),
    ({"ENTPersonDateNaissance": ["1995-09-14"]}, "expected a date dd/mm/yyyy"),
    ({"ENTPersonDateNaissance": ["31/13/1995"]}, "not a valid date"),
    ({"ENTPersonFonctions": ["S1"]}, "ENTPersonFonctions"),
    ({"ENTElevePersRelEleve": ["R1$1"]}, "ENTElevePersRelEleve"),
])
def test_a_broken_value_rejects_the_record(attrs, message):
    with pytest.raises(RecordRejected, match=message):
        person_from_attributes("1", "Eleve", attrs)


def test_structures_mefs_and_subjects():
    school = structure_from_attributes("52006", {"ENTEtablissementUAI": ["0059951P"],
                                                 "ENTStructureNomCourant": ["LYCEE"],
                                                 "ENTStructureTypeStruct": ["LYC"], "ENTServAcAcademie": ["AIX"]})
    assert school == {"jointure": "52006", "uai": "0059951P", "name": "LYCEE", "type": "LYC", "academy": "AIX"}
    assert structure_from_attributes("S", {"ENTStructureUAI": ["A"], "ENTEtablissementUAI": ["B"]})["uai"] == "A"
    with pytest.raises(RecordRejected):
        structure_from_attributes("S", {"ENTStructureJointure": ["T"]})
    assert mef_from_attributes("M1", {"ENTLibelleMef": ["3EME"]}) == {"code": "M1", "label": "3EME"}
    assert subject_from_attributes("006600", {}) == {"code": "006600", "label": None}


def test_memberships_are_one_per_key():
    assert membership_key({"kind": "relative", "person": "R1", "legal_guardian": True}) == \
        membership_key({"kind": "relative", "person": "R1", "legal_guardian": False})
    assert membership_key({"kind": "class", "structure": "S1", "code": "3A"}) != \
        membership_key({"kind": "group", "structure": "S1", "code": "3A"})


def test_other_first_names_are_kept_as_the_aaf_lists_them_and_absent_when_none():
    base = {"ENTPersonJointure": ["J1"], "sn": ["Durand"], "givenName": ["Zoé"]}
    person = person_from_attributes("J1", "Eleve", {**base, "ENTPersonAutresPrenoms": ["Marie", "", " ", "Louise"]})
    assert person["first_name"] == "Zoé" and person["other_first_names"] == ["Marie", "Louise"]
    assert "other_first_names" not in person_from_attributes("J1", "Eleve", base)
    assert "other_first_names" not in person_from_attributes("J1", "Eleve", {**base, "ENTPersonAutresPrenoms": [""]})
