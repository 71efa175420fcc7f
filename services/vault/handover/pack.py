"""``relais vault handover``: the contract-end pack of a tenant, in one folder a collectivité keeps and signs.

```
<folder>/
  bags/                     one bag per person and per structure (``bags/``; ``--zip``: one zip each)
  bags-sha256.txt           each bag's tag-manifest sha256 and name: its sha256 seals every byte of every bag
  handover.json             the facts (rules/handover.py): who ran it, when, persons, structures, verticals,
                            counts and bytes, the export jobs, the verifications given, every miss named, the bags
  summary-<lang>.html       the printable summary (French by default), then its PDF
  summary-<lang>.pdf
```

The bags are written as ``relais vault bag`` writes them, so running the command again after a crash or a
later change redoes only the bags that are not whole and up to date; the other files are rewritten each
run (each to a temporary file renamed into place), dated and signed anew.
"""
from __future__ import annotations

import getpass
import hashlib
import json
import os
import socket
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, select

from relais.i18n import translator

from ..adapters import index
from ..adapters.blob_store import BlobStore
from ..bags.report import BagRun
from ..bags.targets import FolderTarget, ZipTarget
from ..bags.write import Progress, bag
from ..rules.handover import Handover, check_verify_report
from ..transfer.checkpoint import ABANDONED, Checkpoint, Scope
from ..transfer.report import RunStats
from ..transfer.tables import vault_transfer_job as jobs_t
from .html import render_html
from .pdf import render_pdf
from .summary import summary

BAGS, HASHES, FACTS = "bags", "bags-sha256.txt", "handover.json"


class HandoverError(ValueError):
    """A handover that cannot be made as asked (a verify report that is not one, another tenant's...)."""


@dataclass
class Pack:
    """A pack written: its facts, where, its files, and how its bags went."""

    handover: Handover
    folder: Path
    bags: BagRun
    files: dict[str, Path] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.bags.ok and not self.handover.misses()

    def to_dict(self) -> dict[str, Any]:
        facts = self.handover.to_dict()
        return {"folder": str(self.folder), "ok": self.ok, "state": self.bags.state,
                "files": {k: str(v) for k, v in self.files.items()},
                **{k: facts[k] for k in ("tenant", "ran_by", "at", "persons", "structures", "items", "bytes",
                                         "verticals", "bags_seal_sha256", "lost", "misses")},
                "bags": {k: v for k, v in self.bags.to_dict().items() if k != "results"}}


def account() -> str:
    """The login and host this runs as: who ran it, as the machine knows it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = os.environ.get("USER") or f"uid{os.getuid()}"
    return f"{user}@{socket.gethostname()}"


def export_reports(engine: Engine, tenant: str) -> list[Mapping[str, Any]]:
    """The latest contract-end export job of the tenant through each connector (abandoned ones aside)."""
    with engine.connect() as conn:
        rows = conn.execute(select(jobs_t).where(jobs_t.c.tenant == tenant, jobs_t.c.kind == "export",
                                                 jobs_t.c.state != ABANDONED)
                            .order_by(jobs_t.c.connector, jobs_t.c.started_at.desc())).all()
    latest: dict[str, Any] = {}
    for r in rows:
        latest.setdefault(r.connector, r)
    out: list[Mapping[str, Any]] = []
    for r in latest.values():
        old = json.loads(r.scope)
        scope = Scope(tuple(old["persons"]) if old["persons"] is not None else None, tuple(old["verticals"]))
        cp = Checkpoint(engine, r.job_id, tenant, r.kind, r.connector, scope, r.runs, resumed=True)
        report = cp.report(r.state, RunStats(), r.error).to_dict()
        report.pop("this_run", None)
        out.append(report)
    return out


def read_verify_reports(paths: Iterable[Path], tenant: str) -> list[Mapping[str, Any]]:
    out = []
    for p in paths:
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, ValueError) as exc:
            raise HandoverError(f"{p}: not the JSON of `relais vault verify --json`: {exc}") from None
        try:
            report = check_verify_report(doc, str(p))
        except ValueError as exc:
            raise HandoverError(str(exc)) from None
        if report["tenant"] != tenant:
            raise HandoverError(f"{p}: a verification of tenant {report['tenant']!r}, not {tenant!r}")
        out.append(report)
    return out


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def handover(engine: Engine, store: BlobStore, folder: Path, *, ran_by: str, lang: str = "fr", zip_: bool = False,
             verify_reports: Iterable[Path] = (), workers: int = 4, source_org: str = "Relais",
             progress: Progress | None = None, now: datetime | None = None) -> Pack:
    """Write the handover pack of the tenant (``store.tenant``) into ``folder``."""
    _ = translator(lang)  # an unknown language is refused before anything is written
    verifications = read_verify_reports(verify_reports, store.tenant)
    folder.mkdir(parents=True, exist_ok=True)
    target = ZipTarget(folder / BAGS) if zip_ else FolderTarget(folder / BAGS)
    run = bag(engine, store, target, workers=workers, actor=f"handover:{ran_by}", source_org=source_org,
              progress=progress)
    with engine.connect() as conn:
        status = index.status(conn, store.tenant, datetime.now(UTC))
    h = Handover(tenant=store.tenant, ran_by=ran_by, account=account(), at=now or datetime.now(UTC),
                 bags=[r.to_dict() for r in run.results], exports=export_reports(engine, store.tenant),
                 verifications=verifications, vault={"persons": status["persons"], "verticals": status["verticals"]})
    pack = Pack(h, folder, run)
    facts = json.dumps(h.to_dict(), ensure_ascii=False, indent=1).encode()
    files = {HASHES: h.bag_hashes().encode(), FACTS: facts}
    title, blocks = summary(h, _, json_sha256=hashlib.sha256(facts).hexdigest())
    files[f"summary-{_.lang}.html"] = render_html(title, blocks, _.lang).encode()
    files[f"summary-{_.lang}.pdf"] = render_pdf(title, blocks, _)
    for name, data in files.items():
        _write(folder / name, data)
        pack.files[name] = folder / name
    pack.files[BAGS] = folder / BAGS
    return pack
