import copy

import pytest

from relais.bus import contracts
from relais.bus.envelope import Event

PERSON = {"jointure": "1", "category": "Eleve", "profiles": ["National_ELV"], "last_name": "A", "first_name": "B",
          "title": None, "birth_date": "2012-02-01", "email": None, "ine": None, "struct_rattach_id": "9",
          "structure": "S1", "mef": None, "memberships": [{"kind": "class", "structure": "S1", "code": "3A"}]}


def event(type_, payload):
    return Event(type=type_, payload=payload, source="relais.directory", tenant="t", correlation_id="c").to_dict()


def test_every_schema_is_valid_and_named_in_the_asyncapi_document():
    from jsonschema import Draft202012Validator

    for schema in contracts._schemas().values():
        Draft202012Validator.check_schema(schema)
    doc = contracts.asyncapi_document()
    assert doc["asyncapi"] == "3.0.0"
    events = [c for c in doc["channels"].values() if c["bindings"]["amqp"].get("exchange", {}).get("name") == (
        "relais.events")]  # the others are the RPC methods' (tests/kernel/test_rpc_contracts.py)
    assert {c["address"] for c in events} == contracts.known_types()
    for message in doc["components"]["messages"].values():
        ref = message["payload"]["schema"]["$ref"].split("#")[0]
        assert (contracts.contracts_dir() / ref).is_file(), ref


def test_valid_events_pass_and_broken_ones_are_refused():
    good = event("directory.person.created", {"person": PERSON})
    contracts.validate_event(good)
    def broken(change) -> dict:
        ev = copy.deepcopy(good)
        change(ev)
        return ev

    def person(ev: dict) -> dict:
        return ev["payload"]["person"]

    for ev in (
        broken(lambda ev: ev.update(extra=1)),
        broken(lambda ev: ev.update(payload={})),
        broken(lambda ev: person(ev)["memberships"][0].pop("code")),
        broken(lambda ev: person(ev)["memberships"][0].update(x=1)),
        broken(lambda ev: ev.update(id="nope")),
        broken(lambda ev: ev.update(occurred_at="2026-11-22T14:00:00")),
        broken(lambda ev: ev.update(type="directory.nothing")),
    ):
        with pytest.raises(contracts.ContractError):
            contracts.validate_event(ev)


def test_the_issue_s_faulty_person_is_refused_field_by_field():
    """A payload that breaks its schema: each fault named by its field and rule, never by its value."""
    good = event("directory.person.created", {"person": PERSON})
    assert contracts.refusal(good) is None

    def faulty(**change) -> dict:
        return event("directory.person.created", {"person": {**PERSON, **change}})

    assert contracts.refusal(faulty(profiles="National_ELV")) == "payload.person.profiles: must be array"
    assert contracts.refusal(faulty(birth_date="31/12/2010")).startswith("payload.person.birth_date: must match")
    assert contracts.refusal(faulty(birth_date="2010-13-01")).startswith("payload.person.birth_date: must match")
    assert contracts.refusal(faulty(birth_date="2010-12-32")).startswith("payload.person.birth_date: must match")
    assert contracts.refusal(faulty(is_admin=True)) == "payload.person: additional property is_admin not allowed"
    # a membership is checked against the shape of its kind only: the refusal names what that kind lacks
    assert contracts.refusal(faulty(memberships=[{"kind": "class", "structure": "S1"}])) == \
        "payload.person.memberships[0]: must have code"
    assert contracts.refusal(faulty(memberships=[{"kind": "relative", "person": "2"}])).startswith(
        "payload.person.memberships[0]: must have link, legal_guardian")
    assert contracts.refusal(faulty(memberships=[{"kind": "class", "structure": "S1", "code": "3A", "x": 1}])) == \
        "payload.person.memberships[0]: additional property x not allowed"
    assert contracts.refusal(faulty(memberships=[{"kind": "club", "structure": "S1"}])).startswith(
        "payload.person.memberships[0].kind: must be one of")
    assert contracts.refusal(faulty(memberships=[{"structure": "S1"}])) == \
        "payload.person.memberships[0]: must have kind"
    extra = event("directory.person.created", {"person": PERSON, "is_admin": True})
    assert contracts.refusal(extra) == "payload: additional property is_admin not allowed"
    missing = {k: v for k, v in PERSON.items() if k not in ("ine", "mef")}
    assert contracts.refusal(faulty() | {"payload": {"person": missing}}) == "payload.person: must have ine, mef"
    assert contracts.refusal({**good, "source": "relais.sso"}) == 'source: must be "relais.directory"'


