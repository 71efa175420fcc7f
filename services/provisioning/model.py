"""What provisioning knows of an account, and the grant rules, free of I/O.

`Member` is the provisioning view of a directory person: profiles, MEF and,
per structure UAI, classes, groups, subjects taught and functions. The
directory names structures by jointure; the view names them by UAI, which is
what rules, the GAR and people use.

`wanted` gives the grants the rules call for, each with its cause (the first
rule by id). `plan` compares them with the grants held and says what to
grant, what to revoke now (no rule selects the account any more) and what to
revoke after the grace period (the account left the structure, or the
directory).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .catalogue import Resource
    from .rules import RuleSet

Key = tuple[str, str]  # (resource id, structure UAI)


_NONE: frozenset = frozenset()


@dataclass(slots=True)  # not frozen: a full evaluation builds a million, and frozen fields cost 5x to set
class Member:
    jointure: str
    category: str
    profiles: frozenset[str]
    mef: str | None
    structures: frozenset[str]  # UAIs
    classes: frozenset[tuple[str, str]] = frozenset()  # (UAI, code)
    groups: frozenset[tuple[str, str]] = frozenset()
    subjects: frozenset[tuple[str, str]] = frozenset()
    functions: frozenset[tuple[str, str]] = frozenset()
    last_name: str | None = None
    first_name: str | None = None
    email: str | None = None

    @classmethod
    def from_record(cls, record: Mapping[str, Any], uai_of: Mapping[str, str]) -> Member:
        """From a directory Person record (contracts: Person); `uai_of`: structure jointure -> UAI."""
        # A full evaluation calls this a million times: locals, lists, and one shared empty set.
        get = uai_of.get
        structures = classes = groups = subjects = functions = _NONE
        memberships = record.get("memberships")
        if memberships:
            st: list[str] = []
            cl: list[tuple[str, str]] = []
            gr: list[tuple[str, str]] = []
            su: list[tuple[str, str]] = []
            fu: list[tuple[str, str]] = []
            for m in memberships:
                kind, s = m["kind"], m.get("structure")
                if s:
                    s = get(s, s)
                if kind == "structure":
                    if s:
                        st.append(s)
                elif kind == "class":
                    cl.append((s, m["code"]))
                elif kind == "group":
                    gr.append((s, m["code"]))
                elif kind == "teaching":
                    su.append((s, m["subject"]))
                elif kind == "function":
                    fu.append((s, m["code"]))
            structures = frozenset(st) if st else _NONE
            classes = frozenset(cl) if cl else _NONE
            groups = frozenset(gr) if gr else _NONE
            subjects = frozenset(su) if su else _NONE
            functions = frozenset(fu) if fu else _NONE
        profiles = record.get("profiles")
        return cls(
            jointure=record["jointure"], category=record["category"],
            profiles=frozenset(profiles) if profiles else _NONE, mef=record.get("mef"),
            structures=structures, classes=classes, groups=groups, subjects=subjects, functions=functions,
            last_name=record.get("last_name"), first_name=record.get("first_name"), email=record.get("email"),
        )

    def account(self, attributes: Iterable[str], uai: str) -> dict[str, Any]:
        """What a resource entitled to `attributes` receives about this account in `uai`."""
        return {a: _ACCOUNT_VALUES[a](self, uai) for a in attributes}

    def rule_view(self) -> tuple:
        """Everything rules and resource targets look at: accounts with equal views get equal grants."""
        return (self.profiles, self.mef, self.structures, self.classes, self.groups, self.subjects, self.functions)


_ACCOUNT_VALUES: dict[str, Any] = {  # computed only for the attributes a resource may receive
    "id": lambda m, uai: m.jointure,
    "profiles": lambda m, uai: sorted(m.profiles),
    "structure": lambda m, uai: uai,
    "classes": lambda m, uai: sorted([c for s, c in m.classes if s == uai]),
    "groups": lambda m, uai: sorted(g for s, g in m.groups if s == uai),
    "mef": lambda m, uai: m.mef,
    "last_name": lambda m, uai: m.last_name,
    "first_name": lambda m, uai: m.first_name,
    "email": lambda m, uai: m.email,
}


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


@dataclass(frozen=True)
class Held:
    """A grant the account holds."""

    cause: str  # rule:<id> | manual:<jointure>
    revoke_after: datetime | None = None  # set while a departure's grace period runs


@dataclass
class Plan:
    grant: dict[Key, str] = field(default_factory=dict)  # new grants and their causes
    revoke: dict[Key, str] = field(default_factory=dict)  # now, with the cause of the revocation
    defer: dict[Key, datetime] = field(default_factory=dict)  # revoke at this time (departure grace)
    cancel: list[Key] = field(default_factory=list)  # a pending departure that is no longer one
    recause: dict[Key, str] = field(default_factory=dict)  # held, now called for by another rule

    def __bool__(self) -> bool:
        return bool(self.grant or self.revoke or self.defer or self.cancel or self.recause)


def plan(held: Mapping[Key, Held], want: Mapping[Key, str], m: Member | None, now: datetime,
         grace_days: int) -> Plan:
    """Compare the grants held with those wanted. `m` None: the account left the directory."""
    p = Plan()
    structures = m.structures if m is not None else frozenset()
    for key, cause in want.items():
        h = held.get(key)
        if h is None:
            p.grant[key] = cause
        elif h.revoke_after is not None:
            p.cancel.append(key)
        elif h.cause.startswith("rule:") and h.cause != cause:
            p.recause[key] = cause
    for key, h in held.items():
        if key in want:
            continue
        _resource, uai = key
        if uai not in structures:  # a departure: from the structure or from the directory
            if h.revoke_after is None:
                if grace_days == 0:
                    p.revoke[key] = "departure"
                else:
                    p.defer[key] = now + timedelta(days=grace_days)
            elif h.revoke_after <= now:
                p.revoke[key] = "departure"
        elif h.cause.startswith("rule:"):  # still there, no rule selects it any more
            p.revoke[key] = f"no-longer-selected ({h.cause})"
        elif h.revoke_after is not None:  # a manual grant: back in the structure
            p.cancel.append(key)
    return p
