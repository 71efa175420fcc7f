"""What each event the usage service receives tells it, with nothing it does not need (no I/O).

| event | observation |
|---|---|
| `sso.login.succeeded` | a connection (session opened): person, structure, profile, level |
| `sso.cas.ticket.validated` | a visit to a CAS service |
| `sso.saml.response.sent` | a visit to a SAML platform |
| `sso.oidc.token.issued` | a visit to an OpenID Connect client |
| `sso.logout` | nothing counted (consumed so that it does not pile up; no indicator uses it yet) |
| `sso.login.failed` | nothing counted (no person: failures are the SSO's own metrics) |
| `provisioning.grant.created` | one more licence held, per structure and resource (the person is not read) |
| `provisioning.grant.revoked` | one licence fewer |
| `provisioning.quota.exhausted` | the licence pool refused grants, per structure and resource |

A visit names a service or platform; the catalogue's resource it stands for comes from the
configured mapping (`resources`: resource id -> the services and platforms that serve it), so that
licences used can be set against licences granted; an unmapped service is its own resource.
Structure, profile or level absent from an event are `UNKNOWN`; a level given as a MEF code is kept
as its first four digits (`level_of`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from .periods import local_day

UNKNOWN = "-"
SESSION, VISIT = "session", "visit"
IGNORED_TYPES = frozenset({"sso.logout", "sso.login.failed"})


class UnknownEventType(ValueError):
    """An event type the usage service has no rule for (the consumer dead-letters it)."""


@dataclass(frozen=True)
class Activity:
    """A connection (`SESSION`) or a visit (`VISIT`) by one person, on one day."""

    kind: str
    day: date
    person: str
    structure: str
    profile: str
    level: str
    resource: str  # "" for a connection


@dataclass(frozen=True)
class LicenceChange:
    structure: str
    resource: str
    delta: int  # +1 granted, -1 revoked


@dataclass(frozen=True)
class QuotaReached:
    day: date
    structure: str
    resource: str


Observation = Activity | LicenceChange | QuotaReached | None


def _text(payload: Mapping[str, Any], name: str) -> str:
    value = payload.get(name)
    return str(value) if value not in (None, "") else UNKNOWN


def observe(event: Mapping[str, Any], zone: ZoneInfo, services: Mapping[str, str]) -> Observation:
    """What `event` (already checked against its contract) tells; None: nothing to count.

    `services` maps a service or platform name to the resource it serves (the inverse of the
    configured `resources`).
    """
    kind, payload = event["type"], event["payload"]
    if kind in IGNORED_TYPES:
        return None
    if kind.startswith("provisioning."):
        structure, resource = _text(payload, "structure"), _text(payload, "resource")
        if kind == "provisioning.grant.created":
            return LicenceChange(structure, resource, +1)
        if kind == "provisioning.grant.revoked":
            return LicenceChange(structure, resource, -1)
        if kind == "provisioning.quota.exhausted":
            return QuotaReached(_day(event, zone), structure, resource)
        raise UnknownEventType(f"no usage rule for event type {kind!r}")
    if kind == "sso.login.succeeded":
        activity, resource = SESSION, ""
    elif kind == "sso.cas.ticket.validated":
        activity, resource = VISIT, str(payload["service"])
    elif kind == "sso.saml.response.sent":
        activity, resource = VISIT, str(payload["platform"])
    elif kind == "sso.oidc.token.issued":
        activity, resource = VISIT, str(payload["client"])
    else:
        raise UnknownEventType(f"no usage rule for event type {kind!r}")
    return Activity(activity, _day(event, zone), str(payload["person"]), _text(payload, "structure"),
                    _text(payload, "profile"), level_of(payload.get("level")), services.get(resource, resource))


def level_of(mef: object) -> str:
    """The level a pupil's MEF code stands for: its first four digits (1001 sixième, 1011 cinquième, 1021
    quatrième, 1031 troisième, 2001 seconde...), the grain statistics need; the full code would split a
    level into options and specialities, cells too small to publish. Anything else is kept as it is."""
    text = str(mef) if mef not in (None, "") else UNKNOWN
    return text[:4] if len(text) >= 4 and text.isdigit() else text


def _day(event: Mapping[str, Any], zone: ZoneInfo) -> date:
    return local_day(datetime.fromisoformat(event["occurred_at"]), zone)


def services_to_resources(resources: Mapping[str, list[str]]) -> dict[str, str]:
    """{service or platform: resource} from the configured {resource: [services and platforms]}."""
    inverse: dict[str, str] = {}
    for resource, names in resources.items():
        for name in names:
            if name in inverse and inverse[name] != resource:
                raise ValueError(f"service {name!r} is mapped to two resources: {inverse[name]!r} and {resource!r}")
            inverse[name] = resource
    return inverse
