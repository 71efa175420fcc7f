"""Disclosure control by cell suppression: which counts of a table, and of its margins, may be published.

A table counts something (connections, distinct active users, ...) per combination of dimension
values, e.g. {("0750001A", "National_ELV"): 37, ...} over ("structure", "profile"). Its margins are
published too: every total where one or more dimensions are replaced by `ALL` ("*"), up to the
grand total (ALL, ALL). Together, cells and margins are the table's *entries*.

Primary suppression: an entry whose count is under the threshold (default 10, never below 5) is
suppressed, margins included. A count of 0 is published as 0 by default: a zero describes nobody's
activity, it cannot be combined with anything to single out a person (a group where nobody did
anything gives no one away), and suppressing zeros would suppress other cells beside them for no
gain. Where a group may be one known person (a school's only librarian), a zero says that this
person did nothing: pass `suppress_zeros=True` for such tables.

Secondary suppression: the margins must not give a suppressed entry back. A *line* is a group of
entries that share every dimension value but one, with its total (the same key with `ALL` on that
dimension): its members add up to its total. If exactly one entry of a line (members and total
together) is suppressed, it equals the total minus the published members (or the sum of the
members): another one is suppressed, the smallest published member that is not 0 (else the total,
else a 0), preferring one whose other line also has a single suppressed entry (one suppression then
closes two lines), until no line has exactly one suppressed entry. Lines of every level are read: in a
table of 3 dimensions, a line of margins (structure, ALL, level) over every structure has the total
(ALL, ALL, level). Then a second check goes further than one line at a time: it solves the whole
system of published totals (rules/derivation.py) and suppresses more while any suppressed entry
can still be worked out exactly by combining several lines.

What it does not promise: an attacker may still bound a suppressed entry (it lies between 0 and
what its line leaves over); only its exact value is protected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from itertools import product

from services.usage.rules.derivation import Equation, derivable
from services.usage.rules.rows import ALL

Key = tuple[str, ...]

DEFAULT_THRESHOLD = 10
MIN_THRESHOLD = 5


class TableError(ValueError):
    """A table of counts that cannot be read: wrong keys, negative or non-integer counts."""


class ThresholdTooLow(ValueError):
    """A suppression threshold under MIN_THRESHOLD."""


@dataclass(frozen=True)
class Line:
    """Entries sharing every dimension value but the one on `axis`; `members` add up to `total`."""

    axis: int
    total: Key
    members: tuple[Key, ...]

    @property
    def entries(self) -> tuple[Key, ...]:
        return (*self.members, self.total)


@dataclass(frozen=True)
class CountTable:
    """Counts per combination of dimension values; a combination absent from `cells` counts 0."""

    dimensions: tuple[str, ...]
    cells: Mapping[Key, int]

    def __post_init__(self) -> None:
        if not self.dimensions:
            raise TableError("a table needs at least one dimension")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise TableError(f"dimensions {self.dimensions!r} name one twice")
        for key, count in self.cells.items():
            if not isinstance(key, tuple) or len(key) != len(self.dimensions):
                raise TableError(f"cell {key!r}: its key must be a tuple of {len(self.dimensions)} values "
                                 f"({', '.join(self.dimensions)})")
            for name, value in zip(self.dimensions, key, strict=True):
                if not isinstance(value, str) or value == ALL:
                    raise TableError(f"cell {key!r}: {name} must be a value, not {value!r} ({ALL!r} means every value)")
            if isinstance(count, bool) or not isinstance(count, int) or count < 0:
                raise TableError(f"cell {key!r}: count {count!r} must be an integer >= 0")

    def is_margin(self, key: Key) -> bool:
        return ALL in key

    def entries(self) -> dict[Key, int]:
        """Every cell and every margin (each key with `ALL` on any set of dimensions), with its count."""
        totals: dict[Key, int] = {}
        for key, count in self.cells.items():
            for mask in product((False, True), repeat=len(key)):
                entry = tuple(ALL if masked else value for value, masked in zip(key, mask, strict=True))
                totals[entry] = totals.get(entry, 0) + count
        if not self.cells:
            totals[(ALL,) * len(self.dimensions)] = 0
        return totals

    def lines(self) -> list[Line]:
        """Every line of entries, sorted: for each axis, entries alike but there, and their total."""
        groups: dict[tuple[int, Key], list[Key]] = {}
        for key in self.entries():
            for axis, value in enumerate(key):
                if value != ALL:
                    total = key[:axis] + (ALL,) + key[axis + 1:]
                    groups.setdefault((axis, total), []).append(key)
        return [Line(axis, total, tuple(sorted(members))) for (axis, total), members in sorted(groups.items())]


@dataclass(frozen=True)
class Suppression:
    """What may be published of a table: `counts` of every entry, and which ones are suppressed.

    `primary`: under the threshold; `secondary`: suppressed so that no primary one can be worked out.
    """

    dimensions: tuple[str, ...]
    counts: Mapping[Key, int]
    threshold: int
    primary: frozenset[Key]
    secondary: frozenset[Key]

    @property
    def suppressed(self) -> frozenset[Key]:
        return self.primary | self.secondary

    @property
    def published(self) -> dict[Key, int]:
        """The entries (cells and margins) that may be published, with their counts."""
        hidden = self.suppressed
        return {key: count for key, count in self.counts.items() if key not in hidden}

    def value(self, key: Key) -> int | None:
        """The count to publish for `key`; None when it is suppressed."""
        if key not in self.counts:
            raise KeyError(f"{key!r} is no entry of this table over {self.dimensions!r}")
        return None if key in self.suppressed else self.counts[key]


def check_threshold(threshold: int) -> int:
    if isinstance(threshold, bool) or not isinstance(threshold, int):
        raise ThresholdTooLow(f"suppression threshold {threshold!r} must be an integer >= {MIN_THRESHOLD}")
    if threshold < MIN_THRESHOLD:
        raise ThresholdTooLow(f"suppression threshold {threshold} is below the minimum of {MIN_THRESHOLD}: "
                              f"counts that small could single out a person")
    return threshold


def suppress(table: CountTable, threshold: int = DEFAULT_THRESHOLD, *, suppress_zeros: bool = False) -> Suppression:
    """Primary then secondary suppression of `table`'s cells and margins (module docstring)."""
    check_threshold(threshold)
    counts = table.entries()
    lines = table.lines()
    primary = frozenset(key for key, count in counts.items()
                        if 0 < count < threshold or (suppress_zeros and count == 0))
    hidden = set(primary)
    while True:
        _complete_lines(lines, counts, hidden)
        equations = [Equation(line.members, line.total) for line in lines]
        exposed = derivable(equations, hidden)
        if not exposed:
            break
        _cover(exposed, lines, counts, hidden)
    return Suppression(table.dimensions, counts, threshold, primary, frozenset(hidden) - primary)


