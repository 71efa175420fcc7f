"""Licence counts per pool (resource, UAI), read once per unit of work and kept up to date as grants change.

The quota rule itself is `grants.quotas.refusal`; this class gives it the
counts it looks at, from the database the first time and from memory after.
Counts of limited pools are read under `write_locks.count_seats_in_turn`, so
that another process's unit of work cannot give the same seats meanwhile.
"""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import Connection

from ..grants.catalogue import Resource
from ..grants.managers import directors
from ..grants.member import Key
from ..grants.quotas import refusal
from ..grants.rules import RuleSet
from . import queries
from .write_locks import count_seats_in_turn

_NO_STRUCTURES: frozenset[str] = frozenset()


class LicencePools:
    """Licence counts per (resource, UAI), read once per unit of work and kept up to date."""

    def __init__(self, conn: Connection, resources: dict[str, Resource]):
        self.conn, self.resources = conn, resources
        self._seats: dict[Key, int] = {}
        self._structures: dict[str, set[str]] = {}
        self._complete = False
        self._directors: dict[str, set[str]] | None = None
        self._in_turn = False

    def _limited(self, res: str) -> bool:
        """Whether `res` has a quota; if so, its counts are read in turn with other processes' (once locked,
        until the transaction ends)."""
        r = self.resources.get(res)  # a grant may outlive its resource's catalogue entry
        if r is None or r.licence == "unlimited":
            return False
        if not self._in_turn:
            count_seats_in_turn(self.conn)
            self._in_turn = True
        return True

    def preload(self) -> None:
        """Read every pool's count in one pass (for a unit of work that will touch most of them)."""
        for res in self.resources:  # the lock first, if any pool is limited
            if self._limited(res):
                break
        self._seats.clear()
        self._structures = {}
        for res, uai, n in queries.held_counts(self.conn):
            self._seats[(res, uai)] = n
            self._structures.setdefault(res, set()).add(uai)
        for res in self.resources:
            self._structures.setdefault(res, set())
        self._complete = True

    def prefetch(self, keys: Iterable[Key]) -> None:
        """Read the counts of these pools not read yet, in one statement (a unit of work is about to take or
        free seats in them: one statement per pool made most of a small batch's round trips)."""
        if self._complete:
            return
        wanted = sorted({k for k in keys if k not in self._seats})
        if not wanted:
            return
        for res in {res for res, _uai in wanted}:  # the lock first, if any pool is limited
            if self._limited(res):
                break
        self._seats.update(queries.held_in_pools(self.conn, wanted))

    def held(self, key: Key) -> int:
        if key not in self._seats and self._complete:
            return 0
        if key not in self._seats:
            self._limited(key[0])
            self._seats[key] = queries.held_in(self.conn, key)
        return self._seats[key]

    def structures(self, res: str) -> set[str]:
        if res not in self._structures:
            self._limited(res)
            self._structures[res] = queries.structures_holding(self.conn, res)
        return self._structures[res]

    def refusal(self, key: Key) -> str | None:
        """Why one more licence of `key` cannot be given, or None (`grants.quotas.refusal`)."""
        res, uai = key
        r = self.resources[res]
        if r.licence == "unlimited":
            return None
        return refusal(r, uai, self.held(key), self.structures(res) if r.licence == "per-structure" else _NO_STRUCTURES)

    def directors(self, rules: RuleSet) -> dict[str, set[str]]:
        """UAI -> accounts holding a manager function there (directory functions such as DIR)."""
        if self._directors is None:
            self._directors = directors(queries.staff_records(self.conn), rules.manager_functions,
                                        queries.uai_map(self.conn))
        return self._directors

    def take(self, key: Key) -> str | None:
        """Take one licence of `key`; or, taking nothing, say why it cannot be given.

        One call per grant of a full evaluation (millions): unlimited licences skip the checks.
        """
        r = self.resources[key[0]]
        licence = r.licence
        if licence != "unlimited":
            why_not = refusal(r, key[1], self.held(key),
                              self.structures(key[0]) if licence == "per-structure" else _NO_STRUCTURES)
            if why_not:
                return why_not
        seats = self._seats.get(key)
        self._seats[key] = (self.held(key) if seats is None else seats) + 1
        if licence == "per-structure":  # only those count structures
            self.structures(key[0]).add(key[1])
        return None

    def _per_structure(self, res: str) -> bool:
        r = self.resources.get(res)  # a grant may outlive its resource's catalogue entry
        return r is not None and r.licence == "per-structure"

    def freed(self, key: Key) -> None:
        self._seats[key] = self.held(key) - 1
        if self._seats[key] == 0 and self._per_structure(key[0]):
            self.structures(key[0]).discard(key[1])
