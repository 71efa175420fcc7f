"""Matching a national identity to a directory account: the rules of rules/account_matching.py over the real
directory (filled by the real AAF importer), and the agents' IdP end to end. (The same rules over an
in-memory directory: tests/unit/sso/test_account_matching.py.)"""

from __future__ import annotations

import pytest

from services.directory.api import Directory
from services.sso.rules.account_matching import match_identity, refid_jointure
from tests.saml_peers import Browser, SpWorld, import_sample_directory


@pytest.fixture
def directory(sqlite_engine, tmp_path):
    import_sample_directory(sqlite_engine, tmp_path)
    return Directory(sqlite_engine, "test")


def jointures(match) -> list[str]:
    return [c.jointure for c in match.candidates]


def test_refid_first(directory):
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["eleve2d"], "FrEduCtRefId": ["{AAF}01|X|1001"],
                                      "FrEduVecteur": ["4|||R1002|0750001A"]}, directory)
    assert (m.method, jointures(m)) == ("refid", ["1001"])
    assert refid_jointure("{AAF}14|ENT|2605692") == "2605692"
    assert refid_jointure("{ECT}123") is None and refid_jointure("{AAF}nobar") is None


def test_a_refid_of_the_wrong_kind_of_account_is_ignored_and_vectors_are_tried(directory):
    # a parent's login naming a pupil's jointure: not taken; the parent's vector decides
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["resp2d"], "FrEduCtRefId": ["{AAF}01|X|1002"],
                                      "FrEduVecteur": ["2|Dupré|Hélène|R1002|0750001A"]}, directory)
    assert (m.method, jointures(m)) == ("vecteur", ["R1"])
    assert any("category Eleve ignored" in n for n in m.notes)


def test_pupil_vectors_match_on_attachment_id_and_uai(directory):
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["eleve2d"],
                                      "FrEduVecteur": ["4|NOM1001|Élodie|R1001|0750001A"]}, directory)
    assert jointures(m) == ["1001"]
    assert not match_identity("educonnect", {"FrEduVecteur": ["4|||R1001|0750002B"]}, directory).candidates  # UAI


def test_parent_vectors_ignore_case_and_accents_pool_children_and_offer_homonyms(directory):
    # one vector per child; R1 is the relative of both 1001 and 1002: one account
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["resp2d"], "FrEduVecteur": [
        "2|DUPRE|helene|R1002|0750001A", "2|dupré|HÉLÈNE|R1001|0750001A"]}, directory)
    assert m.method == "vecteur"
    assert jointures(m) == ["R1", "R2"]  # R2, a homonym also relative of 1001: the user chooses
    labels = {c.jointure: c.label for c in m.candidates}
    assert labels["R1"] == "Hélène Dupré, responsable, responsable de Élodie, Élodie"
    # a parent's name that does not match is not enough
    assert not match_identity("educonnect", {"FrEduVecteur": ["2|DURAND|Hélène|R1002|0750001A"]},
                              directory).candidates
    # a pupil's vector in a parent's login is not used
    m = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["resp1d"], "FrEduVecteur": ["4|||R1001|0750001A"]},
                       directory)
    assert not m.candidates and any("type '4' ignored" in n for n in m.notes)


def test_staff_by_academic_email_only_among_staff(directory):
    m = match_identity("agents", {"mail": ["anne.prof@AC-TEST.fr"]}, directory)
    assert (m.method, jointures(m)) == ("email", ["T1"])
    assert m.candidates[0].label == ""  # labelled only when there is a choice to make
    assert match_identity("agents", {"ctemail": ["anne.prof@ac-test.fr"]}, directory,
                          email_attribute="ctemail").unique.jointure == "T1"
    # EduConnect logins never match on e-mail; the agents' IdP never on vectors
    assert not match_identity("educonnect", {"mail": ["anne.prof@ac-test.fr"]}, directory).candidates
    assert not match_identity("agents", {"FrEduVecteur": ["4|||R1001|0750001A"]}, directory).candidates


def test_what_was_tried_is_noted_without_personal_data(directory):
    m = match_identity("educonnect", {"FrEduVecteur": ["garbage", "2|||R1001|0750001A", "4|||R9999|0750001A"],
                                      "FrEduCtRefId": ["{AAF}01|X|ghost"]}, directory)
    assert m.method is None and not m.candidates
    text = " ".join(m.notes)
    assert "5 fields" in text and "without names" in text and "no matching account" in text
    assert "R9999" not in text and "ghost" not in text and "0750001A" not in text
    assert "none of the attributes" in match_identity("educonnect", {}, directory).notes[0]


def test_a_teacher_logs_in_through_the_agents_idp(sqlite_engine, tmp_path):
    world = SpWorld(sqlite_engine, tmp_path, idp_settings={"kind": "agents", "label": "Personnels"})
    try:
        world.idp.user = ("agent-1", {"urn:oid:0.9.2342.19200300.100.1.3": ["Anne.Prof@ac-test.fr"]})
        r = Browser().go(world.cas_login_url())
        assert r.text == "app page", r.text
        (event,) = world.events("sso.login.succeeded")
        assert event["payload"]["person"] == "T1" and event["payload"]["auth_source"] == "educonnect"
    finally:
        world.stop()
