"""Small builders for provisioning's pure-rule tests: accounts, resources, rule sets."""

from __future__ import annotations

from typing import Any

from services.provisioning.grants.catalogue import Resource, parse_catalogue
from services.provisioning.grants.member import Member
from services.provisioning.grants.rules import RuleSet, parse_rules

UAI, OTHER = "0750001A", "0750002B"


def pupil(jointure: str = "1", klass: str = "6A", mef: str = "10010012110", uai: str = UAI, **extra: Any) -> Member:
    record = {"jointure": jointure, "category": "Eleve", "profiles": ["National_ELV"], "mef": mef,
              "last_name": "Martin", "first_name": "Zoé", "email": None,
              "memberships": [{"kind": "structure", "structure": "S1"}, {"kind": "class", "structure": "S1",
                                                                         "code": klass}], **extra}
    return Member.from_record(record, {"S1": uai})


def teacher(jointure: str = "T1", functions: tuple[str, ...] = (), uai: str = UAI) -> Member:
    memberships = [{"kind": "structure", "structure": "S1"},
                   {"kind": "teaching", "structure": "S1", "scope": "class", "code": "6A", "subject": "MATHS"}]
    memberships += [{"kind": "function", "structure": "S1", "code": f} for f in functions]
    return Member.from_record({"jointure": jointure, "category": "PersEducNat", "profiles": ["National_ENS"],
                               "mef": None, "memberships": memberships}, {"S1": uai})


def resources(*entries: dict[str, Any]) -> dict[str, Resource]:
    return {r.id: r for r in parse_catalogue({"resources": [
        {"title": e["id"], "publisher": "P", **e} for e in entries]})}


def ruleset(*rules: dict[str, Any], **settings: Any) -> RuleSet:
    return parse_rules({"rules": list(rules), **settings})
