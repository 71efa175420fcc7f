"""Assignment rules: which accounts of which structures get which resource.

A rule names a resource and selects accounts of a structure by profile, MEF
(prefix, so "1001" covers every 6e MEF), first-degree level or cycle (code or
label, any case: `levels: [CM2]` is every CM2 pupil, `cycles: [C3]` or
`["CYCLE 3"]` every cycle 3 pupil, whatever their class, multi-level ones
included), class, group, subject taught or function; every criterion given
must hold, a criterion left out selects all.
Rules without `structures` apply in every structure of the tenant.

A rule set is parsed whole: any problem refuses all of it (`RuleError`).
Checking its names against the catalogue and the directory is
`load_checks.py`'s; who is a resource manager, `managers.py`'s.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .documents import entries
from .member import Member

DEFAULT_GRACE_DAYS = 30


class RuleError(ValueError):
    """The rule set is not valid; nothing of it was applied."""

    def __init__(self, problems: list[str]):
        super().__init__("invalid rules: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Rule:
    id: str
    resource: str
    structures: frozenset[str] = frozenset()  # UAIs; empty: every structure
    profiles: frozenset[str] = frozenset()
    mefs: tuple[str, ...] = ()  # MEF code prefixes
    classes: frozenset[str] = frozenset()  # class codes in the structure
    groups: frozenset[str] = frozenset()
    subjects: frozenset[str] = frozenset()  # subjects taught there (teachers)
    functions: frozenset[str] = frozenset()  # function codes there (DIR, DOC, ...)
    levels: frozenset[str] = frozenset()  # first-degree levels, code or label, upper case (CM2, 0022)
    cycles: frozenset[str] = frozenset()  # first-degree cycles, code or label, upper case (C3, CYCLE 3)

    def selects(self, m: Member, uai: str) -> bool:
        """Does this rule give its resource to `m` in structure `uai`? (m is a member of uai)"""
        if self.structures and uai not in self.structures:
            return False
        if self.profiles and not (self.profiles & m.profiles):
            return False
        if self.mefs and not (m.mef and m.mef.startswith(self.mefs)):
            return False
        if self.levels and not (self.levels & m.levels):
            return False
        if self.cycles and not (self.cycles & m.cycles):
            return False
        if self.classes and not any(c in self.classes for s, c in m.classes if s == uai):
            return False
        if self.groups and not any(g in self.groups for s, g in m.groups if s == uai):
            return False
        if self.subjects and not any(x in self.subjects for s, x in m.subjects if s == uai):
            return False
        if self.functions and not any(f in self.functions for s, f in m.functions if s == uai):
            return False
        return True

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "resource": self.resource}
        for key in ("structures", "profiles", "classes", "groups", "subjects", "functions", "levels", "cycles"):
            if getattr(self, key):
                out[key] = sorted(getattr(self, key))
        if self.mefs:
            out["mefs"] = list(self.mefs)
        return out


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    managers: Mapping[str, frozenset[str]] = field(default_factory=dict)  # UAI -> resource managers' jointures
    manager_functions: frozenset[str] = frozenset({"DIR"})  # function codes that make a resource manager
    grace_days: int = DEFAULT_GRACE_DAYS

    def for_structure(self, uai: str) -> tuple[Rule, ...]:
        """The rules that apply in `uai`, in order (computed once per structure)."""
        cache = self.__dict__.setdefault("_by_structure", {})  # frozen dataclass: a private memo
        found = cache.get(uai)
        if found is None:
            found = cache[uai] = tuple(r for r in self.rules if not r.structures or uai in r.structures)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {
            "rules": [r.to_dict() for r in self.rules],
            "managers": {k: sorted(v) for k, v in sorted(self.managers.items())},
            "manager_functions": sorted(self.manager_functions),
            "grace_days": self.grace_days,
        }


_LIST_KEYS = ("structures", "profiles", "mefs", "classes", "groups", "subjects", "functions", "levels", "cycles")


def parse_rules(document: Mapping[str, Any]) -> RuleSet:
    problems: list[str] = []
    rules: list[Rule] = []
    for where, entry in entries(document, "rules", "rule", problems):
        bad = []
        if not isinstance(entry.get("id"), str) or not entry["id"]:
            bad.append("no id")
        if not isinstance(entry.get("resource"), str):
            bad.append("no resource")
        for key in _LIST_KEYS:
            if entry.get(key) is not None and not isinstance(entry[key], list):
                bad.append(f"{key} must be a list")
        unknown = set(entry) - {"id", "resource", *_LIST_KEYS, "description"}
        if unknown:
            bad.append(f"unknown keys {sorted(unknown)}")
        if bad:
            problems.extend(f"{where}: {b}" for b in bad)
            continue
        rules.append(Rule(
            id=entry["id"], resource=entry["resource"],
            structures=frozenset(str(s).upper() for s in entry.get("structures") or ()),
            profiles=frozenset(entry.get("profiles") or ()),
            mefs=tuple(str(x) for x in entry.get("mefs") or ()),
            classes=frozenset(map(str, entry.get("classes") or ())),
            groups=frozenset(map(str, entry.get("groups") or ())),
            subjects=frozenset(map(str, entry.get("subjects") or ())),
            functions=frozenset(map(str, entry.get("functions") or ())),
            levels=frozenset(str(x).upper() for x in entry.get("levels") or ()),
            cycles=frozenset(str(x).upper() for x in entry.get("cycles") or ()),
        ))
    managers = document.get("managers") or {}
    if not isinstance(managers, dict) or not all(isinstance(v, list) for v in managers.values()):
        problems.append("managers must map a UAI to a list of jointures")
        managers = {}
    grace = document.get("grace_days", DEFAULT_GRACE_DAYS)
    if not isinstance(grace, int) or grace < 0:
        problems.append(f"grace_days {grace!r} is not a whole number of days ≥ 0")
    if problems:
        raise RuleError(problems)
    return RuleSet(
        tuple(rules),
        {str(k).upper(): frozenset(map(str, v)) for k, v in managers.items()},
        frozenset(document.get("manager_functions") or ("DIR",)),
        grace,
    )
