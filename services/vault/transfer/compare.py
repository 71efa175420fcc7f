"""Comparing what the source, the vault and the target hold, item by item. Plain Python, no I/O.

Each side is an inventory: for every (person, vertical, item id) it holds, an :class:`Entry`
(path, kind, sha256, size, metadata; or the reason it could not be read). :func:`compare`
lists every difference as a :class:`Finding`:

* **lost** (a switch would lose it): at the source but not in the vault; in the vault (or at
  the source) but not at the target; held with other bytes, size, path, kind or metadata
  than the side before it; unreadable at the target; in the vault index without its content
  in the vault store;
* **unverified** (nothing can be said): a side could not list that person's vertical, or the
  source could not be read for an item the vault holds;
* **extra** (reported, not a loss): in the vault but no longer at the source (deleted there
  since the export), at the target but in neither the vault nor the source.

Metadata is compared field by field: source and vault must be equal; the target must give
back every field the vault holds (it may add its own).
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import partial
from typing import Any

Key = tuple[str, str, str]  # person, vertical, item id
SOURCE, VAULT, TARGET = "source", "vault", "target"
LOST, UNVERIFIED, EXTRA = "lost", "unverified", "extra"


@dataclass(frozen=True)
class Entry:
    path: str | None
    kind: str
    sha256: str | None  # None: unknown (not read)
    size: int | None
    metadata: Mapping[str, Any] | None = None  # None: not known (not compared)
    problem: str | None = None  # why this side cannot give the item back (unreadable, content missing)


@dataclass(frozen=True)
class SideError:
    """A person's vertical (``person`` None: every person of it) that a side could not list."""

    side: str
    person: str | None
    vertical: str
    error: str

    def to_dict(self) -> dict[str, Any]:
        return {"side": self.side, "person": self.person, "vertical": self.vertical, "error": self.error}


@dataclass(frozen=True)
class Finding:
    person: str
    vertical: str
    item: str
    path: str | None
    verdict: str  # lost | unverified | extra
    where: str  # the side at fault: source | vault | target
    problem: str  # missing | altered | unreadable | content-missing | not-listed | only-here
    detail: str

    def to_dict(self) -> dict[str, Any]:
        return {"person": self.person, "vertical": self.vertical, "item": self.item, "path": self.path,
                "verdict": self.verdict, "where": self.where, "problem": self.problem, "detail": self.detail}


@dataclass
class SideCounts:
    items: int = 0
    bytes: int = 0

    def add(self, e: Entry) -> None:
        self.items += 1
        self.bytes += e.size or 0


@dataclass
class OwnerSummary:
    sides: dict[str, SideCounts] = field(default_factory=dict)
    lost: int = 0
    unverified: int = 0
    extra: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {**{side: {"items": c.items, "bytes": c.bytes} for side, c in self.sides.items()},
                "lost": self.lost, "unverified": self.unverified, "extra": self.extra}


@dataclass
class Comparison:
    sides: tuple[str, ...]
    findings: list[Finding] = field(default_factory=list)
    owners: dict[tuple[str, str], OwnerSummary] = field(default_factory=dict)
    errors: list[SideError] = field(default_factory=list)

    def count(self, verdict: str) -> int:
        return sum(1 for f in self.findings if f.verdict == verdict)

    @property
    def lost(self) -> int:
        return self.count(LOST)

    @property
    def unverified(self) -> int:
        return self.count(UNVERIFIED)

    @property
    def extra(self) -> int:
        return self.count(EXTRA)

    @property
    def ok(self) -> bool:
        """Every item accounted for: nothing lost, nothing left unverified, every side listed."""
        return not self.lost and not self.unverified and not self.errors

    def totals(self) -> dict[str, dict[str, dict[str, int]]]:
        """Per vertical and side: items and bytes."""
        out: dict[str, dict[str, dict[str, int]]] = {}
        for (_, vertical), summary in sorted(self.owners.items()):
            for side, c in summary.sides.items():
                t = out.setdefault(vertical, {}).setdefault(side, {"items": 0, "bytes": 0})
                t["items"] += c.items
                t["bytes"] += c.bytes
        return out


