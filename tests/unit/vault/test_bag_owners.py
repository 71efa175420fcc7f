"""Whose bag an owner's items make and what it is called (services/vault/rules/bag_owners.py)."""
from __future__ import annotations

import pytest

from services.vault.rules.bag_owners import (
    PERSON,
    STRUCTURE,
    BadOwner,
    from_bag_info,
    from_bag_name,
    owner_of,
    structure,
)


def test_a_structure_owner_is_its_shared_spaces_anything_else_a_person():
    assert owner_of("structure:0690001A") == structure("0690001A")
    assert owner_of("structure:0690001A").owner == "structure:0690001A"
    assert owner_of("2605692").kind == PERSON and owner_of("2605692").owner == "2605692"
    with pytest.raises(BadOwner, match="not a UAI"):
        owner_of("structure:lycée")
    with pytest.raises(BadOwner, match="empty"):
        owner_of("")


@pytest.mark.parametrize("owner, name", [
    ("2605692", "person-2605692"),
    ("structure:0690001A", "structure-0690001A"),
    ("jean.dupont", "person-jean.dupont"),
    ("élève/../x", "person-%C3%A9l%C3%A8ve%2F..%2Fx"),  # never a path out of where bags go
])
def test_bag_names_are_safe_file_names_and_read_back(owner, name):
    o = owner_of(owner)
    assert o.bag_name == name and "/" not in o.bag_name
    assert from_bag_name(name) == o


def test_bag_info_says_whose_bag_it_is():
    assert structure("0690001A").bag_info() == {"Relais-Structure-UAI": "0690001A"}
    assert owner_of("J1").bag_info() == {"Relais-Person-Jointure": "J1"}
    assert from_bag_info({"Relais-Structure-UAI": ["0690001A"]}, "b").kind == STRUCTURE
    assert from_bag_info({"Relais-Person-Jointure": ["J1"], "Relais-Structure-UAI": ["0690001A"]}, "b").id == "J1"
    with pytest.raises(BadOwner, match="b: bag-info.txt has neither"):
        from_bag_info({}, "b")
    with pytest.raises(BadOwner, match="Relais-Structure-UAI: '06' is not a UAI"):
        from_bag_info({"Relais-Structure-UAI": ["06"]}, "b")
    with pytest.raises(BadOwner, match="is not a bag name"):
        from_bag_name("bag-1")
