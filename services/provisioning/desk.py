"""Provisioning's use cases for people at a desk (the operator console), behind one facade.

The console reaches provisioning only through this object, which the composition root (`app/bootstrap.py`)
hands it as its provisioning port: a person's resources with their causes, the catalogue, and manual
grants and revocations by a resource manager (the same use cases as `relais provisioning explain`,
`grant` and `revoke`). A refusal is a `ProvisioningError` (a ValueError) saying why; nothing is changed.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Engine

from relais.db import writer

from .adapters.queries import catalogue
from .handlers.explain import explain
from .handlers.manual_grants import grant_manually, revoke_manually
from .handlers.work import Context as Work


class ProvisioningDesk:
    def __init__(self, engine: Engine, tenant: str):
        self.engine = engine
        self.tenant = tenant

    def explain(self, person: str) -> dict[str, Any]:
        with self.engine.connect() as conn:
            return explain(conn, person)

    def resources(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            return [{"id": r.id, "title": r.title} for r in sorted(catalogue(conn).values(), key=lambda r: r.title)]

    def grant(self, by: str, person: str, resource: str, uai: str) -> None:
        with writer(self.engine).begin() as conn:
            grant_manually(conn, by, person, resource, uai, Work(self.tenant))

    def revoke(self, by: str, person: str, resource: str, uai: str) -> None:
        with writer(self.engine).begin() as conn:
            revoke_manually(conn, by, person, resource, uai, Work(self.tenant))
