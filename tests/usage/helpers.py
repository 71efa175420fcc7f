"""Events as the SSO and provisioning publish them, for the usage service's tests and benchmark."""

from __future__ import annotations

from datetime import datetime

from relais.bus.envelope import Event

TENANT = "t"


def _event(type_: str, source: str, at: datetime, payload: dict) -> Event:
    return Event(type=type_, payload=payload, source=source, tenant=TENANT, correlation_id="c",
                 occurred_at=at.isoformat())


def login(person: str, at: datetime, structure: str = "0750001A", profile: str = "National_ELV",
          level: str | None = "4EME") -> Event:
    return _event("sso.login.succeeded", "relais.sso", at,
                  {"session": f"s-{person}-{at.timestamp()}", "person": person, "auth_source": "educonnect",
                   "profile": profile, "structure": structure, "level": level})


def cas_visit(person: str, at: datetime, service: str, structure: str = "0750001A",
              profile: str = "National_ELV", level: str | None = "4EME") -> Event:
    return _event("sso.cas.ticket.validated", "relais.sso", at,
                  {"session": f"s-{person}", "person": person, "service": service, "profile": profile,
                   "structure": structure, "level": level})


def saml_visit(person: str, at: datetime, platform: str, structure: str = "0750001A",
               profile: str = "National_ELV", level: str | None = "4EME") -> Event:
    return _event("sso.saml.response.sent", "relais.sso", at,
                  {"session": f"s-{person}", "person": person, "platform": platform, "profile": profile,
                   "structure": structure, "level": level})


def logout(person: str, at: datetime) -> Event:
    return _event("sso.logout", "relais.sso", at, {"session": f"s-{person}", "person": person, "reason": "user",
                                                  "services": 1})


def grant(person: str, resource: str, at: datetime, structure: str = "0750001A", revoked: bool = False) -> Event:
    payload = {"person": person, "resource": resource, "structure": structure, "cause": "rule:r1"}
    if not revoked:
        payload["account"] = {"id": person}
    return _event("provisioning.grant.revoked" if revoked else "provisioning.grant.created", "relais.provisioning",
                  at, payload)
