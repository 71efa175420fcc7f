"""What a contract-end handover pack says: what it holds, and what is missing, named. Plain Python, no I/O.

A handover pack (``relais vault handover``) is what a collectivité signs at the end of an ENT contract: the
bags of every person and structure, and a summary of what moved. Its facts come from three places:

- the bags written from the vault (``bags/``): per bag its owner, items, bytes and tag-manifest sha256;
- the contract-end export jobs of the tenant (``transfer/``): what each connector took from the outgoing ENT,
  and every item or person it could not take;
- the verifications run (``relais vault verify --json``, given as files): every item lost or unverified
  between the outgoing ENT, the vault and the incoming one.

**Lost = 0 or the named misses.** Each bag that failed, each export job not completed, each item or person an
export could not take, each finding of a verification that is lost or unverified, and each side a
verification could not list, is one miss, named (:func:`misses`). A pack with none says nothing was lost.
"""
from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

IN_PACK = ("written", "skipped")  # states of a bag the pack holds (an "empty" owner has none; "failed" is a miss)

#: Kinds of miss, in the order the summary lists them.
BAG, EXPORT_JOB, EXPORT_ITEM, VERIFY_FINDING, VERIFY_SIDE = (
    "bag", "export-job", "export-item", "verify-finding", "verify-side")


@dataclass(frozen=True)
class Miss:
    """One thing the pack does not hold or cannot vouch for: which kind, whose, what, and why."""

    kind: str
    owner: str | None  # a person's jointure, "structure:<UAI>", or None (a job, a whole side)
    what: str  # the bag, the job, the vertical and item or path
    why: str

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "owner": self.owner, "what": self.what, "why": self.why}


@dataclass
class Handover:
    """The facts of one pack (JSON-ready through :meth:`to_dict`)."""

    tenant: str
    ran_by: str  # who ran it, as they gave it (name and role)
    account: str  # the login and host the command ran as
    at: datetime
    bags: list[Mapping[str, Any]] = field(default_factory=list)  # BagResult.to_dict() of each bag
    exports: list[Mapping[str, Any]] = field(default_factory=list)  # TransferReport.to_dict() per connector
    verifications: list[Mapping[str, Any]] = field(default_factory=list)  # VerifyReport.to_dict() given
    vault: Mapping[str, Any] = field(default_factory=dict)  # the vault's status: live items per vertical

    @property
    def persons(self) -> int:
        return sum(1 for b in self.bags if b["kind"] == "person" and b["state"] in IN_PACK)

    @property
    def structures(self) -> int:
        return sum(1 for b in self.bags if b["kind"] == "structure" and b["state"] in IN_PACK)

    def verticals(self) -> dict[str, dict[str, int]]:
        """Per vertical, the items and bytes of the bags in the pack."""
        out: dict[str, dict[str, int]] = {}
        for b in self.bags:
            if b["state"] not in IN_PACK:
                continue
            for vertical, c in b["verticals"].items():
                mine = out.setdefault(vertical, {"items": 0, "bytes": 0})
                mine["items"] += c["items"]
                mine["bytes"] += c["bytes"]
        return dict(sorted(out.items()))

    @property
    def items(self) -> int:
        return sum(c["items"] for c in self.verticals().values())

    @property
    def bytes(self) -> int:
        return sum(c["bytes"] for c in self.verticals().values())

    def misses(self) -> list[Miss]:
        return misses(self.bags, self.exports, self.verifications)

    def bag_hashes(self) -> str:
        """``bags-sha256.txt``: each bag's tag-manifest sha256 and name, sorted by name (a bag's tag manifest
        pins its every file; this file pins every bag)."""
        return "".join(f"{b['tagmanifest_sha256']}  {b['name']}\n" for b in sorted(self.bags, key=lambda b: b["name"])
                       if b["state"] in IN_PACK)

    def seal(self) -> str:
        """The sha256 of :meth:`bag_hashes`: one hash for every byte of every bag."""
        return hashlib.sha256(self.bag_hashes().encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        found = self.misses()
        return {"format": "relais-handover/1", "tenant": self.tenant, "ran_by": self.ran_by, "account": self.account,
                "at": self.at.isoformat().replace("+00:00", "Z"), "persons": self.persons,
                "structures": self.structures, "items": self.items, "bytes": self.bytes,
                "verticals": self.verticals(), "bags_seal_sha256": self.seal(), "lost": len(found),
                "misses": [m.to_dict() for m in found], "vault": dict(self.vault),
                "exports": [dict(e) for e in self.exports], "verifications": [dict(v) for v in self.verifications],
                "bags": [dict(b) for b in sorted(self.bags, key=lambda b: b["name"])]}


def misses(bags: Iterable[Mapping[str, Any]], exports: Iterable[Mapping[str, Any]],
           verifications: Iterable[Mapping[str, Any]]) -> list[Miss]:
    """Every miss of the pack, named (see the module's docstring), in a stable order."""
    found: list[Miss] = []
    for b in sorted(bags, key=lambda b: b["name"]):
        if b["state"] == "failed":
            owner = b["owner"] if b["kind"] == "person" else f"structure:{b['owner']}"
            found.append(Miss(BAG, owner, b["name"], b.get("error") or "not written"))
    for e in exports:
        job = f"{e['kind']} job {e['job']} ({e['connector']})"
        if e["state"] != "completed":
            found.append(Miss(EXPORT_JOB, None, job, f"state {e['state']}" + (f": {e['error']}" if e.get("error")
                                                                               else "")))
        for f in e.get("failures", []):
            what = f"{f['vertical']} {f['item']!r}" if f.get("item") is not None else f"{f['vertical']} (listing)"
            found.append(Miss(EXPORT_ITEM, f["person"], f"{job}: {what}", f["error"]))
    for v in verifications:
        sides = ", ".join(f"{k} ({w})" for k, w in sorted(v.get("sides", {}).items()))
        for err in v.get("errors", []):
            found.append(Miss(VERIFY_SIDE, err.get("person"), f"verify {sides}: {err.get('side')} "
                              f"{err.get('vertical')}", err.get("error", "")))
        for f in v.get("findings", []):
            if f.get("verdict") in ("lost", "unverified"):
                found.append(Miss(VERIFY_FINDING, f.get("person"),
                                  f"verify {sides}: {f.get('vertical')} {f.get('path') or f.get('item')!r}",
                                  f"{f['verdict']}: {f.get('detail') or f.get('problem')}"))
    return found


def check_verify_report(doc: Any, where: str) -> Mapping[str, Any]:
    """A ``relais vault verify --json`` report, or ValueError naming ``where`` and what is wrong."""
    if not isinstance(doc, dict):
        raise ValueError(f"{where}: expected the JSON object `relais vault verify --json` prints")
    for key, kind in (("tenant", str), ("ok", bool), ("lost", int), ("unverified", int), ("findings", list),
                      ("sides", dict)):
        if not isinstance(doc.get(key), kind):
            raise ValueError(f"{where}: field {key!r} missing or not a {kind.__name__}: is this the output of "
                             "`relais vault verify --json`?")
    return doc
