"""The ENT attributes of a directory person, and a CAS service's release policy (rules/ent_attributes.py)."""

from __future__ import annotations

from services.sso.rules.ent_attributes import ent_attributes, release


def test_a_teachers_and_a_parents_attributes():
    teacher = {"jointure": "T1", "category": "PersEducNat", "profiles": ["National_ENS"], "last_name": "Prof",
               "first_name": "Anne", "title": "Mme", "birth_date": "1980-03-04", "email": "anne.prof@ac-test.fr",
               "ine": None, "struct_rattach_id": None, "structure": "S1", "mef": None, "memberships": [
                   {"kind": "structure", "structure": "S1"}, {"kind": "structure", "structure": "S2"},
                   {"kind": "class", "structure": "S1", "code": "6A"},
                   {"kind": "teaching", "structure": "S1", "scope": "class", "code": "6A", "subject": "MATHS"},
                   {"kind": "teaching", "structure": "S1", "scope": "group", "code": "G1", "subject": "ANG"},
                   {"kind": "function", "structure": "S1", "code": "ENS", "label": "ENSEIGNEMENT",
                    "discipline": None}]}
    attrs = ent_attributes(teacher, {"S1": "0750001A", "S2": "0750002B"}.get)
    assert attrs["ENTPersonStructRattachUAI"] == ["0750001A"]
    assert attrs["ENTPersonEtablissementsUAI"] == ["0750001A", "0750002B"]
    assert attrs["ENTAuxEnsClasses"] == ["S1$6A"] and "ENTEleveClasses" not in attrs
    assert attrs["ENTAuxEnsClassesMatieres"] == ["S1$6A$MATHS"]
    assert attrs["ENTAuxEnsGroupesMatieres"] == ["S1$G1$ANG"]
    assert attrs["ENTPersonFonctions"] == ["S1$ENS$ENSEIGNEMENT"]
    assert attrs["ENTPersonDateNaissance"] == ["04/03/1980"] and attrs["displayName"] == ["Anne Prof"]
    assert release(attrs, ("uid", "mail", "ENTEleveMEF")) == {"uid": ["T1"], "mail": ["anne.prof@ac-test.fr"]}


def test_a_pupils_attributes_in_the_aaf_formats():
    pupil = {"jointure": "1001", "category": "Eleve", "profiles": ["National_ELV"], "last_name": "Martin",
             "first_name": "Élodie", "birth_date": "2012-11-30", "structure": "S1", "mef": "10010012110",
             "struct_rattach_id": "R1001", "ine": "123456789AB", "email": None, "memberships": [
                 {"kind": "structure", "structure": "S1"}, {"kind": "class", "structure": "S1", "code": "6A"},
                 {"kind": "group", "structure": "S1", "code": "LATIN"}, {"kind": "group", "structure": "S1",
                                                                         "code": "LATIN"},
                 {"kind": "relative", "person": "R1"}]}
    attrs = ent_attributes(pupil, {"S1": "0750001A"}.get)
    assert attrs == {
        "uid": ["1001"], "ENTPersonJointure": ["1001"], "ENTPersonProfils": ["National_ELV"],
        "ENTPersonStructRattach": ["S1"], "ENTPersonStructRattachUAI": ["0750001A"], "sn": ["Martin"],
        "givenName": ["Élodie"], "displayName": ["Élodie Martin"], "ENTPersonDateNaissance": ["30/11/2012"],
        "ENTEleveMEF": ["10010012110"], "ENTEleveStructRattachId": ["R1001"], "ENTEleveINE": ["123456789AB"],
        "ENTPersonEtablissementsUAI": ["0750001A"], "ENTEleveClasses": ["S1$6A"], "ENTEleveGroupes": ["S1$LATIN"],
        "ENTEleveParents": ["R1"]}  # no mail (none known), a group listed once, no empty attribute


def test_a_structure_without_a_known_uai_gives_no_uai_and_the_policy_releases_nothing_by_default():
    person = {"jointure": "J", "category": "PersEducNat", "structure": "S9", "memberships": [
        {"kind": "structure", "structure": "S9"}]}
    attrs = ent_attributes(person, {}.get)
    assert "ENTPersonStructRattachUAI" not in attrs and "ENTPersonEtablissementsUAI" not in attrs
    assert attrs["ENTPersonStructRattach"] == ["S9"]
    assert release(attrs, ()) == {}
