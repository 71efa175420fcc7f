"""Cell suppression: primary under the threshold, secondary until no margin gives a suppressed entry back."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.usage.rules.derivation import Equation, derivable
from services.usage.rules.disclosure import CountTable, TableError, ThresholdTooLow, boxed, suppress
from tests.unit.usage.checkers import isolated, solvable


def assert_nothing_recoverable(result):
    published, hidden = result.published, result.suppressed
    assert isolated(published, hidden) == []
    assert solvable(published, hidden) == set()


@pytest.mark.parametrize("threshold", [4, 0, -10, True, 7.5])
def test_a_threshold_under_5_or_not_an_integer_is_refused(threshold):
    with pytest.raises(ThresholdTooLow, match="threshold"):
        suppress(CountTable(("structure",), {("0750001A",): 40}), threshold=threshold)


def test_a_threshold_of_5_is_the_lowest_accepted_and_changes_what_is_suppressed():
    table = CountTable(("structure",), {("A",): 6, ("B",): 6, ("C",): 40})
    assert suppress(table, threshold=5).suppressed == frozenset()
    assert suppress(table).primary == {("A",), ("B",)}


def test_one_dimension_a_small_cell_takes_the_smallest_other_with_it():
    result = suppress(CountTable(("profile",), {("ELV",): 3, ("ENS",): 20, ("PAR",): 30}))
    assert result.primary == {("ELV",)}
    assert result.secondary == {("ENS",)}
    assert result.value(("*",)) == 53 and result.value(("PAR",)) == 30 and result.value(("ELV",)) is None
    assert_nothing_recoverable(result)


def test_one_dimension_a_single_small_cell_hides_its_total_too():
    result = suppress(CountTable(("profile",), {("ELV",): 3}))
    assert result.primary == {("ELV",), ("*",)}
    assert result.published == {}


def test_a_margin_under_the_threshold_is_suppressed():
    result = suppress(CountTable(("structure", "profile"), {("A", "ELV"): 4, ("A", "ENS"): 4, ("B", "ELV"): 50}))
    assert {("A", "*"), ("*", "ENS")} <= result.primary
    assert_nothing_recoverable(result)


def test_zero_is_published_by_default_and_suppressed_on_demand():
    table = CountTable(("structure", "profile"), {("A", "ELV"): 0, ("A", "ENS"): 30, ("B", "ELV"): 25,
                                                  ("B", "ENS"): 40})
    assert suppress(table).suppressed == frozenset()
    hidden = suppress(table, suppress_zeros=True)
    assert ("A", "ELV") in hidden.primary and len(hidden.suppressed) >= 4
    assert_nothing_recoverable(hidden)


def test_counts_of_distinct_people_are_suppressed_on_their_own_margins():
    # 6 + 7 distinct users on two resources, but 8 people in all: the structure's total is 8, not 13
    cells = {("A", "r1"): 6, ("A", "r2"): 7, ("B", "r1"): 30, ("B", "r2"): 25}
    margins = {("A", "*"): 8, ("B", "*"): 50, ("*", "r1"): 36, ("*", "r2"): 32, ("*", "*"): 58}
    result = suppress(CountTable(("structure", "resource"), cells, margins))
    assert result.counts[("A", "*")] == 8 and ("A", "*") in result.primary
    assert result.value(("*", "*")) == 58
    assert isolated(result.published, result.suppressed) == []


@pytest.mark.parametrize("margins, error", [
    ({("*",): 3, ("B",): 1}, "a margin has"),
    ({}, "margins: 1 missing, e.g. \\('\\*',\\)"),
    ({("*",): 3, ("*", "*"): 1}, "tuple of 1 values"),
])
def test_margins_given_apart_must_be_every_margin_and_only_margins(margins, error):
    with pytest.raises(TableError, match=error):
        CountTable(("structure",), {("A",): 3}, margins)


def test_two_dimensions_the_classic_rectangle():
    table = CountTable(("structure", "profile"), {
        ("A", "x"): 3, ("A", "y"): 40, ("A", "z"): 25,
        ("B", "x"): 30, ("B", "y"): 12, ("B", "z"): 50,
    })
    result = suppress(table)
    assert result.primary == {("A", "x")}
    assert result.secondary == {("A", "z"), ("B", "x"), ("B", "z")}  # one suppression closes a row and a column
    assert_nothing_recoverable(result)


def test_three_dimensions_margins_of_every_level_are_protected():
    cells = {(s, p, lv): 20 + 7 * i for i, (s, p, lv) in enumerate(
        (s, p, lv) for s in ("A", "B") for p in ("ELV", "ENS") for lv in ("6E", "5E"))}
    cells[("A", "ELV", "6E")] = 2
    result = suppress(CountTable(("structure", "profile", "level"), cells))
    assert result.primary == {("A", "ELV", "6E")}
    assert len(result.secondary) >= 7  # a 2x2x2 cube: a cell alone needs its whole cube hidden with it
    assert_nothing_recoverable(result)


def test_the_derivation_check_finds_what_one_line_at_a_time_misses():
    # two rectangles of hidden cells joined by one hidden cell x: every line has 0 or >= 2 hidden entries,
    # yet x is the difference of two sums of published totals
    equations = [Equation(["a", "b"], "R1"), Equation(["c", "d", "x"], "R2"), Equation(["e", "f"], "R3"),
                 Equation(["g", "h"], "R4"), Equation(["a", "c"], "C1"), Equation(["b", "d"], "C2"),
                 Equation(["x", "e", "g"], "C3"), Equation(["f", "h"], "C4")]
    assert derivable(equations, set("abcdefghx")) == {"x"}
    assert derivable(equations, set("abcdefgh")) == frozenset()
    assert derivable(equations, set("abcdefghx") | {"C3"}) == {"x", "C3"}  # x = C3 - (R3 + R4 - C4)
    assert derivable(equations, set("abcdefghx") | {"C3", "R2"}) == frozenset()


@pytest.mark.parametrize("cells, error", [
    ({("A",): -1}, "integer >= 0"),
    ({("A",): 2.5}, "integer >= 0"),
    ({("A", "B"): 3}, "tuple of 1 values"),
    ({("*",): 3}, "cannot be '\\*'"),
    ({("",): 3}, "non-empty string"),
])
def test_an_unreadable_table_is_refused_naming_the_cell(cells, error):
    with pytest.raises(TableError, match=error):
        CountTable(("structure",), cells)


values = st.sampled_from([0, 1, 2, 3, 4, 5, 8, 9, 10, 11, 12, 15, 20, 30, 50, 120])


@st.composite
def tables(draw):
    dimensions = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 4)) for _ in range(dimensions)]
    keys = [()]
    for axis, size in enumerate(sizes):
        keys = [key + (f"{'spl'[axis]}{index}",) for key in keys for index in range(size)]
    present = draw(st.lists(st.booleans(), min_size=len(keys), max_size=len(keys)))
    cells = {key: draw(values) for key, keep in zip(keys, present, strict=True) if keep or key == keys[0]}
    return CountTable(("structure", "profile", "level")[:dimensions], cells)


@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(tables(), st.booleans())
def test_no_suppressed_entry_of_any_table_can_be_worked_out(table, suppress_zeros):
    result = suppress(table, suppress_zeros=suppress_zeros)
    assert_nothing_recoverable(result)
    for key, count in result.counts.items():
        if 0 < count < 10 or (suppress_zeros and count == 0):
            assert key in result.suppressed
        if key not in result.suppressed:
            assert result.value(key) == count


@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(tables(), st.data())
def test_an_entry_on_a_box_of_hidden_entries_can_never_be_worked_out(table, data):
    entries = table.entries()
    hidden = set(data.draw(st.lists(st.sampled_from(sorted(entries)), unique=True)))
    free = boxed(hidden)
    assert free <= hidden
    published = {key: count for key, count in entries.items() if key not in hidden}
    assert not free & solvable(published, hidden)


@settings(max_examples=150, deadline=None, database=None, derandomize=True)
@given(tables(), st.data())
def test_the_solver_told_what_boxes_show_safe_finds_what_it_finds_alone(table, data):
    entries = table.entries()
    hidden = set(data.draw(st.lists(st.sampled_from(sorted(entries)), unique=True)))
    equations = [Equation(line.members, line.total) for line in table.lines()]
    assert derivable(equations, hidden, safe=boxed(hidden)) == derivable(equations, hidden)


def test_a_table_hidden_whole_is_boxed_whole_so_the_solver_is_spared():
    cells = {(s, p, lv): 1 for s in ("s0", "s1", "s2") for p in ("p0", "p1") for lv in ("l0", "l1")}
    entries = CountTable(("structure", "profile", "level"), cells).entries()
    assert boxed(set(entries)) == set(entries)  # 3 x 2 x 2 cells and their margins: 4 x 3 x 3 entries
    corner = {("s0", "p0", "l0"), ("s0", "p0", "*"), ("s0", "*", "l0"), ("*", "p0", "l0")}
    assert boxed(corner) == set()  # no box: left to the solver


@st.composite
def systems(draw):
    names = [f"x{index}" for index in range(draw(st.integers(2, 14)))]
    equations = [Equation(draw(st.lists(st.sampled_from(names), min_size=1, max_size=5, unique=True)),
                          draw(st.sampled_from(names))) for _ in range(draw(st.integers(1, 12)))]
    unknown = set(draw(st.lists(st.sampled_from(names), min_size=1, unique=True)))
    return equations, unknown


@settings(max_examples=120, deadline=None, database=None, derandomize=True)
@given(systems())
def test_the_exact_elimination_agrees_with_numpys_rank(system):
    equations, unknown = system
    assert derivable(equations, unknown) == _numpy_fixed(equations, unknown)


def _numpy_fixed(equations, unknown):
    names = sorted(unknown)
    rows = []
    for equation in equations:
        row = np.zeros(len(names))
        for member in equation.members:
            if member in unknown:
                row[names.index(member)] += 1
        if equation.total in unknown:
            row[names.index(equation.total)] -= 1
        if row.any():
            rows.append(row)
    if not rows:
        return frozenset()
    matrix = np.array(rows)
    rank = np.linalg.matrix_rank(matrix)
    fixed = set()
    for index, name in enumerate(names):
        unit = np.zeros((1, len(names)))
        unit[0, index] = 1
        if np.linalg.matrix_rank(np.vstack([matrix, unit])) == rank:
            fixed.add(name)
    return frozenset(fixed)


def test_weeks_and_their_month_are_protected_together_when_time_is_a_dimension():
    # connections add up over a month's weeks: published apart, a hidden week would be the month minus the
    # others; as one table over (week, structure), the month is the margin (ALL, structure)
    weeks = ("2026-11-02", "2026-11-09", "2026-11-16", "2026-11-23", "2026-11-30")
    cells = {(week, uai): 25 + 3 * index for index, week in enumerate(weeks) for uai in ("0750001A", "0750002B")}
    cells[("2026-11-16", "0750001A")] = 4
    result = suppress(CountTable(("week", "structure"), cells))
    month = ("*", "0750001A")
    assert result.value(month) == sum(count for (_, uai), count in cells.items() if uai == "0750001A")
    assert ("2026-11-16", "0750001A") in result.primary and len(result.secondary) == 3
    assert_nothing_recoverable(result)
