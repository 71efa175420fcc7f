"""Differential privacy: OpenDP's discrete Laplace on a table of counts, and a period's privacy budget."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from services.usage.rules.disclosure import CountTable
from services.usage.rules.privacy import (
    BudgetExceeded,
    PrivacyBudget,
    PrivacyError,
    laplace_counts,
    release_counts,
    sensitivity,
)


def test_the_sensitivity_is_the_cells_a_person_reaches_times_what_they_add_to_each():
    assert sensitivity(1) == 1
    assert sensitivity(3) == 3
    assert sensitivity(3, per_cell=5) == 15
    assert sensitivity(2, levels=8) == 16
    for bound, per_cell in ((0, 1), (2, 0), (True, 1), (1.5, 1)):
        with pytest.raises(PrivacyError, match="must be an integer >= 1"):
            sensitivity(bound, per_cell)  # type: ignore[arg-type]


@pytest.mark.parametrize("epsilon, bound, per_cell", [(0.7, 3, 1), (1.3, 5, 1), (0.1, 1, 1), (0.25, 2, 4)])
def test_opendp_holds_the_noise_to_the_epsilon_asked(epsilon, bound, per_cell):
    measurement, scale = laplace_counts(epsilon, bound, per_cell)
    assert measurement.map(bound * per_cell) <= epsilon
    assert scale == pytest.approx(bound * per_cell / epsilon)


@pytest.mark.parametrize("epsilon", [0, -1, math.inf, math.nan, "1", True])
def test_an_epsilon_that_is_not_a_positive_number_is_refused(epsilon):
    with pytest.raises(PrivacyError, match="epsilon"):
        release_counts(CountTable(("structure",), {("A",): 3}), epsilon, bound=1)


def test_a_release_has_every_cell_and_margin_integers_at_least_0_margins_summing_the_cells():
    table = CountTable(("structure", "profile"), {("A", "ELV"): 0, ("A", "ENS"): 1, ("B", "ELV"): 300})
    release = release_counts(table, epsilon=0.2, bound=2)
    assert set(release.counts) == set(table.entries())
    assert all(isinstance(value, int) and value >= 0 for value in release.counts.values())
    cells = {key: value for key, value in release.counts.items() if "*" not in key}
    assert release.counts[("*", "*")] == sum(cells.values())
    assert release.counts[("A", "*")] == cells[("A", "ELV")] + cells[("A", "ENS")]
    assert (release.sensitivity, release.epsilon) == (2, 0.2)


def test_counts_of_distinct_people_have_their_margins_noised_with_the_sensitivity_of_every_level():
    cells = {("A", "ELV"): 40, ("A", "ENS"): 12, ("B", "ELV"): 300}
    margins = {("A", "*"): 45, ("B", "*"): 300, ("*", "ELV"): 335, ("*", "ENS"): 12, ("*", "*"): 340}
    table = CountTable(("structure", "profile"), cells, margins)
    release = release_counts(table, epsilon=1.0, bound=1)
    assert set(release.counts) == set(cells) | set(margins)
    assert release.sensitivity == 4  # a person is in one cell, one of each margin and the grand total
    assert release.scale == pytest.approx(4.0)
    # the margins are the noisy distinct counts, not the sum of the noisy cells (which would count twice
    # whoever is in two cells); the grand total stays near 340, not near the 352 the cells add up to
    totals = [release_counts(table, epsilon=1.0, bound=1).counts[("*", "*")] for _ in range(200)]
    assert abs(sum(totals) / len(totals) - 340) < 3


def test_the_noise_has_the_spread_the_scale_says():
    # 20,000 cells in one release: the sample variance of the discrete Laplace of scale b is 2t/(1-t)^2,
    # t = exp(-1/b); a relative error of 10 % is over 6 standard errors of the estimate
    cells = {(f"S{index:05d}",): 1000 for index in range(20_000)}
    for bound in (1, 4):
        release = release_counts(CountTable(("structure",), cells), epsilon=1.0, bound=bound)
        noise = [release.counts[key] - 1000 for key in cells]
        t = math.exp(-1 / release.scale)
        expected = 2 * t / (1 - t) ** 2
        mean = sum(noise) / len(noise)
        variance = sum((value - mean) ** 2 for value in noise) / (len(noise) - 1)
        assert abs(mean) < 6 * math.sqrt(expected / len(noise))
        assert variance == pytest.approx(expected, rel=0.10)


def test_noise_on_zeros_is_clamped_not_negative():
    release = release_counts(CountTable(("structure",), {(f"S{i}",): 0 for i in range(2000)}), epsilon=0.5, bound=1)
    values = [value for key, value in release.counts.items() if key != ("*",)]
    assert min(values) == 0 and max(values) > 0  # about half the draws were negative, and became 0


def test_a_budget_spends_and_refuses_what_would_exceed_it_naming_what_is_left():
    budget = PrivacyBudget("2026-11", total=1.0)
    for day in range(10):
        budget.spend(0.1, f"connections 2026-11-{day + 1:02d}")
    assert budget.spent == Decimal("1.0") and budget.remaining == 0  # ten tenths make one exactly
    with pytest.raises(BudgetExceeded, match=r"needs epsilon 0.1 .*2026-11 has 0.0 left \(of 1.0\)"):
        budget.spend(0.1, "one more")
    assert len(budget.spends) == 10


def test_a_refused_release_draws_no_noise_and_spends_nothing():
    budget = PrivacyBudget("2026-11", total=0.5)
    table = CountTable(("structure",), {("A",): 30})
    release_counts(table, epsilon=0.3, bound=1, budget=budget, label="month")
    with pytest.raises(BudgetExceeded, match="'week 48' needs epsilon 0.3 but .* has 0.2 left"):
        release_counts(table, epsilon=0.3, bound=1, budget=budget, label="week 48")
    assert [(spend.label, spend.epsilon) for spend in budget.spends] == [("month", Decimal("0.3"))]


def test_a_budget_is_saved_as_a_dict_and_loaded_back():
    budget = PrivacyBudget("2026-11", total=2.0)
    budget.spend(0.5, "month")
    budget.spend(0.25, "week 48")
    saved = budget.to_dict()
    assert saved == {"period": "2026-11", "total": 2.0,
                     "spends": [{"label": "month", "epsilon": 0.5}, {"label": "week 48", "epsilon": 0.25}]}
    loaded = PrivacyBudget.from_dict(saved)
    assert loaded.remaining == Decimal("1.25") and loaded.to_dict() == saved
    with pytest.raises(BudgetExceeded, match="needs epsilon 1.5"):
        loaded.spend(1.5, "too much")


@pytest.mark.parametrize("saved, error", [
    ({"period": "2026-11", "total": 1.0}, "spends"),
    ({"period": "2026-11", "total": 1.0, "spends": [{"label": "x", "epsilon": -1}]}, "epsilon of release 'x'"),
    ({"period": "2026-11", "total": 1.0, "spends": [{"label": "x", "epsilon": 0.7}, {"label": "y", "epsilon": 0.7}]},
     "more than its total"),
    ({"period": "2026-11", "total": 0, "spends": []}, "privacy budget of 2026-11"),
])
def test_a_saved_budget_that_does_not_hold_together_is_refused(saved, error):
    with pytest.raises(PrivacyError, match=error):
        PrivacyBudget.from_dict(saved)
