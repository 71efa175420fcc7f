"""Grant planning: what to grant, revoke, defer or keep for one account, free of I/O.

`plan` compares the grants an account holds with those the rules call for
(`causes.wanted`):
- a grant wanted and not held is given (within quotas: `quotas.py`);
- a rule that no longer selects an account still in the structure (class
  change, MEF change) revokes at once: `no-longer-selected (rule:<id>)`;
- an account that left the structure, or the directory, keeps its licences
  for the rule set's `grace_days` (default 30), then loses them
  (`departure`); coming back within the grace period cancels that;
- a manual grant is never taken back by the rules: only by a departure or by
  a resource manager;
- a grant still wanted under another rule is kept, with its new cause.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .member import Key, Member


@dataclass(frozen=True)
class Held:
    """A grant the account holds."""

    cause: str  # rule:<id> | manual:<jointure>
    revoke_after: datetime | None = None  # set while a departure's grace period runs


@dataclass
class Plan:
    grant: dict[Key, str] = field(default_factory=dict)  # new grants and their causes
    revoke: dict[Key, str] = field(default_factory=dict)  # now, with the cause of the revocation
    defer: dict[Key, datetime] = field(default_factory=dict)  # revoke at this time (departure grace)
    cancel: list[Key] = field(default_factory=list)  # a pending departure that is no longer one
    recause: dict[Key, str] = field(default_factory=dict)  # held, now called for by another rule

    def __bool__(self) -> bool:
        return bool(self.grant or self.revoke or self.defer or self.cancel or self.recause)


def plan(held: Mapping[Key, Held], want: Mapping[Key, str], m: Member | None, now: datetime,
         grace_days: int) -> Plan:
    """Compare the grants held with those wanted. `m` None: the account left the directory."""
    p = Plan()
    structures = m.structures if m is not None else frozenset()
    for key, cause in want.items():
        h = held.get(key)
        if h is None:
            p.grant[key] = cause
        elif h.revoke_after is not None:
            p.cancel.append(key)
        elif h.cause.startswith("rule:") and h.cause != cause:
            p.recause[key] = cause
    for key, h in held.items():
        if key in want:
            continue
        _resource, uai = key
        if uai not in structures:  # a departure: from the structure or from the directory
            if h.revoke_after is None:
                if grace_days == 0:
                    p.revoke[key] = "departure"
                else:
                    p.defer[key] = now + timedelta(days=grace_days)
            elif h.revoke_after <= now:
                p.revoke[key] = "departure"
        elif h.cause.startswith("rule:"):  # still there, no rule selects it any more
            p.revoke[key] = f"no-longer-selected ({h.cause})"
        elif h.revoke_after is not None:  # a manual grant: back in the structure
            p.cancel.append(key)
    return p
