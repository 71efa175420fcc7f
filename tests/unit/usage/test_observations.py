"""What each event tells the usage service (no I/O)."""

from datetime import date
from zoneinfo import ZoneInfo

import pytest

from services.usage.rules.observations import (
    UNKNOWN,
    Activity,
    LicenceChange,
    UnknownEventType,
    level_of,
    observe,
    services_to_resources,
)

PARIS = ZoneInfo("Europe/Paris")


def event(type_: str, payload: dict, at: str = "2026-11-30T23:30:00Z") -> dict:
    return {"type": type_, "payload": payload, "occurred_at": at}


def test_a_login_late_on_the_last_utc_evening_of_november_is_a_december_day_in_paris():
    seen = observe(event("sso.login.succeeded", {"person": "J1", "structure": "0750001A", "profile": "National_ELV",
                                                 "level": "10210012110"}), PARIS, {})
    assert seen == Activity("session", date(2026, 12, 1), "J1", "0750001A", "National_ELV", "1021", "")


def test_a_visit_names_the_resource_its_service_serves_and_missing_facts_are_unknown():
    seen = observe(event("sso.cas.ticket.validated", {"person": "J1", "service": "moodle-cas", "structure": None}),
                   PARIS, services_to_resources({"ark:/49591/moodle": ["moodle-cas"]}))
    assert isinstance(seen, Activity) and seen.resource == "ark:/49591/moodle"
    assert (seen.structure, seen.profile, seen.level) == (UNKNOWN, UNKNOWN, UNKNOWN)


def test_an_oidc_client_opened_is_a_visit_to_its_resource():
    seen = observe(event("sso.oidc.token.issued", {"person": "J1", "client": "elea", "structure": "0750001A",
                                                   "profile": "National_ELV", "level": None}),
                   PARIS, services_to_resources({"ark:/49591/elea": ["elea"]}))
    assert isinstance(seen, Activity) and seen.resource == "ark:/49591/elea" and seen.person == "J1"


def test_grants_count_without_their_person_and_logouts_count_nothing():
    assert observe(event("provisioning.grant.revoked", {"person": "J1", "resource": "r", "structure": "s"}),
                   PARIS, {}) == LicenceChange("s", "r", -1)
    assert observe(event("sso.logout", {"person": "J1"}), PARIS, {}) is None
    with pytest.raises(UnknownEventType, match="sso.session.extended"):
        observe(event("sso.session.extended", {}), PARIS, {})


def test_a_service_mapped_to_two_resources_is_refused():
    with pytest.raises(ValueError, match="'cas' is mapped to two resources"):
        services_to_resources({"a": ["cas"], "b": ["cas"]})


@pytest.mark.parametrize("given, level", [("10010012110", "1001"), ("4EME", "4EME"), (None, UNKNOWN), ("", UNKNOWN)])
def test_a_mef_code_becomes_its_level(given, level):
    assert level_of(given) == level
