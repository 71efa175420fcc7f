"""The import report: what an import did, per family and per file."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

MAX_LISTED_WARNINGS = 1000


@dataclass
class FamilyCounts:
    added: int = 0
    updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    rejected: int = 0


@dataclass
class Rejection:
    file: str
    line: int | None
    record_id: str | None
    reason: str


@dataclass
class Warning:
    file: str | None
    line: int | None
    record_id: str | None
    message: str


@dataclass
class FileResult:
    path: str
    family: str | None
    kind: str | None
    status: str = "pending"  # imported | failed | skipped
    records: int = 0
    line: int | None = None
    error: str | None = None


@dataclass
class ImportReport:
    import_id: str
    started_at: str
    finished_at: str | None = None
    status: str = "running"  # completed | refused | failed
    message: str | None = None
    files: list[FileResult] = field(default_factory=list)
    totals: dict[str, FamilyCounts] = field(default_factory=dict)
    rejected: list[Rejection] = field(default_factory=list)
    warnings: list[Warning] = field(default_factory=list)
    unresolved: dict[str, int] = field(default_factory=dict)
    events: int = 0
    events_published: int = 0
    events_pending: int = 0

    def counts(self, family: str) -> FamilyCounts:
        return self.totals.setdefault(family, FamilyCounts())

    def reject(self, family: str | None, file: str, line: int | None, record_id: str | None, reason: str) -> None:
        if family:
            self.counts(family).rejected += 1
        self.rejected.append(Rejection(file, line, record_id, reason))

    def warn(self, file: str | None, line: int | None, record_id: str | None, message: str) -> None:
        """A warning, listed up to `MAX_LISTED_WARNINGS`."""
        if len(self.warnings) < MAX_LISTED_WARNINGS:
            self.warnings.append(Warning(file, line, record_id, message))

    @property
    def ok(self) -> bool:
        return self.status == "completed" and all(f.status == "imported" for f in self.files)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def summary_lines(self) -> list[str]:
        lines = [f"import {self.import_id}: {self.status}" + (f" ({self.message})" if self.message else "")]
        lines.append(f"{'family':<16}{'added':>9}{'updated':>9}{'deleted':>9}{'unchanged':>11}{'rejected':>10}")
        for family, c in self.totals.items():
            lines.append(f"{family:<16}{c.added:>9}{c.updated:>9}{c.deleted:>9}{c.unchanged:>11}{c.rejected:>10}")
        for f in self.files:
            if f.status != "imported":
                where = f"{f.path}:{f.line}" if f.line else f.path
                lines.append(f"FILE {f.status.upper()}: {where}: {f.error}")
        for r in self.rejected[:20]:
            lines.append(f"rejected {r.file}:{r.line} record {r.record_id}: {r.reason}")
        if len(self.rejected) > 20:
            lines.append(f"... and {len(self.rejected) - 20} more rejected records (see --json)")
        for w in self.warnings[:10]:
            where = f"{w.file or ''}{':' + str(w.line) if w.line else ''}"
            lines.append(f"warning {where} {w.record_id or ''}: {w.message}")
        if len(self.warnings) > 10:
            lines.append(f"... and {len(self.warnings) - 10} more warnings (see --json)")
        if self.unresolved:
            lines.append("unresolved references (kept, resolved when the record arrives): "
                         + ", ".join(f"{k}={v}" for k, v in self.unresolved.items()))
        lines.append(f"events: {self.events} written, {self.events_published} published, "
                     f"{self.events_pending} pending in the outbox")
        return lines
