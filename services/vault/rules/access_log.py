"""What the access log records about who read a person's data.

- Every content read (`relais vault get`, `Vault.read`), version listing and restore through the
  vault's API adds an entry before the answer: actor (at most `ACTOR_MAX` characters), action,
  person, vertical, item, version and time.
- After an erasure the person's entries keep who accessed and when, without the item ids (an item
  id can be a file name, and so personal): `FORGOTTEN_ON_ERASURE`.
"""
from __future__ import annotations

from datetime import datetime
from typing import Any

READ, VERSIONS, RESTORE = "read", "versions", "restore"
ACTIONS = (READ, VERSIONS, RESTORE)
ACTOR_MAX = 128  # the column's length
FORGOTTEN_ON_ERASURE: dict[str, Any] = {"item_id": None}  # what an erasure blanks in the person's entries


def entry(*, at: datetime, actor: str, action: str, person: str, vertical: str | None, item_id: str | None,
          version: int | None) -> dict[str, Any]:
    """The entry recorded for one access (ValueError for an action the log does not know)."""
    if action not in ACTIONS:
        raise ValueError(f"access log action {action!r}: expected one of {', '.join(ACTIONS)}")
    return {"at": at, "actor": actor[:ACTOR_MAX], "action": action, "person": person, "vertical": vertical,
            "item_id": item_id, "version": version}


class ActorRefused(ValueError):
    """An RPC caller named an actor other than itself."""


def rpc_actor(role: str, claimed: str | None = None) -> str:
    """The actor recorded for an RPC call from `role`, the caller the broker vouched for (`operator`, say).

    The caller may narrow it, never change it: `claimed` is None (`rpc:<role>`), the role itself, or
    `<role>:<who>`, naming who acts through it (`operator:jdupont`, recorded `rpc:operator:jdupont`);
    any other actor, another service's or a free name, is refused (ActorRefused).
    """
    if claimed is None or claimed == "" or claimed == role:
        return f"rpc:{role}"
    if not isinstance(claimed, str) or not claimed.startswith(f"{role}:") or claimed == f"{role}:":
        raise ActorRefused(f"actor {claimed!r} is not the caller, {role!r}: pass no actor, {role!r}, "
                           f"or {role + ':<who>'!r} to name who acts through it")
    return f"rpc:{claimed}"
