"""Resource managers: who may give licences by hand in a structure, and who hears of a quota refusal.

A resource manager of a structure (the GAR's RESP-AFFECT) is an account
listed for its UAI under `managers:` in the rules, or an account holding
there one of the rule set's `manager_functions` (default `DIR`, the head of
the school). Managers give and take back manual grants there, are told when
a quota refuses a grant there, and are the GAR feed's `RespAff` records.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .member import Member
from .rules import RuleSet


def is_manager(rules: RuleSet, m: Member, uai: str) -> bool:
    """Is `m` a resource manager of structure `uai`?"""
    return m.jointure in rules.managers.get(uai, ()) or any(
        s == uai and f in rules.manager_functions for s, f in m.functions)


def directors(staff: Iterable[tuple[str, Mapping[str, Any]]], manager_functions: Iterable[str],
              uai_of: Mapping[str, str]) -> dict[str, set[str]]:
    """UAI -> the accounts holding a manager function there, from (jointure, directory Person record) pairs."""
    functions = frozenset(manager_functions)
    out: dict[str, set[str]] = {}
    for j, record in staff:
        for m in record.get("memberships") or ():
            if m["kind"] == "function" and m["code"] in functions:
                uai = uai_of.get(m.get("structure"), m.get("structure"))
                out.setdefault(uai, set()).add(j)
    return out


def managers_of(rules: RuleSet, directors_by_uai: Mapping[str, set[str]], uai: str) -> list[str]:
    """The resource managers of `uai`, sorted: those the rules list and those holding a manager function."""
    return sorted(set(rules.managers.get(uai, ())) | directors_by_uai.get(uai, set()))


def managed_structures(rules: RuleSet, directors_by_uai: Mapping[str, set[str]]) -> dict[str, set[str]]:
    """Jointure -> the UAIs where that account is a resource manager."""
    out: dict[str, set[str]] = {}
    for by_uai in (rules.managers, directors_by_uai):
        for uai, people in by_uai.items():
            for j in people:
                out.setdefault(j, set()).add(uai)
    return out
