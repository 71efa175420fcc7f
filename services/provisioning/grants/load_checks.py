"""All or nothing: what makes a new catalogue or rule set refused as a whole, with every problem listed.

A catalogue is refused if an entry is malformed (`catalogue.parse_catalogue`),
if it drops a resource a rule names, or if a quota falls below the licences
already held (`quotas.quota_problems`): `check_catalogue`.

A rule set is refused if it is malformed (`rules.parse_rules`), or names a
resource the catalogue lacks, a structure the directory lacks
(`check_references`, before anything is stored), or a class or group no
account of its structures is in (`check_codes`, after the evaluation has read
every account: `CodesSeen` notes the codes on the way). Refused, nothing of
it is applied: the caller's transaction rolls back.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from .catalogue import CatalogueError, Resource
from .member import Member
from .quotas import quota_problems
from .rules import RuleError, RuleSet


def check_catalogue(resources: Mapping[str, Resource], rules: RuleSet, held: Iterable[tuple[str, str, int]]) -> None:
    """Raise `CatalogueError` if storing `resources` would break a rule or take licences away.

    `held`: (resource, UAI, licences held there) for every pool holding some.
    """
    problems = [f"rule {rule.id} needs resource {rule.resource!r}, which the new catalogue drops"
                for rule in rules.rules if rule.resource not in resources]
    problems.extend(quota_problems(resources, held))
    if problems:
        raise CatalogueError(problems)


class CodesSeen:
    """The class and group codes the rules name, as found in the directory's accounts, per UAI.

    Filled while a full evaluation reads every account (`handlers.reconcile.prepare`),
    so checking the rules' classes and groups costs no read of its own.
    Workers each fill one and the writer merges them; only codes some rule
    names are kept, so what crosses between processes stays small.
    """

    def __init__(self, ruleset: RuleSet) -> None:
        self.wanted = {"classes": frozenset().union(*(r.classes for r in ruleset.rules)),
                       "groups": frozenset().union(*(r.groups for r in ruleset.rules))}
        self.found: dict[str, dict[str, set[str]]] = {"classes": {}, "groups": {}}

    def note(self, members: Iterable[Member]) -> None:
        classes, groups = self.wanted["classes"], self.wanted["groups"]
        if not classes and not groups:
            return
        found_c, found_g = self.found["classes"], self.found["groups"]
        for m in members:
            for uai, code in m.classes:
                if code in classes:
                    found_c.setdefault(uai, set()).add(code)
            for uai, code in m.groups:
                if code in groups:
                    found_g.setdefault(uai, set()).add(code)

    def merge(self, other: CodesSeen) -> None:
        for key, per_uai in other.found.items():
            mine = self.found[key]
            for uai, codes in per_uai.items():
                mine.setdefault(uai, set()).update(codes)


def check_references(ruleset: RuleSet, resources: Iterable[str], structures: Iterable[str]) -> None:
    """Raise `RuleError` for rules naming a resource the catalogue lacks or a structure the directory lacks."""
    resources, structures = set(resources), set(structures)
    problems = []
    for r in ruleset.rules:
        if r.resource not in resources:
            problems.append(f"rule {r.id}: resource {r.resource!r} is not in the catalogue")
        for uai in sorted(r.structures - structures):
            problems.append(f"rule {r.id}: structure {uai} is not in the directory")
    for uai in sorted(set(ruleset.managers) - structures):
        problems.append(f"managers: structure {uai} is not in the directory")
    if problems:
        raise RuleError(problems)


def check_codes(ruleset: RuleSet, structures: Iterable[str], seen: CodesSeen) -> None:
    """Raise `RuleError` for rules naming a class or group no account of their structures is in."""
    structures = set(structures)
    problems = []
    for r in ruleset.rules:
        scope = r.structures or structures
        for key in ("classes", "groups"):
            wanted = getattr(r, key)
            if wanted:
                known = seen.found[key]
                found = set().union(*(known.get(u, set()) for u in scope)) if scope else set()
                for code in sorted(wanted - found):
                    where = ", ".join(sorted(r.structures)) or "any structure"
                    noun = "class" if key == "classes" else "group"
                    problems.append(f"rule {r.id}: {noun} {code!r} is not in {where}")
    if problems:
        raise RuleError(problems)
