"""What ``relais vault bag`` and ``unbag`` did, bag by bag, as operators and scripts read it. Plain Python.

A run's state is ``completed`` (every bag written, skipped as already whole, or read back), ``incomplete``
(some bags failed: each says why; the same command again redoes them) or ``stopped`` (the vault store
could not be reached: nothing more could be done).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WRITTEN, SKIPPED, READ, FAILED = "written", "skipped", "read", "failed"
EMPTY = "empty"  # an owner whose items are all deleted: no bag
COMPLETED, INCOMPLETE, STOPPED = "completed", "incomplete", "stopped"


@dataclass
class BagResult:
    name: str
    kind: str  # person | structure
    owner: str  # the jointure or the UAI
    state: str = FAILED
    items: int = 0  # items of the bag (files and folders)
    files: int = 0  # payload files (the items' files and each vertical's index.json)
    bytes: int = 0  # payload bytes (Payload-Oxum)
    verticals: dict[str, dict[str, int]] = field(default_factory=dict)  # vertical -> items, bytes
    tagmanifest_sha256: str | None = None  # pins every file of the bag
    redone: str | None = None  # why a bag already there was written again
    new: int = 0  # unbag: versions added to the vault
    unchanged: int = 0  # unbag: items the vault held already, as they are
    error: str | None = None

    @property
    def payload_oxum(self) -> str:
        return f"{self.bytes}.{self.files}"

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind, "owner": self.owner, "state": self.state,
                               "items": self.items, "files": self.files, "bytes": self.bytes,
                               "payload_oxum": self.payload_oxum, "tagmanifest_sha256": self.tagmanifest_sha256,
                               "verticals": dict(sorted(self.verticals.items()))}
        if self.state == READ:
            out.update(new=self.new, unchanged=self.unchanged)
        if self.redone:
            out["redone"] = self.redone
        if self.error:
            out["error"] = self.error
        return out


@dataclass
class BagRun:
    kind: str  # bag | unbag
    tenant: str
    where: str  # the folder, zip folder or s3:// prefix (no credentials)
    results: list[BagResult] = field(default_factory=list)
    error: str | None = None  # why the run stopped
    seconds: float = 0.0

    def count(self, state: str) -> int:
        return sum(1 for r in self.results if r.state == state)

    @property
    def state(self) -> str:
        if self.error:
            return STOPPED
        return INCOMPLETE if self.count(FAILED) else COMPLETED

    @property
    def ok(self) -> bool:
        return self.state == COMPLETED

    @property
    def items(self) -> int:
        return sum(r.items for r in self.results if r.state not in (FAILED, EMPTY))

    @property
    def bytes(self) -> int:
        return sum(r.bytes for r in self.results if r.state != FAILED)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "tenant": self.tenant, "where": self.where, "state": self.state,
                "bags": len(self.results), "written": self.count(WRITTEN), "skipped": self.count(SKIPPED),
                "read": self.count(READ), "empty": self.count(EMPTY), "failed": self.count(FAILED),
                "items": self.items, "bytes": self.bytes,
                "seconds": round(self.seconds, 3), "error": self.error,
                "results": [r.to_dict() for r in sorted(self.results, key=lambda r: r.name)]}
