"""EduConnect logins of écoles' pupils and parents: matched on the generated academy and on a family in both degrees."""

from __future__ import annotations

from services.directory.api import Directory
from services.sso.rules.account_matching import match_identity
from tests import aaf_builder as aaf
from tools.synthetic_academy import generate_academy


def _vector(kind: str, person: dict, ident: str, uai: str) -> str:
    return f"{kind}|{person['last_name'].upper()}|{person['first_name']}|{ident}|{uai}"


def test_an_ecole_pupil_and_their_parent_log_in(engine, tmp_path):
    generate_academy(tmp_path / "academy", 700, seed=5, first_degree_share=0.5)
    directory = Directory(engine, "test")
    assert directory.import_files([tmp_path / "academy"]).ok
    uai = directory.get_structure("70000")["uai"]
    pupil = next(p for p in directory.members("70000") if p["category"] == "Eleve")
    assert pupil["struct_rattach_id"] is None and pupil["ine"]  # ONDE: no SIECLE id, an INE

    match = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["eleve1d"],
                                          "FrEduVecteur": [_vector("3", pupil, pupil["ine"], uai)]}, directory)
    assert match.method == "vecteur" and match.unique is not None and match.unique.jointure == pupil["jointure"]
    assert match_identity("educonnect", {"FrEduVecteur": [_vector("3", pupil, pupil["ine"], "0000000Z")]},
                          directory).unique is None  # in another school: not them

    [parent, *_] = directory.legal_guardians(pupil["jointure"])
    match = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["resp1d"],
                                          "FrEduVecteur": [_vector("1", parent, pupil["ine"], uai)]}, directory)
    assert match.unique is not None and match.unique.jointure == parent["jointure"]


def test_a_parent_with_children_in_an_ecole_and_a_college(sqlite_engine, tmp_path):
    directory = Directory(sqlite_engine, "test")
    ecole = aaf.add("EtabEducNat", "E", ENTStructureJointure="E", ENTStructureUAI="0130001A",
                    ENTStructureNomCourant="ECOLE JEAN MOULIN", ENTEcoleCirconscription="0131234X")
    petit = aaf.add("Eleve", "P1", ENTPersonJointure="P1", ENTPersonNom="Petit", ENTPersonPrenom="Léo",
                    ENTEleveINE="111111111AA", ENTPersonStructRattach="E", ENTPersonClasses="E$2026$CP$C1$CP A",
                    ENTEleveNiveau="0011$CP", ENTEleveAutoriteParentale=["R1"])
    grand = aaf.pupil("P2", structure="S1", relatives=["R1"])  # the same parent, in the collège's export too
    report = directory.import_files([
        aaf.write(tmp_path, "X1D_Complet_20260901_EtabEducNat_0000.xml", ecole),
        aaf.write(tmp_path, "X_Complet_20260901_EtabEducNat_0000.xml", aaf.school("S1", "0130002B")),
        aaf.write(tmp_path, "X1D_Complet_20260901_Eleve_0000.xml", petit),
        aaf.write(tmp_path, "X_Complet_20260901_Eleve_0000.xml", grand),
        aaf.write(tmp_path, "X_Complet_20260901_PersRelEleve_0000.xml", aaf.relative("R1", "Petit", "Hélène"),
                  aaf.relative("R9", "Petit", "Hélène"))])
    assert report.ok and not report.rejected
    vectors = ["1|PETIT|Hélène|111111111AA|0130001A", "2|PETIT|Helene|RP2|0130002B"]
    once = match_identity("educonnect", {"FrEduCtPersonAffiliation": ["resp1d"], "FrEduVecteur": vectors}, directory)
    assert once.unique is not None and once.unique.jointure == "R1"  # one account for both children: matched once

    # Two accounts (the écoles' export naming the parent R9): the parent chooses, told which child is whose.
    directory.import_files([aaf.write(tmp_path, "X1D_Delta_20260902_Eleve_0000.xml",
                                      aaf.modify("Eleve", "P1", ENTEleveAutoriteParentale="R9"))])
    choice = match_identity("educonnect", {"FrEduVecteur": vectors}, directory)
    assert [c.jointure for c in choice.candidates] == ["R1", "R9"]
    assert "responsable de Léo" in choice.candidates[1].label and "responsable de Élodie" in choice.candidates[0].label
