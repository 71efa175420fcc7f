"""A person's profiles: pupils, relatives, and staff from their functions."""

from __future__ import annotations

import pytest

from services.directory.rules.profiles import profiles


def test_pupils_and_relatives_have_their_own_profile():
    assert profiles("Eleve", {}, []) == ["National_ELV"]
    assert profiles("PersRelEleve", {}, []) == ["National_TUT"]


@pytest.mark.parametrize(("functions", "expected"), [
    (["ENS"], ["National_ENS"]),
    (["DOC"], ["National_DOC"]),
    (["DIR"], ["National_DIR"]),
    (["EDU"], ["National_EVS"]),
    (["ADF"], ["National_ETA"]),
    (["DIR", "ENS", "DIR"], ["National_DIR", "National_ENS"]),
    ([], ["National_ETA"]),
])
def test_staff_take_a_profile_per_function(functions, expected):
    assert profiles("PersEducNat", {}, functions) == expected


def test_staff_in_front_of_pupils_teach():
    teaching = {"PersEducNatPresenceDevantEleves": ["O"]}
    assert profiles("PersEducNat", teaching, ["DOC"]) == ["National_DOC", "National_ENS"]
    assert profiles("PersEducNat", {"PersEducNatPresenceDevantEleves": ["N"]}, []) == ["National_ETA"]
    assert profiles("PersEducNat", {"PersEducNatPresenceDevantEleves": ["O"]}, []) == ["National_ENS"]


def test_declared_profiles_win_sorted_once_each():
    declared = {"ENTPersonProfils": ["National_ENS", "National_DIR", "National_ENS"]}
    assert profiles("PersEducNat", declared, ["DOC"]) == ["National_DIR", "National_ENS"]
    assert profiles("Eleve", {"ENTPersonProfils": ["National_ELV"]}, []) == ["National_ELV"]
