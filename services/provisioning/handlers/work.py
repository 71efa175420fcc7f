"""What one unit of work carries: the tenant, the time, the events' correlation, the events to publish, counts.

Every use case takes a `Context` beside its connection: it says when "now"
is (tests and the departure sweep move it), which directory event caused
the change to each account (so grant events cite it), and gathers the
events to add to the outbox with the transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import orjson
from sqlalchemy import Connection

from relais.bus import contracts
from relais.bus.envelope import dumps, new_event_id
from relais.bus.outbox import add_serialized

SOURCE = "relais.provisioning"
GRANT_CREATED = "provisioning.grant.created"
GRANT_REVOKED = "provisioning.grant.revoked"
QUOTA_EXHAUSTED = "provisioning.quota.exhausted"


class ProvisioningError(ValueError):
    """A request that cannot be carried out; nothing was changed."""


@dataclass
class Context:
    """What one unit of work needs: the tenant, the time, the events' correlation."""

    tenant: str
    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    correlation_id: str | None = None
    causation_id: str | None = None
    validate_events: bool = False  # tests validate every kind; the bulk paths trust the model
    # jointure -> (correlation, causation) ids of the directory event that touched the account
    causes: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    # (id, type, body) for the outbox; a body None is a packed grant event `reconcile.apply` puts back
    outgoing: list[tuple[str, str, bytes | None]] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: {"granted": 0, "revoked": 0, "deferred": 0,
                                                            "refused": 0, "kept": 0})

    def serialized(self, type_: str, payload: dict[str, Any]) -> tuple[str, str, bytes]:
        """(id, type, JSON body) of an event; one about a person cites the directory event that touched them.

        The envelope's fields in `Event.to_dict`'s order, built here directly:
        a full evaluation makes one event per grant, millions of them.
        """
        person: Any = payload.get("person")
        correlation, causation = self.causes.get(person, (None, None))
        event_id = new_event_id()
        return event_id, type_, dumps({
            "id": event_id, "type": type_, "version": 1, "occurred_at": self.occurred_at, "source": SOURCE,
            "tenant": self.tenant, "correlation_id": correlation or self.correlation_id or self._own_correlation(),
            "causation_id": causation or self.causation_id, "payload": payload})

    def event(self, type_: str, payload: dict[str, Any]) -> None:
        """An event to publish with this unit of work."""
        self.outgoing.append(self.serialized(type_, payload))

    def for_worker(self) -> Context:
        """What a worker process needs to make this unit of work's events: no events, no counts."""
        if self.correlation_id is None:
            self._own_correlation()
        return Context(self.tenant, self.now, self.correlation_id, self.causation_id, causes=self.causes,
                       validate_events=self.validate_events)

    @property
    def occurred_at(self) -> str:
        """`now` as the envelope writes it, formatted once per unit of work."""
        if getattr(self, "_occurred_at", None) is None:
            self._occurred_at = self.now.isoformat(timespec="microseconds").replace("+00:00", "Z")
        return self._occurred_at

    def _own_correlation(self) -> str:
        self.correlation_id = new_event_id()
        return self.correlation_id

    def flush(self, conn: Connection, *, packed: bool = False) -> int:
        """Write the events made so far to the outbox (`packed`: many to a row, for the full evaluation)."""
        rows = cast(list[tuple[str, str, bytes]], self.outgoing)  # `reconcile.apply` has put every body back
        if self.validate_events:
            for _id, _type, body in rows:
                contracts.validate_event(orjson.loads(body))
        n = add_serialized(conn, rows, packed=packed) if rows else 0
        self.outgoing = []
        return n
