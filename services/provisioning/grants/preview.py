"""What a rule change would do, before it is saved (pure): grants the rules call for, added and removed, per structure.

The old and the new rule set are both evaluated on every account (`causes.wanted`, memoised per account
view: a class's pupils share one answer); a grant the new rules call for and the old did not is added, one
the old called for and the new does not is removed. Quotas are not applied (a licence pool may refuse some
additions when the change is saved, and the refusal is recorded then), and manual grants never change.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from .catalogue import Resource
from .causes import wanted
from .member import Member
from .rules import RuleSet

SAMPLE = 20  # accounts named per structure and direction, when names are asked for


@dataclass
class StructureChange:
    added: int = 0
    removed: int = 0
    added_sample: list[str] = field(default_factory=list)  # jointures, the first SAMPLE
    removed_sample: list[str] = field(default_factory=list)


@dataclass
class RuleChange:
    accounts: int = 0
    structures: dict[str, StructureChange] = field(default_factory=dict)

    @property
    def added(self) -> int:
        return sum(s.added for s in self.structures.values())

    @property
    def removed(self) -> int:
        return sum(s.removed for s in self.structures.values())


def affected_structures(old: RuleSet, new: RuleSet) -> frozenset[str] | None:
    """The UAIs where replacing `old` by `new` can change a grant: those the rules added, removed or changed
    name (None: one of them names none, so every structure). Accounts elsewhere keep what they have."""
    before = {r.id: r for r in old.rules}
    after = {r.id: r for r in new.rules}
    changed = [r for rid in before.keys() | after.keys() for r in (before.get(rid), after.get(rid))
               if r is not None and before.get(rid) != after.get(rid)]
    if any(not r.structures for r in changed):
        return None
    return frozenset(u for r in changed for u in r.structures)


def rule_change(members: Iterable[Member], old: RuleSet, new: RuleSet, catalogue: Mapping[str, Resource],
                into: RuleChange | None = None) -> RuleChange:
    """Add to `into` (a new one by default) what replacing `old` by `new` does to `members`' grants."""
    out = into or RuleChange()
    memo_old: dict = {}
    memo_new: dict = {}
    for m in members:
        out.accounts += 1
        before, after = wanted(m, old, catalogue, memo_old), wanted(m, new, catalogue, memo_new)
        if before.keys() == after.keys():
            continue
        for (_, uai) in after.keys() - before.keys():
            s = out.structures.setdefault(uai, StructureChange())
            s.added += 1
            if len(s.added_sample) < SAMPLE and m.jointure not in s.added_sample:
                s.added_sample.append(m.jointure)
        for (_, uai) in before.keys() - after.keys():
            s = out.structures.setdefault(uai, StructureChange())
            s.removed += 1
            if len(s.removed_sample) < SAMPLE and m.jointure not in s.removed_sample:
                s.removed_sample.append(m.jointure)
    return out
