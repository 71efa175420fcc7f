"""Quotas: how many licences of a resource may be held, and who gets a seat that frees up.

- A **per-user** licence has seats per structure: the resource's `quota`, or
  its `quotas` for one UAI. One more grant where every seat is held is refused.
- A **per-structure** licence is held by at most `quota` structures: a grant
  in a structure that does not hold it yet is refused once that many do.
- An **unlimited** licence is never refused.
- A refused grant is recorded with its reason; seats freed later go to the
  refused accounts, oldest refusal first (`next_in_line`).
- A catalogue whose quota is below the licences already held is refused
  (`quota_problems`): it would silently take licences away.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime

from .catalogue import Resource


def refusal(resource: Resource, uai: str, held: int, structures: Collection[str]) -> str | None:
    """Why one more licence of `resource` in `uai` cannot be given, or None.

    `held`: the licences of it held in `uai`; `structures`: the structures
    holding it (only a per-structure licence looks at them).
    """
    if resource.licence == "unlimited":
        return None
    seats = resource.seats(uai)
    if seats is not None and held >= seats:
        return f"quota exhausted: {seats} licence(s) of {resource.id} in {uai} are all held"
    if resource.licence == "per-structure" and resource.quota is not None and uai not in structures \
            and len(structures) >= resource.quota:
        return f"quota exhausted: {resource.id} is licensed to {resource.quota} structure(s), all taken"
    return None


def quota_in(resource: Resource, uai: str) -> int | None:
    """The quota that limits grants in `uai`: seats there (per-user) or structures in all (per-structure)."""
    return resource.seats(uai) if resource.licence == "per-user" else resource.quota


def next_in_line(refused: Iterable[tuple[str, datetime]], skip: Collection[str] = ()) -> list[str]:
    """The accounts to offer freed seats to, in order: oldest refusal first (then by jointure), each once.

    `refused`: (jointure, time of the refusal) of the refusals on record in
    the pools where seats were freed; `skip`: accounts already reconciled.
    """
    out: list[str] = []
    seen = set(skip)
    for jointure, _at in sorted(refused, key=lambda r: (r[1], r[0])):
        if jointure not in seen:
            seen.add(jointure)
            out.append(jointure)
    return out


def quota_problems(resources: Mapping[str, Resource], held: Iterable[tuple[str, str, int]]) -> list[str]:
    """What in a new catalogue would take licences away: quotas below what is held.

    `held`: (resource, UAI, licences held there) for every pool holding some.
    """
    problems = []
    per_structure: dict[str, int] = {}
    for res, uai, n in held:
        r = resources.get(res)
        if r is None:
            continue
        seats = r.seats(uai)
        if seats is not None and n > seats:
            problems.append(f"resource {res}: quota {seats} in {uai} is below the {n} licences held there; "
                            "revoke some first or raise the quota")
        per_structure[res] = per_structure.get(res, 0) + 1
    for res, n in per_structure.items():
        r = resources[res]
        if r.licence == "per-structure" and r.quota is not None and n > r.quota:
            problems.append(f"resource {res}: quota of {r.quota} structures is below the {n} structures holding it")
    return problems
