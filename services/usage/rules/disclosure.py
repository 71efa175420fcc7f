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
can still be worked out exactly by combining several lines. Entries lying on a box of suppressed
entries (boxed()) are shown safe first, so that on a table suppressed nearly whole (a week's visits
per structure and resource) the solver only reads the few others.

What it does not promise: an attacker may still bound a suppressed entry (it lies between 0 and
what its line leaves over); only its exact value is protected. It protects one release of a table:
two releases of changing figures, differenced, show what changed (services/usage/DISCLOSURE.md);
that is what rules/privacy.py is for. Tables linked by sums across them (a month's days) are only
protected together if they are passed as one table (time as a dimension, the month its total).
"""

from __future__ import annotations

from bisect import bisect_left
from collections import defaultdict
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass
from functools import cached_property
from itertools import chain, islice, repeat

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
    """Counts per combination of dimension values; a combination absent from `cells` counts 0.

    By default a margin is the sum of its cells (connections, visits, licences granted: *additive*
    counts). A count of distinct people is not: a pupil active on two resources counts once in their
    structure's total. For those, give `margins`, the value of every margin (keys with ALL on one or
    more dimensions, the grand total included); suppression then reads their own values, and still treats
    each line as a sum, which is prudent: a reader can at least bound a hidden entry from it.
    """

    dimensions: tuple[str, ...]
    cells: Mapping[Key, int]
    margins: Mapping[Key, int] | None = None

    def __post_init__(self) -> None:
        if not self.dimensions:
            raise TableError("a table needs at least one dimension")
        if len(set(self.dimensions)) != len(self.dimensions):
            raise TableError(f"dimensions {self.dimensions!r} name one twice")
        if not self._well_formed(self.cells, margins=False):  # then the first fault is found and named
            for key, count in self.cells.items():
                self._check(key, count, "cell")
                if ALL in key:
                    raise TableError(f"cell {key!r}: a cell's values cannot be {ALL!r} (every value): that is a margin")
        if self.margins is not None:
            if not self._well_formed(self.margins, margins=True):
                for key, count in self.margins.items():
                    self._check(key, count, "margin")
                    if ALL not in key:
                        raise TableError(f"margin {key!r}: a margin has {ALL!r} on at least one dimension")
            lattice = self._summed.keys() - self.cells.keys()
            unknown = sorted(set(self.margins) - lattice)
            if unknown:
                raise TableError(f"margin {unknown[0]!r} totals no cell of the table")
            missing = sorted(lattice - set(self.margins))
            if missing:
                raise TableError(f"margins: {len(missing)} missing, e.g. {missing[0]!r}: give every margin of a table "
                                 f"of distinct counts, or none for sums")

    def _well_formed(self, entries: Mapping[Key, int], *, margins: bool) -> bool:
        """Whether every key and count of `entries` is as `_check` wants it, with `ALL` in every key of margins
        and in none of cells: read in bulk (each distinct value once), the usual case on large tables."""
        keys, counts = entries.keys(), entries.values()
        if not keys:
            return True
        if set(map(type, keys)) != {tuple} or set(map(len, keys)) != {len(self.dimensions)}:
            return False
        values = set(chain.from_iterable(keys))
        if "" in values or set(map(type, values)) != {str}:
            return False
        if set(map(type, counts)) != {int} or min(counts) < 0:
            return False
        with_all = map(tuple.__contains__, keys, repeat(ALL))
        return all(with_all) if margins else not any(with_all)

    def _check(self, key: Key, count: int, what: str) -> None:
        if (type(key) is tuple and len(key) == len(self.dimensions) and type(count) is int and count >= 0
                and all(type(value) is str and value for value in key)):
            return  # the usual case, read fast; otherwise, the first fault found is named
        if not isinstance(key, tuple) or len(key) != len(self.dimensions):
            raise TableError(f"{what} {key!r}: its key must be a tuple of {len(self.dimensions)} values "
                             f"({', '.join(self.dimensions)})")
        for name, value in zip(self.dimensions, key, strict=True):
            if not isinstance(value, str) or not value:
                raise TableError(f"{what} {key!r}: {name} must be a non-empty string, not {value!r}")
        if isinstance(count, bool) or not isinstance(count, int) or count < 0:
            raise TableError(f"{what} {key!r}: count {count!r} must be an integer >= 0")

    @property
    def additive(self) -> bool:
        """Whether each margin is the sum of its cells (no `margins` given)."""
        return self.margins is None

    def is_margin(self, key: Key) -> bool:
        return ALL in key

    @cached_property
    def _summed(self) -> dict[Key, int]:
        """`_sums()`, computed once (the table is frozen): read, never changed."""
        return self._sums()

    def _sums(self) -> dict[Key, int]:
        """Every cell and every sum of cells: summed one dimension after the other, so that each margin
        gets each cell once (through the sums over the dimensions before its own)."""
        totals: dict[Key, int] = dict(self.cells)
        for axis in range(len(self.dimensions)):
            for key, count in list(totals.items()):
                if key[axis] != ALL:
                    total = key[:axis] + (ALL,) + key[axis + 1:]
                    totals[total] = totals.get(total, 0) + count
        if not self.cells:
            totals[(ALL,) * len(self.dimensions)] = 0
        return totals

    def entries(self) -> dict[Key, int]:
        """Every cell and every margin (each key with `ALL` on any set of dimensions), with its count."""
        totals = dict(self._summed)
        if self.margins is not None:
            totals.update({key: self.margins[key] for key in totals if key in self.margins})
        return totals

    def lines(self) -> list[Line]:
        """Every line of entries, sorted: for each axis, entries alike but there, and their total."""
        return _lines(self.entries())


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


def suppress(table: CountTable, threshold: int = DEFAULT_THRESHOLD, *, suppress_zeros: bool = False,
             also: Iterable[Key] = ()) -> Suppression:
    """Primary then secondary suppression of `table`'s cells and margins (module docstring).

    `also`: entries suppressed first whatever their count (e.g. 18 connections made by 6 people: the
    count of people decides), then protected like the others.
    """
    check_threshold(threshold)
    counts = table.entries()
    primary = frozenset(key for key, count in counts.items()
                        if 0 < count < threshold or (suppress_zeros and count == 0)) | (set(also) & set(counts))
    hiding = _Hiding(_lines(counts), counts, primary)
    equations = [Equation(line.members, line.total) for line in hiding.lines]
    while True:
        hiding.complete_lines()
        exposed = derivable(equations, hiding.hidden, safe=boxed(hiding.hidden))
        if not exposed:
            break
        hiding.cover(exposed)
    return Suppression(table.dimensions, counts, threshold, primary, frozenset(hiding.hidden) - primary)


def boxed(hidden: Set[Key], tries: int = 64) -> set[Key]:
    """The hidden entries that lie on a *box* of hidden entries: no combination of the lines can fix them.

    A box takes two values on every dimension, two values or one value and `ALL`, and holds the 2^n
    entries they make (a rectangle of 4 in two dimensions, 8 in three). Add 1 to one corner, and
    alternately 1 and -1 along each dimension (the same sign for a value and its `ALL`, whose line
    then still adds up): every line through the box keeps its total, and lines elsewhere are not
    touched. When all its corners are hidden, the published figures cannot tell these counts from
    the true ones, so none of its corners can be worked out (rules/derivation.py need not solve
    them). A sufficient proof only: an entry on no box may still be safe, and is then solved.
    `tries`: boxes tried per entry before leaving it to the solver.
    """
    free: set[Key] = set()
    if not hidden:
        return free
    ordered = sorted(hidden)
    size = len(ordered[0])
    along: list[dict[Key, list[str]]] = [defaultdict(list) for _ in range(size)]  # axis -> line -> hidden values
    for key in ordered:
        for axis in range(size):
            along[axis][key[:axis] + key[axis + 1:]].append(key[axis])
    last = {line: set(values) for line, values in along[-1].items()}
    for key in ordered:
        if key not in free:
            free.update(_box(key, hidden, along, last, tries))
    if 10 * len(free) >= 9 * len(hidden):  # boxes everywhere: the few left, tried harder
        for key in ordered:
            if key not in free:
                free.update(_box(key, hidden, along, last, 16 * tries))
    return free


def _box(key: Key, hidden: Set[Key], along: list[dict[Key, list[str]]], last: dict[Key, set[str]],
         tries: int) -> list[Key]:
    """The corners of a box of hidden entries through `key` (boxed()), or [] when none is found in `tries`.

    A value per dimension is tried in turn, from the one after `key`'s (entries are boxed in sorted
    order: the values before are mostly boxed already, those after make boxes that do not overlap);
    the last dimension's value is read off its lines at once (`last`).
    """
    budget = [tries]
    end = len(key) - 1

    def grow(corners: list[Key], axis: int) -> list[Key]:
        if axis == end:
            common = set.intersection(*(last[corner[:-1]] for corner in corners))
            common.discard(key[-1])
            if not common:
                return []
            value = min((v for v in common if v > key[-1]), default=None) or min(common)
            return corners + [corner[:-1] + (value,) for corner in corners]
        values = along[axis][key[:axis] + key[axis + 1:]]
        at = bisect_left(values, key[axis])
        for value in chain(islice(values, at + 1, None), islice(values, at)):
            if budget[0] <= 0:
                return []
            budget[0] -= 1
            moved = [corner[:axis] + (value,) + corner[axis + 1:] for corner in corners]
            if all(corner in hidden for corner in moved) and (box := grow(corners + moved, axis + 1)):
                return box
        return []

    return grow([key], 0)


def _lines(entries: Iterable[Key]) -> list[Line]:
    groups: dict[tuple[int, Key], list[Key]] = {}
    for key in entries:
        for axis, value in enumerate(key):
            if value != ALL:
                total = key[:axis] + (ALL,) + key[axis + 1:]
                groups.setdefault((axis, total), []).append(key)
    return [Line(axis, total, tuple(sorted(members))) for (axis, total), members in sorted(groups.items())]


class _Hiding:
    """The entries suppressed so far, with how many each line holds."""

    def __init__(self, lines: list[Line], counts: Mapping[Key, int], hidden: Iterable[Key]) -> None:
        self.lines = lines
        self.counts = counts
        self.hidden: set[Key] = set()
        holding: defaultdict[Key, list[int]] = defaultdict(list)
        for index, line in enumerate(lines):
            for key in line.members:
                holding[key].append(index)
            holding[line.total].append(index)
        self.holding: dict[Key, list[int]] = dict(holding)  # entry -> the indices of the lines it is in
        self.in_line = [0] * len(lines)  # suppressed entries of each line
        for key in hidden:
            self.hide(key)

    def hide(self, key: Key) -> None:
        if key not in self.hidden:
            self.hidden.add(key)
            for index in self.holding.get(key, []):
                self.in_line[index] += 1

    def choice(self, index: int) -> Key | None:
        """The entry of line `index` to suppress beside others (module docstring): a member before the total,
        not a 0 if possible, one that also closes another line left with a single suppressed entry, the
        smallest."""
        line = self.lines[index]
        candidates = [key for key in line.entries if key not in self.hidden]
        if not candidates:
            return None

        def closes_another(key: Key) -> bool:
            return any(other != index and self.in_line[other] == 1 for other in self.holding.get(key, []))

        return min(candidates, key=lambda key: (self.counts[key] == 0, key == line.total, not closes_another(key),
                                                self.counts[key], key))

    def complete_lines(self) -> None:
        """Until stable: every line with exactly one suppressed entry gets a second one."""
        changed = True
        while changed:
            changed = False
            for index in range(len(self.lines)):
                if self.in_line[index] == 1 and (choice := self.choice(index)) is not None:
                    self.hide(choice)
                    changed = True

    def cover(self, exposed: Iterable[Key]) -> None:
        """Suppresses one more entry beside each exposed one: the best choice of the lines holding it."""
        for key in sorted(exposed):
            choices = [choice for index in self.holding.get(key, []) if (choice := self.choice(index)) is not None]
            if not choices:
                # every line through it is suppressed whole: widen to any line holding a suppressed entry
                choices = [choice for index, hidden in enumerate(self.in_line)
                           if hidden and (choice := self.choice(index)) is not None]
            if not choices:
                raise AssertionError(f"entry {key!r} can be worked out but nothing is left to suppress")
            self.hide(min(choices, key=lambda choice: (self.counts[choice] == 0, ALL in choice,
                                                       self.counts[choice], choice)))
