"""The SSO for people at a desk (the operator console), behind one facade.

The console reaches the SSO only through this object, which the composition root (`app/bootstrap.py`) hands it
as its SSO port: what the configuration registers (the CAS services, the SAML platforms and the OpenID Connect
clients, each with the attributes or claims it receives) and how many sessions are open now, per way of signing
in and per CAS service. Nothing here names a person: sessions are counted, never listed.

The SSO does not record its refusals in a table (a failed login is the event `sso.login.failed`, on the bus);
`refusals` says so rather than showing nothing as if there had been none.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, func, select

from .config import ConfigError, SsoConfig, load_config
from .rules.service_registry import RegisteredService, ServiceRegistry
from .tables import session, session_service


class SsoDesk:
    def __init__(self, engine: Engine, config_path: str | None):
        self.engine, self.config_path = engine, config_path

    def overview(self, now: datetime | None = None) -> dict[str, Any]:
        """The registered services, platforms and clients (`problem` says why not, if the configuration cannot be
        read here), and the sessions open now."""
        now = now or datetime.now(UTC)
        config, problem = self._config()
        out: dict[str, Any] = {"config": self.config_path, "problem": problem, "services": [], "platforms": [],
                               "clients": []}
        if config is not None:
            out["services"] = [{"id": s.id, "match": s.match, "value": s.value, "attributes": list(s.attributes),
                                "proxy": s.proxy, "logout": s.logout} for s in config.services]
            out["platforms"] = [_platform(p) for p in _listed(config.idp, "platforms")]
            out["clients"] = [_client(c) for c in _listed(config.oidc, "clients")]
        idle = config.lifetimes.session_idle if config is not None else None
        registry = ServiceRegistry(config.services) if config is not None else None
        out["sessions"] = self._sessions(now, idle, registry)
        return out

    def _config(self) -> tuple[SsoConfig | None, str | None]:
        if not self.config_path:
            return None, "RELAIS_SSO_CONFIG is not set where the console runs"
        try:
            return load_config(self.config_path), None
        except ConfigError as exc:
            return None, "; ".join(exc.problems)

    def _sessions(self, now: datetime, idle_s: int | None, registry: ServiceRegistry | None) -> dict[str, Any]:
        """Sessions open now (not past their end, used within the idle time when known): in all, per way of
        signing in, and per registered CAS service signed into (its id: a service's URLs vary)."""
        s, ss = session.c, session_service.c
        alive = [s.expires_at > now]
        if idle_s is not None:
            alive.append(s.last_seen_at > now - timedelta(seconds=idle_s))
        with self.engine.connect() as conn:
            by_source = {r.auth_source: r.n for r in conn.execute(
                select(s.auth_source, func.count().label("n")).where(*alive).group_by(s.auth_source))}
            signed_into = conn.execute(select(ss.session_sha256, ss.service).distinct()
                                       .join(session, s.sid_sha256 == ss.session_sha256).where(*alive)).all()
        found: dict[str, RegisteredService | None] = {}
        sessions_of: dict[str, set[str]] = {}
        for sid, url in signed_into:
            if url not in found:
                found[url] = registry.find(url) if registry is not None else None
            entry = found[url]
            sessions_of.setdefault(entry.id if entry else "?", set()).add(sid)
        by_service = {name: len(sids) for name, sids in sessions_of.items()}
        return {"open": sum(by_source.values()), "by_source": dict(sorted(by_source.items())),
                "by_service": dict(sorted(by_service.items()))}


def _listed(section: dict[str, Any] | None, key: str) -> list[dict[str, Any]]:
    items = (section or {}).get(key) or []
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def _platform(p: dict[str, Any]) -> dict[str, Any]:
    """A SAML platform as configured (idp/config.py checks it when the SSO starts)."""
    attributes = []
    for a in p.get("attributes") or []:
        if isinstance(a, dict):
            attributes.append(f"{a.get('attribute')} ({a.get('name')})" if a.get("name") else str(a.get("attribute")))
        else:
            attributes.append(str(a))
    return {"id": str(p.get("id", "")), "label": str(p.get("label") or p.get("id", "")),
            "nameid_format": str(p.get("nameid_format") or "persistent"), "attributes": attributes,
            "idp_initiated": bool(p.get("idp_initiated", True))}


def _client(c: dict[str, Any]) -> dict[str, Any]:
    """An OpenID Connect client as configured (oidc/config.py checks it when the SSO starts)."""
    return {"id": str(c.get("id", "")), "scopes": [str(x) for x in c.get("scopes") or ["openid"]],
            "claims": [str(x) for x in c.get("claims") or []], "confidential": bool(c.get("secret_env")),
            "backchannel_logout": bool(c.get("backchannel_logout_uri"))}