def _holding(lines: Iterable[Line]) -> dict[Key, list[Line]]:
    """The lines each entry belongs to."""
    holding: dict[Key, list[Line]] = {}
    for line in lines:
        for key in line.entries:
            holding.setdefault(key, []).append(line)
    return holding


def _choice(line: Line, counts: Mapping[Key, int], hidden: set[Key], holding: Mapping[Key, list[Line]]) -> Key | None:
    """The entry of `line` to suppress beside others (module docstring): a member before the total, not a 0
    if possible, one that also closes another line left with a single suppressed entry, the smallest."""
    candidates = [key for key in line.entries if key not in hidden]
    if not candidates:
        return None

    def closes_another(key: Key) -> bool:
        return any(other is not line and sum(entry in hidden for entry in other.entries) == 1
                   for other in holding.get(key, []))

    return min(candidates, key=lambda key: (counts[key] == 0, key == line.total, not closes_another(key),
                                            counts[key], key))


def _complete_lines(lines: list[Line], counts: Mapping[Key, int], hidden: set[Key]) -> None:
    """Until stable: every line with exactly one suppressed entry gets a second one."""
    holding = _holding(lines)
    changed = True
    while changed:
        changed = False
        for line in lines:
            if sum(key in hidden for key in line.entries) == 1:
                choice = _choice(line, counts, hidden, holding)
                if choice is not None:
                    hidden.add(choice)
                    changed = True


def _cover(exposed: Iterable[Key], lines: list[Line], counts: Mapping[Key, int], hidden: set[Key]) -> None:
    """Suppresses one more entry beside each exposed one: the best choice of the lines holding it."""
    holding = _holding(lines)
    for key in sorted(exposed):
        choices = [choice for line in holding.get(key, [])
                   if (choice := _choice(line, counts, hidden, holding)) is not None]
        if not choices:
            # every line through it is suppressed whole: widen to any line touching a suppressed entry
            choices = [choice for line in lines if any(entry in hidden for entry in line.entries)
                       if (choice := _choice(line, counts, hidden, holding)) is not None]
        if not choices:
            raise AssertionError(f"entry {key!r} can be worked out but nothing is left to suppress")
        hidden.add(min(choices, key=lambda choice: (counts[choice] == 0, ALL in choice, counts[choice], choice)))
