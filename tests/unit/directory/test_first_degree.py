"""First-degree attribute names read as their second-degree equivalents."""

from __future__ import annotations

from services.directory.rules.first_degree import normalize_1d


def test_first_degree_names_stand_for_second_degree_ones():
    attrs = {"ENTPersonNom": ["Petit"], "ENTPersonPrenom": ["Léo"], "ENTPersonMail": ["leo@ac.fr"],
             "ENTPersonClasses": ["S1$CP"], "ENTPersonGroupes": ["S1$G1"]}
    out = normalize_1d(attrs)
    assert (out["sn"], out["givenName"], out["mail"]) == (["Petit"], ["Léo"], ["leo@ac.fr"])
    assert (out["ENTEleveClasses"], out["ENTEleveGroupes"]) == (["S1$CP"], ["S1$G1"])
    assert out["ENTPersonNom"] == ["Petit"]  # kept as received
    assert "sn" not in attrs  # the record read is not changed


def test_a_second_degree_value_wins():
    out = normalize_1d({"sn": ["Durand"], "ENTPersonNom": ["Petit"], "givenName": [], "ENTPersonPrenom": ["Léo"]})
    assert out["sn"] == ["Durand"] and out["givenName"] == ["Léo"]


def test_second_degree_records_are_left_as_they_are():
    attrs = {"sn": ["Durand"]}
    assert normalize_1d(attrs) is attrs
