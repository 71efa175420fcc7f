"""GAR feed exclusions: what the XSD cannot take is left out, with its reason."""

from __future__ import annotations

from services.provisioning.feeds.gar_exclusions import manager_left_out, person_left_out

NAMED = {"jointure": "1", "last_name": "Martin", "first_name": "Zoé"}


def test_a_person_needs_a_known_structure_and_a_name():
    assert person_left_out(NAMED, ["0750001A"]) is None
    assert person_left_out(NAMED, []) == "no structure with a known UAI"
    assert person_left_out({**NAMED, "first_name": ""}, ["0750001A"]) == "no last or first name (required by the GAR)"
    assert person_left_out({"jointure": "1", "first_name": "Zoé"}, ["0750001A"]) is not None


def test_a_resource_manager_needs_a_name_and_an_email():
    assert manager_left_out({**NAMED, "email": "d@ac-test.fr"}) is None
    assert manager_left_out(NAMED) == "a resource manager needs a name and an e-mail address (required by the GAR)"
    assert manager_left_out(None) == "not in the directory"
