"""Which GAR feed a structure and a person go to: écoles to the first-degree one."""

from __future__ import annotations

from services.provisioning.feeds.gar_degrees import only_elsewhere, split_structures


def _person(*structures: str) -> dict:
    return {"memberships": [{"kind": "structure", "structure": s} for s in structures]}


def test_ecoles_are_the_structures_with_first_degree_facts():
    degrees = split_structures([
        ("S1", "0130001A", {"first_degree": {"district": "IEN1", "town": None, "sector": None, "rpi": None}}),
        ("S2", "0130002B", {"type": "CLG"}),
        ("S3", None, {"first_degree": {"district": None, "town": None, "sector": None, "rpi": None}}),  # no UAI
        ("S4", "0130004D", {"first_degree": None}),  # updated away: no longer an école
    ])
    assert degrees.first == {"S1": "0130001A"} and degrees.second == {"S2": "0130002B", "S4": "0130004D"}


def test_a_person_only_in_the_other_degree_is_not_this_feeds():
    degrees = split_structures([("E", "1", {"first_degree": {}}), ("C", "2", {"first_degree": {"district": "X"}}),
                                ("L", "3", {})])
    ecoles, others = degrees.first, degrees.second
    assert only_elsewhere(_person("C"), others, ecoles)  # a pupil of an école, for the second-degree feed
    assert not only_elsewhere(_person("C", "L"), others, ecoles)  # a teacher in both: in both feeds
    assert not only_elsewhere(_person("X"), others, ecoles)  # unknown structure: left out with a reason instead
    assert not only_elsewhere(_person(), others, ecoles)
