"""Differential privacy: a table of counts released with noise (OpenDP), and the budget each period spends.

The mechanism is OpenDP's Laplace mechanism on integers (`make_laplace` over a vector of i64 under
the L1 distance), which samples the *discrete* Laplace (geometric) distribution: noisy counts stay
integers, so nothing needs rounding; they are then clamped to 0 (a negative count means nothing),
which, like every computation on the released figures, costs no privacy.

Sensitivity. One person may appear in at most `bound` cells of the table (e.g. a pupil counted in
one structure, one profile and one level, but in up to 3 resources: bound = 3) and add at most
`per_cell` to each (1 for distinct users; for connections, the caller must first cap each person's
connections per cell at `per_cell`: counts already summed cannot be bounded here). Adding or
removing one person therefore changes the vector of counts by at most bound x per_cell in L1
distance: that is the sensitivity, and the noise scale is sensitivity / epsilon. OpenDP checks the
calibration itself (the measurement's privacy map must give at most epsilon for that distance).

Margins. For additive counts (connections, visits: CountTable without `margins`) margins are not
noised apart: they are the sums of the released (clamped) cells, computed after the noise, so they
cost no budget and always add up; each is a little biased upwards by the clamping. Counts of distinct
people (CountTable with `margins`) are not sums: every entry, cells and margins, is noised together in
one vector. A person is counted in at most `bound` entries of each level of the table (the cells,
each kind of margin, the grand total: 2^dimensions levels), so the sensitivity is
bound x per_cell x 2^dimensions, and the noise grows with it.

Budget. Releases compose: the epsilons of every release about one period add up (sequential
composition), and a `PrivacyBudget` holds a period's total, refusing any release that would exceed
it. Its ledger is saved and loaded as a plain dict (the caller stores it).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

import opendp.prelude as dp

from services.usage.rules.disclosure import CountTable, Key

dp.enable_features("contrib")  # OpenDP's own mechanisms (make_laplace) are behind this documented switch


class PrivacyError(ValueError):
    """A release that cannot be made: an epsilon, a bound or a budget out of range."""


class BudgetExceeded(PrivacyError):
    """A release whose epsilon would take a period past its privacy budget."""


def _positive(name: str, value: float) -> Decimal:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise PrivacyError(f"{name} {value!r} must be a finite number > 0")
    return Decimal(repr(float(value)))


@dataclass(frozen=True)
class Spend:
    """One release charged to a budget."""

    label: str
    epsilon: Decimal


class PrivacyBudget:
    """A period's privacy budget: its total epsilon and the releases that spent from it.

    Epsilons are kept as decimals, so that ten spends of 0.1 use a budget of 1.0 exactly.
    """

    def __init__(self, period: str, total: float, spends: Sequence[Spend] = ()) -> None:
        self.period = period
        self.total = _positive(f"the privacy budget of {period}", total)
        self.spends: list[Spend] = list(spends)
        if self.spent > self.total:
            raise BudgetExceeded(f"the privacy budget of {period}: {self.spent} spent, "
                                 f"more than its total {self.total}")

    @property
    def spent(self) -> Decimal:
        return sum((spend.epsilon for spend in self.spends), Decimal(0))

    @property
    def remaining(self) -> Decimal:
        return self.total - self.spent

    def spend(self, epsilon: float, label: str) -> None:
        """Charges a release of `epsilon`, or refuses it (BudgetExceeded) if the budget left is smaller."""
        amount = _positive(f"the epsilon of release {label!r}", epsilon)
        if amount > self.remaining:
            raise BudgetExceeded(f"release {label!r} needs epsilon {amount} but the privacy budget of {self.period} "
                                 f"has {self.remaining} left (of {self.total}); nothing was released")
        self.spends.append(Spend(label, amount))

    def to_dict(self) -> dict[str, Any]:
        return {"period": self.period, "total": float(self.total),
                "spends": [{"label": spend.label, "epsilon": float(spend.epsilon)} for spend in self.spends]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> PrivacyBudget:
        try:
            spends = [Spend(str(item["label"]), _positive(f"the epsilon of release {item['label']!r}", item["epsilon"]))
                      for item in data["spends"]]
            return cls(str(data["period"]), data["total"], spends)
        except (KeyError, TypeError) as error:
            raise PrivacyError(f"a saved privacy budget needs period, total and spends of label and epsilon: "
                               f"{error!r} in {dict(data)!r}") from error


@dataclass(frozen=True)
class NoisyCounts:
    """A released table: noisy cells, the margins summed from them, and how the noise was calibrated."""

    dimensions: tuple[str, ...]
    counts: Mapping[Key, int]  # cells and margins (keys with ALL), noisy, >= 0; margins add up if additive
    epsilon: float
    sensitivity: int
    scale: float


def sensitivity(bound: int, per_cell: int = 1, levels: int = 1) -> int:
    """L1 sensitivity of `levels` vectors of counts, in each of which one person is in at most `bound`
    entries and adds at most `per_cell` to each."""
    for name, value in (("bound", bound), ("per_cell", per_cell), ("levels", levels)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise PrivacyError(f"{name} {value!r} must be an integer >= 1")
    return bound * per_cell * levels


@lru_cache(maxsize=64)
def laplace_counts(epsilon: float, bound: int, per_cell: int = 1, levels: int = 1) -> tuple[dp.Measurement, float]:
    """OpenDP's discrete Laplace measurement on a vector of counts, calibrated to `epsilon`, and its scale.

    The scale starts at sensitivity / epsilon and is raised by the least step while OpenDP's privacy map
    says the loss for that sensitivity is above epsilon (float rounding can put it a hair above). Made once
    per (epsilon, bound, per_cell, levels): a measurement holds no state between releases.
    """
    target = float(_positive("epsilon", epsilon))
    distance = sensitivity(bound, per_cell, levels)
    space = dp.vector_domain(dp.atom_domain(T="i64")), dp.l1_distance(T="i64")
    scale = distance / target
    for _ in range(64):
        measurement = dp.m.make_laplace(*space, scale=scale)
        if measurement.map(distance) <= target:
            return measurement, scale
        scale = math.nextafter(scale, math.inf)
    raise PrivacyError(f"no Laplace scale near {distance / target} gives epsilon {target} for sensitivity {distance}")


def release_counts(table: CountTable, epsilon: float, bound: int, per_cell: int = 1, *,
                   budget: PrivacyBudget | None = None, label: str = "") -> NoisyCounts:
    """`table` with noise giving epsilon-differential privacy to each person (module docstring).

    With a `budget`, the release is charged first, and refused (BudgetExceeded) before any noise is drawn
    if it would exceed it.
    """
    levels = 1 if table.additive else 2 ** len(table.dimensions)
    measurement, scale = laplace_counts(epsilon, bound, per_cell, levels)
    if budget is not None:
        budget.spend(epsilon, label or f"counts over {', '.join(table.dimensions)}")
    exact = table.cells if table.additive else table.entries()
    keys = sorted(exact)
    noisy = {key: max(0, int(value))
             for key, value in zip(keys, measurement([exact[key] for key in keys]) if keys else [], strict=True)}
    if table.additive:
        counts = CountTable(table.dimensions, noisy).entries()
    else:
        counts = noisy
    return NoisyCounts(table.dimensions, counts, float(epsilon), sensitivity(bound, per_cell, levels), scale)
