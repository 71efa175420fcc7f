"""Which directory account a national identity is (rules/account_matching.py), over an in-memory directory port."""

from __future__ import annotations

from services.sso.rules.account_matching import match_identity, refid_jointure
from tests.unit.sso.directory_fake import academy


def jointures(match) -> list[str]:
    return [c.jointure for c in match.candidates]


def test_an_aaf_reference_names_the_account_and_nothing_else_is_asked():
    directory = academy()
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["eleve2d"], "FrEduCtRefId": ["{AAF}01|X|1001"],
                                      "FrEduVecteur": ["4|||R1002|0750001A"]}, directory)
    assert (m.method, jointures(m), m.unique.jointure) == ("refid", ["1001"], "1001")
    assert directory.asked["find_pupils"] == 0  # the reference decided: the vectors were not tried
    assert m.candidates[0].label == ""  # one account: no choice to make, so no label


def test_refid_values():
    assert refid_jointure("{AAF}14|ENT|2605692") == "2605692"
    assert refid_jointure("{AAF}14|ENT| 2605692 ") == "2605692"
    assert refid_jointure("{ECT}123") is None and refid_jointure("{AAF}nobar") is None
    assert refid_jointure("{AAF}14|ENT|") is None


def test_a_reference_to_the_wrong_kind_of_account_is_ignored_and_the_vectors_decide():
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["resp2d"], "FrEduCtRefId": ["{AAF}01|X|1002"],
                                      "FrEduVecteur": ["2|DUPRÉ|hélène|R1002|0750001A"]}, academy())
    assert (m.method, jointures(m)) == ("vecteur", ["R1"])
    assert any("category Eleve ignored (expected PersRelEleve)" in n for n in m.notes)


def test_a_pupil_vector_matches_the_siecle_id_within_the_school_of_that_uai():
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["eleve2d"],
                                      "FrEduVecteur": ["4|MARTIN|Élodie|R1001|0750001A"]}, academy())
    assert (m.method, jointures(m)) == ("vecteur", ["1001"])
    m = match_identity("educonnect", {"FrEduVecteur": ["4|||R1001|0750002B"]}, academy())
    assert jointures(m) == ["2001"]  # the same SIECLE id in another school is another pupil
    assert not match_identity("educonnect", {"FrEduVecteur": ["4|||R1001|0759999Z"]}, academy()).candidates


def test_a_parent_sends_a_vector_per_child_the_accounts_are_pooled_and_homonyms_offered():
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["resp2d"], "FrEduVecteur": [
        "2|DUPRE|helene|R1002|0750001A", "2|dupré|HÉLÈNE|R1001|0750001A"]}, academy())
    assert m.method == "vecteur" and m.unique is None
    assert jointures(m) == ["R1", "R2"]  # R1 (of both children), and R2, a homonym also relative of 1001
    labels = {c.jointure: c.label for c in m.candidates}
    assert labels == {"R1": "Hélène Dupré, responsable, responsable de Lucas, Élodie",
                      "R2": "Helene DUPRE, responsable, responsable de Élodie"}


def test_a_labelled_account_names_its_school_and_uai():
    directory = academy()
    directory.people["T2"] = {**directory.people["T1"], "jointure": "T2"}
    m = match_identity("agents", {"mail": ["anne.prof@ac-test.fr"]}, directory)
    assert [c.label for c in m.candidates] == ["Anne Prof, personnel, COLLEGE UN (0750001A)"] * 2


def test_vectors_of_the_wrong_kind_or_shape_are_ignored_and_noted():
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["resp1d"], "FrEduVecteur": [
        "4|||R1001|0750001A", "2|||R1001|0750001A", "garbage"]}, academy())
    assert m.method is None and not m.candidates
    text = " ".join(m.notes)
    assert "type '4' ignored for a login of affiliation resp" in text
    assert "a parent vector without names ignored" in text and "5 fields" in text


def test_staff_are_matched_by_academic_email_among_staff_only():
    m = match_identity("agents", {"mail": ["Anne.Prof@AC-TEST.fr"]}, academy())
    assert (m.method, jointures(m)) == ("email", ["T1"])  # X1 has the address too, but is not staff
    m = match_identity("agents", {"ctemail": ["anne.prof@ac-test.fr"]}, academy(), email_attribute="ctemail")
    assert m.unique is not None and m.unique.jointure == "T1"
    # EduConnect logins never match on e-mail; the agents' IdP never on vectors
    assert not match_identity("educonnect", {"mail": ["anne.prof@ac-test.fr"]}, academy()).candidates
    assert not match_identity("agents", {"FrEduVecteur": ["4|||R1001|0750001A"]}, academy()).candidates
    assert not match_identity("agents", {"FrEduCtRefId": ["{AAF}01|X|1001"]}, academy()).candidates


def test_what_was_tried_is_noted_without_personal_data():
    m = match_identity("educonnect", {"FrEduVecteur": ["4|||R9999|0750001A"], "FrEduCtRefId": ["{AAF}01|X|ghost"]},
                       academy())
    assert m.method is None and not m.candidates
    text = " ".join(m.notes)
    assert "1 AAF reference(s), no matching account" in text and "1 vector(s), no matching account" in text
    assert "R9999" not in text and "ghost" not in text and "0750001A" not in text
    assert "none of the attributes" in match_identity("educonnect", {}, academy()).notes[0]
    assert "mail" in match_identity("agents", {}, academy()).notes[0]
