"""Data minimisation: a resource receives only the attributes its catalogue entry lists; by default the id."""

from __future__ import annotations

import pytest

from services.provisioning.grants.catalogue import CatalogueError
from services.provisioning.grants.data_minimisation import DEFAULT_ATTRIBUTES, account, attributes_for_app

from .helpers import OTHER, UAI, resources, teacher
from .helpers import pupil as make_pupil


def test_the_default_is_the_opaque_id_alone():
    catalogue = resources({"id": "dico", "licence": "unlimited"})
    assert catalogue["dico"].attributes == DEFAULT_ATTRIBUTES == ("id",)
    assert account(make_pupil("7"), catalogue["dico"].attributes, UAI) == {"id": "7"}


def test_only_the_listed_attributes_and_only_for_the_structure():
    pupil = make_pupil("7", klass="6A")
    got = account(pupil, ("id", "classes", "last_name"), UAI)
    assert got == {"id": "7", "classes": ["6A"], "last_name": "Martin"}
    assert account(pupil, ("classes",), OTHER) == {"classes": []}  # its classes elsewhere are not told
    assert account(teacher("T1"), ("profiles", "structure", "mef"), UAI) == {
        "profiles": ["National_ENS"], "structure": UAI, "mef": None}


def test_a_catalogue_listing_an_unknown_attribute_is_refused():
    with pytest.raises(CatalogueError, match="unknown attributes"):
        resources({"id": "x", "licence": "unlimited", "attributes": ["id", "birth_date"]})


def test_an_app_receives_the_union_of_its_resources_lists():
    assert attributes_for_app([]) == {"id"}
    assert attributes_for_app([("classes",), ("email", "id")]) == {"id", "classes", "email"}
