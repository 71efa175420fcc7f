"""Which suppressed entries of a table an attacker can still work out exactly from the published ones.

Every published total is an equation: its members add up to it. Unknowns are the suppressed entries;
whatever is published is a known number. A suppressed entry is *derivable* when the equations fix
its value whatever the other unknowns are: when the unit vector on it lies in the span of the
equations' rows restricted to the unknowns. This reads the reduced row echelon form of that system,
in exact fractions (no rounding can hide or invent a derivation): an entry is derivable exactly when
a row of that form holds it alone.

Unknowns are first split into groups joined by equations (an equation's unknowns all fall in one
group), so that each system solved stays small on tables of thousands of cells.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Sequence, Set
from dataclasses import dataclass
from fractions import Fraction
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
    """The unknowns a row of the reduced row echelon form of `rows` holds alone."""
    pivots: dict[K, dict[K, Fraction]] = {}  # pivot unknown -> its row, coefficient 1 on it
    for source in rows:
        row = {key: Fraction(value) for key, value in source.items()}
        for key in [key for key in row if key in pivots]:
            _subtract(row, pivots[key], row.get(key, Fraction(0)))
        if not row:
            continue
        pivot = min(row, key=repr)
        scale = row[pivot]
        row = {key: value / scale for key, value in row.items()}
        for other in pivots.values():
            if pivot in other:
                _subtract(other, row, other[pivot])
        pivots[pivot] = row
    return {pivot for pivot, row in pivots.items() if len(row) == 1}


def _subtract(row: dict[K, Fraction], pivot_row: dict[K, Fraction], factor: Fraction) -> None:
    """row -= factor * pivot_row, dropping the zeros."""
    if not factor:
        return
    for key, value in pivot_row.items():
        updated = row.get(key, Fraction(0)) - factor * value
        if updated:
            row[key] = updated
        else:
            row.pop(key, None)
