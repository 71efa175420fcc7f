"""Which suppressed entries of a table an attacker can still work out exactly from the published ones.

Every published total is an equation: its members add up to it. Unknowns are the suppressed entries;
whatever is published is a known number. A suppressed entry is *derivable* when the equations fix
its value whatever the other unknowns are: when the unit vector on it lies in the span of the
equations' rows restricted to the unknowns. This reads the reduced row echelon form of that system,
in exact integer arithmetic (no rounding can hide or invent a derivation): an entry is derivable
exactly when a row of that form holds it alone.

Unknowns are first split into groups joined by equations (an equation's unknowns all fall in one
group), so that each system solved stays small on tables of thousands of cells.
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


def derivable(equations: Iterable[Equation[K]], unknown: Set[K]) -> frozenset[K]:
    """The entries of `unknown` that `equations` fix, everything else being known."""
    rows: list[dict[K, int]] = []
    for equation in equations:
        row: dict[K, int] = {}
        for member in equation.members:
            if member in unknown:
                row[member] = row.get(member, 0) + 1
        if equation.total in unknown:
            row[equation.total] = row.get(equation.total, 0) - 1
        row = {key: coefficient for key, coefficient in row.items() if coefficient}
        if row:
            rows.append(row)
    found: set[K] = set()
    for group in _groups(rows):
        found |= _fixed(group)
    return frozenset(found)


def _groups(rows: list[dict[K, int]]) -> list[list[dict[K, int]]]:
    """The rows split by the unknowns they share (union-find over the unknowns)."""
    parent: dict[K, K] = {}

    def root(key: K) -> K:
        while parent.setdefault(key, key) != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for row in rows:
        first, *others = row
        for other in others:
            parent[root(other)] = root(first)
    groups: dict[K, list[dict[K, int]]] = {}
    for row in rows:
        groups.setdefault(root(next(iter(row))), []).append(row)
    return list(groups.values())


def _fixed(rows: list[dict[K, int]]) -> set[K]:
    """The unknowns a row of the reduced row echelon form of `rows` holds alone.

    Fraction-free: rows stay integer (a row is scaled only when its pivot's coefficient is not 1, then
    divided by the gcd of its coefficients), so nothing is rounded.
    """
    pivots: dict[K, dict[K, int]] = {}  # pivot unknown -> its row, which no other pivot row holds
    holders: dict[K, set[K]] = {}  # unknown -> the pivots whose rows hold it
    for source in sorted(rows, key=len):  # short rows first: long ones then meet short pivot rows, little fill-in
        row = dict(source)
        for key in [key for key in row if key in pivots]:
            if key in row:
                _eliminate(row, pivots[key], key)
        if not row:
            continue
        pivot = min(row, key=lambda key: (len(holders.get(key, ())), repr(key)))
        if row[pivot] < 0:
            row = {key: -value for key, value in row.items()}
        for other in sorted(holders.pop(pivot, set()), key=repr):
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


def _eliminate(row: dict[K, int], pivot_row: dict[K, int], key: K) -> None:
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