def differences(before: Entry, after: Entry, *, metadata: str, names: tuple[str, str] = ("before", "after")
                ) -> list[str]:
    """How ``after`` differs from ``before`` (empty: the same), sides named by ``names``.
    ``metadata``: ``equal``, or ``kept`` (every field of ``before`` is in ``after``, same value)."""
    b_name, a_name = names
    out = []
    for what, b, a in (("kind", before.kind, after.kind), ("path", before.path, after.path)):
        if b != a:
            out.append(f"{what} {b!r} in the {b_name}, {a!r} in the {a_name}")
    if before.size is not None and after.size is not None and before.size != after.size:
        out.append(f"{before.size} bytes in the {b_name}, {after.size} in the {a_name}")
    if before.sha256 is not None and after.sha256 is not None and before.sha256 != after.sha256:
        out.append(f"sha256 {before.sha256[:16]}… in the {b_name}, {after.sha256[:16]}… in the {a_name}")
    if before.metadata is not None and after.metadata is not None:
        b_meta, a_meta = dict(before.metadata), dict(after.metadata)
        fields = sorted(k for k in b_meta if a_meta.get(k, _MISSING) != b_meta[k])
        if metadata == "equal":
            fields += sorted(k for k in a_meta if k not in b_meta)
        if fields:
            out.append(f"metadata {', '.join(fields)} differ")
    return out


_MISSING = object()


def _find(cmp: Comparison, summary: OwnerSummary, person: str, vertical: str, item: str, path: str | None,
          verdict: str, where: str, problem: str, detail: str) -> None:
    """Record a finding about one item, and count it in its person's summary."""
    cmp.findings.append(Finding(person, vertical, item, path, verdict, where, problem, detail))
    setattr(summary, verdict, getattr(summary, verdict) + 1)


def compare(*, vault: Mapping[Key, Entry], source: Mapping[Key, Entry] | None = None,
            target: Mapping[Key, Entry] | None = None, errors: Iterable[SideError] = (),
            source_verticals: Iterable[str] = (), target_verticals: Iterable[str] = ()) -> Comparison:
    """Compare the sides given (the vault always; the source and the target when given, for the
    verticals their connectors handle)."""
    errors = list(errors)
    sides = tuple(s for s, inv in ((SOURCE, source), (VAULT, vault), (TARGET, target)) if inv is not None)
    cmp = Comparison(sides=sides, errors=errors)
    src_v, tgt_v = set(source_verticals), set(target_verticals)
    unlisted = {(e.side, e.person, e.vertical) for e in errors}

    def not_listed(side: str, person: str, vertical: str) -> str | None:
        for who in (person, None):
            if (side, who, vertical) in unlisted:
                return next(e.error for e in errors if (e.side, e.person, e.vertical) == (side, who, vertical))
        return None

    keys = set(vault)
    for inv in (source, target):
        if inv is not None:
            keys |= set(inv)
    for key in sorted(keys):
        person, vertical, item = key
        summary = cmp.owners.setdefault((person, vertical), OwnerSummary())
        src = source.get(key) if source is not None and vertical in src_v else None
        vlt = vault.get(key)
        tgt = target.get(key) if target is not None and vertical in tgt_v else None
        for side, e in ((SOURCE, src), (VAULT, vlt), (TARGET, tgt)):
            if e is not None:
                summary.sides.setdefault(side, SideCounts()).add(e)
        path = next((e.path for e in (vlt, src, tgt) if e is not None), None)
        find = partial(_find, cmp, summary, person, vertical, item, path)

        if source is not None and vertical in src_v:
            why = not_listed(SOURCE, person, vertical)
            if src is not None and vlt is None:
                find(LOST, VAULT, "missing", "at the source, not in the vault")
            elif src is not None and src.problem:
                find(UNVERIFIED, SOURCE, "unreadable", f"cannot be read at the source to compare: {src.problem}")
            elif src is not None and vlt is not None:
                diff = differences(src, vlt, metadata="equal", names=(SOURCE, VAULT))
                if diff:
                    find(LOST, VAULT, "altered", "; ".join(diff))
            elif vlt is not None and why:
                find(UNVERIFIED, SOURCE, "not-listed", f"cannot list the source: {why}")
            elif vlt is not None:
                find(EXTRA, VAULT, "only-here", "in the vault, no longer at the source (deleted there since?)")
        if vlt is not None and vlt.problem:
            find(LOST, VAULT, "content-missing", vlt.problem)
        if target is not None and vertical in tgt_v:
            expected = vlt if vlt is not None else src
            why = not_listed(TARGET, person, vertical)
            if expected is not None and tgt is None:
                if why:
                    find(UNVERIFIED, TARGET, "not-listed", f"cannot list the target: {why}")
                else:
                    find(LOST, TARGET, "missing", f"in the {'vault' if vlt is not None else 'source'}, "
                                                  "not at the target")
            elif expected is not None and tgt is not None:
                if tgt.problem:
                    find(LOST, TARGET, "unreadable", f"the target cannot give it back: {tgt.problem}")
                else:
                    diff = differences(expected, tgt, metadata="kept",
                                       names=(VAULT if vlt is not None else SOURCE, TARGET))
                    if diff:
                        find(LOST, TARGET, "altered", "; ".join(diff))
            elif tgt is not None:
                find(EXTRA, TARGET, "only-here", "at the target, not in the vault"
                     + (" nor at the source" if source is not None else ""))
    return cmp
