"""What provisioning knows of an account, free of I/O: `Member`.

`Member` is the provisioning view of a directory person: profiles, MEF, a
first-degree pupil's level and cycle (their codes and labels, upper case) and,
per structure UAI, classes, groups, subjects taught and functions. The
directory names structures by jointure; the view names them by UAI, which is
what rules, the GAR and people use.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

Key = tuple[str, str]  # (resource id, structure UAI): a licence pool, and a grant of one account


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
    levels: frozenset[str] = frozenset()  # first degree: the level's code and label (ENTEleveNiveau), upper case
    cycles: frozenset[str] = frozenset()  # first degree: the cycle's code and label (ENTEleveCycle)

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
        first_degree = record.get("first_degree")
        levels = cycles = _NONE
        if first_degree:
            levels, cycles = _names(first_degree.get("level")), _names(first_degree.get("cycle"))
        return cls(
            jointure=record["jointure"], category=record["category"],
            profiles=frozenset(profiles) if profiles else _NONE, mef=record.get("mef"),
            structures=structures, classes=classes, groups=groups, subjects=subjects, functions=functions,
            last_name=record.get("last_name"), first_name=record.get("first_name"), email=record.get("email"),
            levels=levels, cycles=cycles,
        )

    def rule_view(self) -> tuple:
        """Everything rules and resource targets look at: accounts with equal views get equal grants."""
        return (self.profiles, self.mef, self.structures, self.classes, self.groups, self.subjects, self.functions,
                self.levels, self.cycles)


def _names(value: Mapping[str, Any] | None) -> frozenset[str]:
    """A first-degree level's or cycle's `{code, label}` as the names a rule may use for it, upper case."""
    if not value:
        return _NONE
    return frozenset(str(v).upper() for v in (value.get("code"), value.get("label")) if v)
