"""Which suppressed entries of a table an attacker can still work out exactly from the published ones.

Every published total is an equation: its members add up to it. Unknowns are the suppressed entries;
whatever is published is a known number. A suppressed entry is *derivable* when the equations fix
its value whatever the other unknowns are: when the unit vector on it lies in the span of the
equations' rows restricted to the unknowns. This reads the reduced row echelon form of that system,
in exact integer arithmetic (no rounding can hide or invent a derivation): an entry is derivable
exactly when a row of that form holds it alone.

A system solved whole is first split into groups of unknowns joined by equations (an equation's
unknowns all fall in one group), so that each stays small on tables of thousands of cells.

`safe` unknowns are ones the caller has shown free (a change of the unknowns that keeps every
equation true moves each of them). The others are first read with the safe ones taken as known: an
unknown that more knowledge still does not fix is not fixed, so when that smaller system fixes
nothing, neither does the whole. When it fixes some, the safe unknowns reached from them through
short equations (a table's lines within one structure, say, not those across every structure) are
taken back as unknown and that system solved; if it still fixes some, longer equations are followed,
then every group holding an unknown that is not safe is solved whole.

The elimination runs on the unknowns' numbers, not on their keys (a tuple's hash is computed at
every look-up).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence, Set
from dataclasses import dataclass
from math import gcd
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)


@dataclass(frozen=True)
class Equation(Generic[K]):
    """`members` add up to `total`."""

    members: Sequence[K]
    total: K


def derivable(equations: Iterable[Equation[K]], unknown: Set[K], safe: Set[K] = frozenset()) -> frozenset[K]:
    """The entries of `unknown` that `equations` fix, everything else being known.

    `safe`: unknowns already known not to be fixed (module docstring): the others are read first with
    the safe ones taken as known, and only groups holding one of them are solved if need be.
    """
    keys = sorted(unknown, key=repr)  # numbered in one order, so that each run eliminates alike
    number = {key: i for i, key in enumerate(keys)}
    rows: list[dict[int, int]] = []
    rows_of: dict[int, list[dict[int, int]]] = {}  # unknown -> the rows holding it
    for equation in equations:
        row: dict[int, int] = {}
        for member in equation.members:
            if (i := number.get(member)) is not None:
                row[i] = row.get(i, 0) + 1
        if (i := number.get(equation.total)) is not None:
            row[i] = row.get(i, 0) - 1
        row = {i: coefficient for i, coefficient in row.items() if coefficient}
        if row:
            rows.append(row)
            for i in row:
                rows_of.setdefault(i, []).append(row)
    others = {i for i, key in enumerate(keys) if key not in safe and i in rows_of}
    if not others or _none_fixed(rows_of, others):
        return frozenset()
    found: set[int] = set()
    for group in _groups(rows, len(keys)):
        if any(i in others for row in group for i in row):
            found |= _fixed(group)
    return frozenset(keys[i] for i in found)


SHORT = (8, 64, 512)  # lengths of the equations followed to take safe unknowns back, tried in turn


def _none_fixed(rows_of: dict[int, list[dict[int, int]]], unknown: set[int]) -> bool:
    """Whether it is shown that no unknown is fixed, reading only `unknown` as such (the others are safe:
    module docstring). The equations followed from the unknowns fixed so are those of up to 8 unknowns,
    then 64, then 512, as long as they reach fewer than half of all unknowns."""
    fixed = _fixed(_restricted(rows_of, unknown))
    if not fixed:
        return True
    if len(unknown) == len(rows_of):  # none taken as known: that was the whole system
        return False
    for longest in SHORT:
        reached, frontier = set(fixed), list(fixed)
        while frontier and 2 * len(reached) < len(rows_of):
            for row in rows_of[frontier.pop()]:
                if len(row) <= longest:
                    for i in row:
                        if i not in reached:
                            reached.add(i)
                            frontier.append(i)
        if 2 * len(reached) >= len(rows_of):
            return False
        if not reached <= unknown and not _fixed(_restricted(rows_of, unknown | reached)):
            return True
    return False


def _restricted(rows_of: dict[int, list[dict[int, int]]], unknown: set[int]) -> list[dict[int, int]]:
    """The rows holding one of `unknown`, each restricted to them (the others taken as known)."""
    seen: set[int] = set()
    out = []
    for i in sorted(unknown):
        for row in rows_of[i]:
            if id(row) not in seen:
                seen.add(id(row))
                out.append({j: c for j, c in row.items() if j in unknown})
    return out


def _groups(rows: list[dict[int, int]], n: int) -> list[list[dict[int, int]]]:
    """The rows split by the unknowns they share (union-find over the unknowns 0..n-1)."""
    parent = list(range(n))

    def root(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for row in rows:
        first, *others = (root(i) for i in row)
        for other in others:
            parent[root(other)] = root(first)
    groups: dict[int, list[dict[int, int]]] = {}
    for row in rows:
        groups.setdefault(root(next(iter(row))), []).append(row)
    return list(groups.values())


def _fixed(rows: list[dict[int, int]]) -> set[int]:
    """The unknowns a row of the reduced row echelon form of `rows` holds alone.

    Fraction-free: rows stay integer (a row is scaled only when its pivot's coefficient is not 1, then
    divided by the gcd of its coefficients), so nothing is rounded.
    """
    pivots: dict[int, dict[int, int]] = {}  # pivot unknown -> its row, which no other pivot row holds
    holders: dict[int, set[int]] = {}  # unknown -> the pivots whose rows hold it
    for source in sorted(rows, key=len):  # short rows first: long ones then meet short pivot rows, little fill-in
        row = dict(source)
        for key in [key for key in row if key in pivots]:
            if key in row:
                _eliminate(row, pivots[key], key)
        if not row:
            continue
        pivot = min(row, key=lambda key: (len(holders.get(key, ())), key))
        if row[pivot] < 0:
            row = {key: -value for key, value in row.items()}
        for other in sorted(holders.pop(pivot, set())):
            old = pivots[other]
            before = set(old)
            _eliminate(old, row, pivot)
            for key in before - old.keys():
                holders.get(key, set()).discard(other)
            for key in old.keys() - before:
                holders.setdefault(key, set()).add(other)
        pivots[pivot] = row
        for key in row:
            if key != pivot:
                holders.setdefault(key, set()).add(pivot)
    return {pivot for pivot, row in pivots.items() if len(row) == 1}


def _eliminate(row: dict[int, int], pivot_row: dict[int, int], key: int) -> None:
    """Takes `key` out of `row`, in place, by `pivot_row` (whose coefficient on `key` is > 0)."""
    a, b = pivot_row[key], row[key]
    if a != 1:
        for name in row:
            row[name] *= a
    for name, value in pivot_row.items():
        updated = row.get(name, 0) - b * value
        if updated:
            row[name] = updated
        else:
            row.pop(name, None)
    if a != 1 and row:
        divisor = gcd(*row.values())
        if divisor > 1:
            for name in row:
                row[name] //= divisor
