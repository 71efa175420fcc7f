"""Ingesting events: each batch becomes pseudonymous activity and counters, in the consumer's transaction.

A person's id is read here and nowhere after: it is turned into the pseudonym of the period its
event falls in (rules/pseudonyms.py), and only the pseudonym is written. An event whose period has
closed is counted in that period's `late_events` and nowhere else: a closed period's key is gone,
and never drawn again.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection

from ..adapters.activity import add_activity, add_late, add_quota, change_licences, periods
from ..rules.observations import Activity, LicenceChange, QuotaReached, observe
from ..rules.periods import period_of, week_start
from ..rules.pseudonyms import pseudonym

log = logging.getLogger(__name__)


class UsageEvents:
    """The consumer's handler (`many` for a batch)."""

    def __init__(self, tenant: str, zone: ZoneInfo, services: Mapping[str, str]) -> None:
        self.tenant, self.zone, self.services = tenant, zone, dict(services)

    def __call__(self, event: dict[str, Any], conn: Connection) -> None:
        self.many([event], conn)

    def many(self, events: list[dict[str, Any]], conn: Connection) -> None:
        activities: list[Activity] = []
        licences: Counter[tuple[str, str]] = Counter()
        quotas: Counter[tuple[Any, str, str]] = Counter()
        for event in events:
            if event.get("tenant") != self.tenant:
                log.warning("event %s of tenant %r ignored (this service serves %r)",
                            event["id"], event.get("tenant"), self.tenant)
                continue
            seen = observe(event, self.zone, self.services)
            if isinstance(seen, Activity):
                activities.append(seen)
            elif isinstance(seen, LicenceChange):
                licences[(seen.structure, seen.resource)] += seen.delta
            elif isinstance(seen, QuotaReached):
                quotas[(seen.day, seen.structure, seen.resource)] += 1
        if activities:
            self._activities(conn, activities)
        change_licences(conn, self.tenant, licences)
        add_quota(conn, self.tenant, quotas)

    def _activities(self, conn: Connection, activities: list[Activity]) -> None:
        states = periods(conn, self.tenant, {period_of(a.day) for a in activities}, datetime.now(UTC))
        cells: Counter[tuple[Any, ...]] = Counter()
        late: Counter[str] = Counter()
        for a in activities:
            period = period_of(a.day)
            key = states[period].key
            if key is None:
                late[period] += 1
                continue
            cells[(a.day, a.kind, pseudonym(key, self.tenant, a.person), a.structure, a.profile, a.level,
                   a.resource, period)] += 1
        add_activity(conn, [(self.tenant, day, kind, p, s, pr, lv, r, period, week_start(day), n)
                            for (day, kind, p, s, pr, lv, r, period), n in cells.items()])
        if late:
            log.info("usage: %d event(s) arrived after their period closed: counted as late (%s)",
                     sum(late.values()), ", ".join(f"{p}: {n}" for p, n in sorted(late.items())))
            add_late(conn, self.tenant, late)
