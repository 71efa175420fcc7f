"""The console's roles: who signs in as what, and what each may do where (services/console/rules/roles.py)."""

from __future__ import annotations

from services.console.rules.roles import (
    ADMINISTRATOR,
    COLLECTIVITE,
    DPO,
    RESOURCE_MANAGER,
    Identity,
    RolePolicy,
    function_structures,
    identify,
    may,
    scope,
)

POLICY = RolePolicy(administrators=frozenset({"A1"}), dpos=frozenset({"P1"}), collectivite=frozenset({"C1"}))
UAI_OF = {"S1": "0750001A", "S2": "0750002B"}


def test_a_head_of_school_is_resource_manager_of_the_uai_where_they_hold_the_function():
    who = identify("D1", {"ENTPersonFonctions": ["S1$DIR$DIRECTION", "S2$ENS$ENSEIGNEMENT$L0202"],
                          "ENTPersonProfils": ["National_ENS"], "displayName": ["Claire Nom"]}, POLICY, UAI_OF)
    assert who == Identity("D1", "Claire Nom", frozenset({RESOURCE_MANAGER}), frozenset({"0750001A"}))


def test_a_manager_profile_makes_a_manager_of_one_s_schools():
    who = identify("D3", {"ENTPersonProfils": ["National_DIR"], "ENTPersonEtablissementsUAI": ["0750002b"]},
                   POLICY, UAI_OF)
    assert who.roles == {RESOURCE_MANAGER} and who.uais == {"0750002B"}
    attached = identify("D4", {"ENTPersonProfils": ["National_DIR"], "ENTPersonStructRattachUAI": ["0750001A"]},
                        POLICY, UAI_OF)
    assert attached.uais == {"0750001A"}


def test_configured_lists_give_tenant_roles_and_a_teacher_gets_none():
    assert identify("A1", {}, POLICY, UAI_OF).roles == {ADMINISTRATOR}
    assert identify("P1", {}, POLICY, UAI_OF).roles == {DPO}
    assert identify("C1", {}, POLICY, UAI_OF).roles == {COLLECTIVITE}
    teacher = identify("T1", {"ENTPersonFonctions": ["S1$ENS$ENSEIGNEMENT"], "ENTPersonProfils": ["National_ENS"]},
                       POLICY, UAI_OF)
    assert teacher.roles == frozenset() and teacher.name == "T1"


def test_a_function_in_an_unknown_structure_gives_no_uai():
    assert function_structures({"ENTPersonFonctions": ["S9$DIR$DIRECTION", "$DIR", "S1"]}, {"DIR"}) == {"S9"}
    assert identify("D9", {"ENTPersonFonctions": ["S9$DIR$DIRECTION"]}, POLICY, UAI_OF).roles == frozenset()


def test_a_manager_may_only_in_their_uai_and_only_what_managers_do():
    manager = Identity("D1", "D", frozenset({RESOURCE_MANAGER}), frozenset({"0750001A"}))
    assert may(manager, "person", ["0750001A", "0750002B"])
    assert may(manager, "grant", ["0750001a"])
    assert not may(manager, "grant", ["0750002B"])
    assert not may(manager, "person", [])
    assert not may(manager, "health") and not may(manager, "audit") and not may(manager, "imports")
    assert may(manager, "directory") and scope(manager, "directory") == {"0750001A"}


def test_tenant_wide_roles_are_not_bounded_to_uais_but_only_managers_grant():
    admin = Identity("A1", "A", frozenset({ADMINISTRATOR}))
    dpo = Identity("P1", "P", frozenset({DPO}))
    assert may(admin, "person", ["0999999Z"]) and may(admin, "health") and scope(admin, "directory") is None
    assert may(dpo, "audit") and may(dpo, "person", ["0999999Z"]) and not may(dpo, "health")
    assert not may(admin, "grant", ["0750001A"])  # provisioning records a manager as the grant's cause


def test_the_collectivite_sees_usage_only_and_unknown_actions_are_refused():
    collectivite = Identity("C1", "C", frozenset({COLLECTIVITE}))
    assert not any(may(collectivite, a) for a in ("health", "directory", "person", "grant", "audit", "resources",
                                                   "rules", "imports"))
    assert may(collectivite, "usage") and may(Identity("A1", "A", frozenset({ADMINISTRATOR})), "usage")
    assert not any(may(Identity("X", "X", frozenset({r}), frozenset({"0750001A"})), "usage")
                   for r in (RESOURCE_MANAGER, DPO))
    assert not may(Identity("A1", "A", frozenset({ADMINISTRATOR})), "no-such-action")
