"""Causes: why an account holds a grant, and which grants the rules call for.

Every grant says why: `rule:<id>`, the first rule (in the rule set's order)
that gives the resource to the account in that structure, or
`manual:<manager jointure>`, given by hand by a resource manager. A resource
goes only to the accounts it is made for (`targets`: its profiles, its MEF
levels), whatever the rules say.
"""

from __future__ import annotations

from collections.abc import Mapping

from .catalogue import Resource
from .member import Key, Member
from .rules import RuleSet

RULE, MANUAL = "rule:", "manual:"


def manual_cause(manager: str) -> str:
    """The cause of a grant a resource manager gave (or took back) by hand."""
    return f"{MANUAL}{manager}"


def is_manual(cause: str) -> bool:
    return cause.startswith(MANUAL)


def targets(resource: Resource, m: Member) -> bool:
    """Is the account of the kind the resource is made for (profiles, levels)?"""
    if resource.profiles and not (resource.profiles & m.profiles):
        return False
    if resource.levels and not (m.mef and m.mef.startswith(resource.levels)):
        return False
    return True


def wanted(m: Member, ruleset: RuleSet, catalogue: Mapping[str, Resource],
           memo: dict[tuple, dict[Key, str]] | None = None) -> dict[Key, str]:
    """(resource, UAI) -> cause ("rule:<id>") of every grant the rules call for.

    `memo`, shared by the calls of one unit of work (same rules, same
    catalogue), keeps the answer per `Member.rule_view()`: in an academy most
    accounts share their view with many others (a class's pupils).
    """
    if memo is not None:
        view = m.rule_view()
        found = memo.get(view)
        if found is None:
            found = memo[view] = wanted(m, ruleset, catalogue)
        return found
    out: dict[Key, str] = {}
    for uai in sorted(m.structures):
        for rule in ruleset.for_structure(uai):
            key = (rule.resource, uai)
            if key in out:
                continue
            resource = catalogue.get(rule.resource)
            if resource is not None and targets(resource, m) and rule.selects(m, uai):
                out[key] = f"rule:{rule.id}"
    return out
