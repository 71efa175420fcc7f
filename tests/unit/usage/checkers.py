"""Attackers' tools, written apart from the rules they test: what published cells and margins give away.

`isolated` does what a reader with a spreadsheet does: for every group of entries sharing all
dimension values but one, the published total minus the published members (or the sum of the members
when the total is hidden). `solvable` goes as far as linear algebra goes: every published total is an
equation, and a hidden entry is given away when the equations fix it (numpy's rank, not the rules'
exact elimination, so that the two can disagree).
"""

from __future__ import annotations

from collections.abc import Mapping, Set

import numpy as np

ALL = "*"
Key = tuple[str, ...]


def groups(entries: Set[Key]) -> list[tuple[Key, list[Key]]]:
    """(total, members) for every group of entries alike but on one dimension."""
    found: dict[Key, list[Key]] = {}
    for key in entries:
        for axis, value in enumerate(key):
            if value != ALL:
                found.setdefault(key[:axis] + (ALL,) + key[axis + 1:] + (str(axis),), []).append(key)
    return [(total[:-1], members) for total, members in found.items()]


def isolated(published: Mapping[Key, int], hidden: Set[Key]) -> list[tuple[Key, int]]:
    """Hidden entries a single subtraction gives back, with the value it gives."""
    leaks = []
    for total, members in groups(set(published) | set(hidden)):
        unknown = [key for key in [*members, total] if key in hidden]
        if len(unknown) != 1:
            continue
        known = sum(published[key] for key in members if key not in hidden)
        leaks.append((unknown[0], published[total] - known if total not in hidden else known))
    return leaks


def solvable(published: Mapping[Key, int], hidden: Set[Key]) -> set[Key]:
    """Hidden entries that the published totals, solved together, fix."""
    unknowns = sorted(hidden)
    if not unknowns:
        return set()
    column = {key: index for index, key in enumerate(unknowns)}
    rows = []
    for total, members in groups(set(published) | set(hidden)):
        row = np.zeros(len(unknowns))
        for key in members:
            if key in hidden:
                row[column[key]] += 1
        if total in hidden:
            row[column[total]] -= 1
        if row.any():
            rows.append(row)
    if not rows:
        return set()
    system = np.array(rows)
    rank = np.linalg.matrix_rank(system)
    fixed = set()
    for key, index in column.items():
        unit = np.zeros((1, len(unknowns)))
        unit[0, index] = 1
        if np.linalg.matrix_rank(np.vstack([system, unit])) == rank:
            fixed.add(key)
    return fixed