def test_an_update_changes_only_the_record_s_own_fields():
    """`changes` of a `.updated` event: the record's fields, each of its type, and raw attributes; nothing else."""
    def updated(changes) -> dict:
        return event("directory.person.updated", {"jointure": "1", "category": "Eleve", "changes": changes})

    assert contracts.refusal(updated({"birth_date": {"before": None, "after": "2012-02-01"},
                                      "other_first_names": {"before": ["Jean"], "after": None},
                                      "attributes.ENTPersonNom": {"before": ["A"], "after": ["B"]}})) is None
    assert contracts.refusal(updated({"is_admin": {"before": None, "after": True}})) == (
        "payload.changes: additional property is_admin not allowed")
    assert contracts.refusal(updated({"profiles": {"before": [], "after": "National_ENS"}})).startswith(
        "payload.changes.profiles.after: ")
    assert contracts.refusal(updated({"birth_date": {"before": None, "after": "31/12/2010"}})).startswith(
        "payload.changes.birth_date.after: ")
    assert contracts.refusal(updated({})) == "payload.changes: must contain at least 1 properties"
    structure = event("directory.structure.updated", {"jointure": "S1", "uai": "0000001X",
                                                      "changes": {"owner": {"before": None, "after": "x"}}})
    assert contracts.refusal(structure) == "payload.changes: additional property owner not allowed"


def test_types_bound_follow_amqp_topic_patterns():
    assert contracts.types_bound(["directory.mef.*"]) == {
        "directory.mef.created", "directory.mef.updated", "directory.mef.deleted"}
    assert contracts.types_bound(["#"]) == contracts.known_types()
    assert contracts.types_bound(["directory.#"]) == {t for t in contracts.known_types() if t.startswith("directory.")}
    assert contracts.types_bound(["*.login.#"]) == {"sso.login.succeeded", "sso.login.failed"}
    assert contracts.types_bound(["sso.logout", "nothing.*"]) == {"sso.logout"}
    assert contracts.types_bound([]) == frozenset()
    assert contracts.types_bound(contracts.subscriptions()["provisioning"]) == set(
        contracts.subscriptions()["provisioning"])


def test_the_compiled_envelope_check_agrees_with_jsonschema():
    """Consumers check envelopes with fastjsonschema's compiled form; jsonschema is the reference."""
    from jsonschema import Draft202012Validator, FormatChecker

    from relais.bus.envelope import Event

    reference = Draft202012Validator(contracts._schemas()["envelope.json"], format_checker=FormatChecker())
    good = Event(type="directory.person.created", source="relais.directory", tenant="t", correlation_id="c",
                 payload={}).to_dict()
    cases = [good, {**good, "causation_id": good["id"]}, {**good, "occurred_at": "2026-11-23T06:00:00+01:00"}]
    cases += [{**good, **change} for change in (
        {"id": "not-a-uuid"}, {"id": good["id"].upper()}, {"type": "Directory"}, {"version": 0}, {"version": "1"},
        {"version": True}, {"occurred_at": "2026-11-23T06:00:00"}, {"occurred_at": "yesterday Z"},
        {"source": ""}, {"tenant": 3}, {"correlation_id": None}, {"causation_id": 1}, {"payload": []},
        {"extra": 1})]
    cases += [{k: v for k, v in good.items() if k != key} for key in good]
    cases += [[], "text", None]
    for case in cases:
        expected = reference.is_valid(case)
        try:
            contracts.validate_envelope(case)
            accepted = True
        except contracts.ContractError:
            accepted = False
        assert accepted == expected, case
    assert sum(reference.is_valid(c) for c in cases) == 3


def test_every_published_event_type_has_a_consumer_named_in_the_contracts():
    """An event type nobody receives would only ever reach relais.unrouted: each names its consumer(s),
    built (`x-relais-consumer`) or planned (`x-relais-planned` too: no queue until it is built)."""
    published = contracts.published_types()
    assert published == contracts.known_types()
    receivers = contracts.consumers_of()
    homeless = sorted(t for t in published if not receivers.get(t))
    assert homeless == [], (f"no consumer named in contracts/asyncapi.yaml for {homeless}: add a receive operation "
                            "with x-relais-consumer (and x-relais-planned while it is not built)")
    built, planned = contracts.subscriptions(), contracts.planned_subscriptions()
    assert set(built) == {"provisioning", "usage", "vault", "subject", *(f"{s}-subject" for s in (
        "directory", "provisioning", "sso", "usage", "vault"))}  # erasure requests, and their confirmations
    assert built["usage"] == ("provisioning.grant.created", "provisioning.grant.revoked",
                              "provisioning.quota.exhausted", "sso.cas.ticket.validated", "sso.login.failed",
                              "sso.login.succeeded", "sso.logout", "sso.oidc.token.issued",
                              "sso.saml.response.sent")
    assert set(planned) == {"audit"}
    assert planned["audit"] == ("directory.import.completed", "vault.person.erased")
    # A planned subscription is bound nowhere: publishers declare only the built consumers' queues.
    assert not {t for types in built.values() for t in types} & {t for types in planned.values() for t in types}
