"""What a transfer job did, as operators and scripts read it (`--json`). Plain Python, no I/O.

Counts cover the whole job, previous runs included (they come from its checkpoint), so a
resumed export reports everything it exported; ``this_run`` says what this process did.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..rules.changes import NEW, UNCHANGED

# Outcomes of one item: export, NEW (a version added to the vault) or UNCHANGED (the vault had it
# already: `rules/changes.py`); import, what the target connector did:
CREATED, UPDATED = "created", "updated"  # (or UNCHANGED)
DONE, FAILED = "done", "failed"  # an item's or a person's state in the checkpoint


@dataclass(frozen=True)
class Failure:
    """One item (or, ``item`` None, a person's whole listing) that could not be transferred."""

    person: str
    vertical: str
    item: str | None
    error: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunStats:
    """What this process did (the job's totals may include earlier runs)."""

    items: int = 0  # items finished in this run (done or failed)
    fetched: int = 0  # items downloaded from the source (export)
    fetched_bytes: int = 0
    uploaded: int = 0  # blobs written to the vault store (export)
    uploaded_bytes: int = 0
    deduplicated: int = 0  # blobs the store held already (shared files, earlier runs): not uploaded
    skipped_resumed: int = 0  # items an earlier run of the job had done: not touched
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class VerticalCounts:
    items: int = 0  # done
    bytes: int = 0  # of the items done
    outcomes: dict[str, int] = field(default_factory=dict)
    failed: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"items": self.items, "bytes": self.bytes, **dict(sorted(self.outcomes.items())),
                "failed": self.failed}


@dataclass
class TransferReport:
    job: str
    kind: str  # export | import
    tenant: str
    connector: str
    state: str  # completed | incomplete | stopped
    resumed: bool  # this run continued a job an earlier run had begun
    runs: int
    persons: int = 0  # persons with at least one item done or failed, or a listing failure
    verticals: dict[str, VerticalCounts] = field(default_factory=dict)
    failures: list[Failure] = field(default_factory=list)
    error: str | None = None  # why the job stopped (the object store unreachable...)
    this_run: RunStats = field(default_factory=RunStats)

    @property
    def items(self) -> int:
        return sum(v.items for v in self.verticals.values())

    @property
    def bytes(self) -> int:
        return sum(v.bytes for v in self.verticals.values())

    def outcome(self, name: str) -> int:
        return sum(v.outcomes.get(name, 0) for v in self.verticals.values())

    @property
    def failed(self) -> int:
        return len(self.failures)

    @property
    def ok(self) -> bool:
        return self.state == "completed" and not self.failures

    def to_dict(self) -> dict[str, Any]:
        outcomes = (NEW, UNCHANGED) if self.kind == "export" else (CREATED, UPDATED, UNCHANGED)
        return {"job": self.job, "kind": self.kind, "tenant": self.tenant, "connector": self.connector,
                "state": self.state, "resumed": self.resumed, "runs": self.runs, "persons": self.persons,
                "items": self.items, "bytes": self.bytes,
                **{("skipped_unchanged" if o == UNCHANGED else o): self.outcome(o) for o in outcomes},
                "failed": self.failed,
                "verticals": {k: v.to_dict() for k, v in sorted(self.verticals.items())},
                "failures": [f.to_dict() for f in self.failures], "error": self.error,
                "this_run": self.this_run.to_dict()}
