"""The resource catalogue: what can be given, under which licence, to whom.

Loaded from a YAML or JSON document (`resources:` list) or an API call with
the same shape. Every entry is checked before anything is stored: a problem
in one entry rejects the whole catalogue, with every problem listed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from .data_minimisation import ACCOUNT_ATTRIBUTES, DEFAULT_ATTRIBUTES
from .documents import entries

LICENCE_MODELS = ("per-user", "per-structure", "unlimited")


class CatalogueError(ValueError):
    """The catalogue is not valid; nothing of it was applied."""

    def __init__(self, problems: list[str]):
        super().__init__("invalid catalogue: " + "; ".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Resource:
    id: str  # ARK-style, as in the GAR: ark:/49591/...
    title: str
    publisher: str
    licence: str  # per-user | per-structure | unlimited
    profiles: frozenset[str] = frozenset()  # targeted profiles; empty: any
    levels: tuple[str, ...] = ()  # targeted MEF code prefixes; empty: any
    quota: int | None = None  # per-user: seats per structure; per-structure: structures in all
    quotas: Mapping[str, int] = field(default_factory=dict)  # per UAI, for per-user seats
    attributes: tuple[str, ...] = DEFAULT_ATTRIBUTES

    def seats(self, uai: str) -> int | None:
        """Seats of a per-user licence in one structure (None: no limit)."""
        if self.licence != "per-user":
            return None
        return self.quotas.get(uai, self.quota)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id, "title": self.title, "publisher": self.publisher, "licence": self.licence,
            "profiles": sorted(self.profiles), "levels": list(self.levels), "quota": self.quota,
            "quotas": dict(sorted(self.quotas.items())), "attributes": list(self.attributes),
        }


def parse_catalogue(document: Mapping[str, Any]) -> list[Resource]:
    problems: list[str] = []
    resources: list[Resource] = []
    for where, entry in entries(document, "resources", "resource", problems):
        bad = _check_entry(entry)
        if bad:
            problems.extend(f"{where}: {b}" for b in bad)
            continue
        resources.append(Resource(
            id=entry["id"], title=entry.get("title") or entry["id"], publisher=entry.get("publisher") or "",
            licence=entry["licence"], profiles=frozenset(entry.get("profiles") or ()),
            levels=tuple(str(x) for x in entry.get("levels") or ()),
            quota=entry.get("quota"), quotas={str(k): v for k, v in (entry.get("quotas") or {}).items()},
            attributes=tuple(entry.get("attributes") or DEFAULT_ATTRIBUTES),
        ))
    if problems:
        raise CatalogueError(problems)
    return resources


def _check_entry(entry: Mapping[str, Any]) -> list[str]:
    bad = []
    if not isinstance(entry.get("id"), str) or not entry["id"].strip():
        bad.append("no id")
    licence = entry.get("licence")
    if licence is None:
        bad.append(f"no licence model (one of {', '.join(LICENCE_MODELS)})")
    elif licence not in LICENCE_MODELS:
        bad.append(f"licence {licence!r} is not one of {', '.join(LICENCE_MODELS)}")
    quota = entry.get("quota")
    if quota is not None and (not isinstance(quota, int) or quota < 0):
        bad.append(f"quota {quota!r} is not a whole number ≥ 0")
    if licence == "unlimited" and (quota is not None or entry.get("quotas")):
        bad.append("an unlimited licence has no quota")
    quotas = entry.get("quotas") or {}
    if not isinstance(quotas, dict) or not all(isinstance(v, int) and v >= 0 for v in quotas.values()):
        bad.append("quotas must map a UAI to a whole number ≥ 0")
    elif quotas and licence != "per-user":
        bad.append("per-structure quotas ('quotas') only apply to a per-user licence")
    unknown = [a for a in entry.get("attributes") or () if a not in ACCOUNT_ATTRIBUTES]
    if unknown:
        bad.append(f"unknown attributes {unknown} (known: {', '.join(ACCOUNT_ATTRIBUTES)})")
    for key in ("profiles", "levels"):
        if entry.get(key) is not None and not isinstance(entry[key], list):
            bad.append(f"{key} must be a list")
    return bad
