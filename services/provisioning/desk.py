"""Provisioning's use cases for people at a desk (the operator console), behind one facade.

The console reaches provisioning only through this object, which the composition root (`app/bootstrap.py`)
hands it as its provisioning port: a person's resources with their causes, the catalogue, manual
grants and revocations by a resource manager (the same use cases as `relais provisioning explain`,
`grant` and `revoke`), and the rules: the document in force, a change's preview (`grants/preview.py`),
and saving it (`relais provisioning load`'s use case). A refusal is a ValueError (`ProvisioningError`,
`RuleError`) saying why; nothing is changed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import orjson
from sqlalchemy import Connection, Engine, select

from relais.db import writer

from .adapters import tables as t
from .adapters.queries import catalogue, everyone, held_counts, members, ruleset, structure_uais, uai_map
from .grants.load_checks import check_references
from .grants.member import Member
from .grants.preview import RuleChange, affected_structures, rule_change
from .grants.rules import parse_rules
from .handlers.configuration import load_rules
from .handlers.explain import explain
from .handlers.manual_grants import grant_manually, revoke_manually
from .handlers.work import Context as Work

CHUNK = 5000  # accounts read at once by a preview


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

    def seats(self) -> list[dict[str, Any]]:
        """The catalogue with its licence pools: per resource, per UAI holding some, licences held and seats
        (per-user: the UAI's seats; per-structure: `quota` is the structures it may be held in; None: unlimited)."""
        with self.engine.connect() as conn:
            resources, held = catalogue(conn), held_counts(conn)
        pools: dict[str, list[dict[str, Any]]] = {}
        for res, uai, n in sorted(held):
            r = resources.get(res)
            seats = r.seats(uai) if r is not None and r.licence == "per-user" else None
            pools.setdefault(res, []).append({"uai": uai, "held": n, "seats": seats})
        return [{"id": r.id, "title": r.title, "publisher": r.publisher, "licence": r.licence, "quota": r.quota,
                 "structures": len(pools.get(r.id, [])), "pools": pools.get(r.id, [])}
                for r in sorted(resources.values(), key=lambda r: r.title)]

    def grant(self, by: str, person: str, resource: str, uai: str) -> None:
        with writer(self.engine).begin() as conn:
            grant_manually(conn, by, person, resource, uai, Work(self.tenant))

    def revoke(self, by: str, person: str, resource: str, uai: str) -> None:
        with writer(self.engine).begin() as conn:
            revoke_manually(conn, by, person, resource, uai, Work(self.tenant))

    def rules_document(self) -> dict[str, Any]:
        """The rule set in force, as it was loaded (an empty one before the first load)."""
        with self.engine.connect() as conn:
            row = conn.execute(select(t.config.c.data).where(t.config.c.name == "rules")).first()
        return orjson.loads(row.data) if row else {"rules": []}

    def preview_rules(self, document: dict[str, Any]) -> RuleChange:
        """What loading `document` would add and remove, per structure (RuleError if it cannot be loaded)."""
        new = parse_rules(document)
        with self.engine.connect() as conn:
            resources, old = catalogue(conn), ruleset(conn)
            check_references(new, resources, structure_uais(conn))
            return rule_change(self._accounts(conn, affected_structures(old, new)), old, new, resources)

    def save_rules(self, document: dict[str, Any]) -> dict[str, int]:
        """Load `document` as the rule set: every account re-evaluated, in one transaction (all or nothing)."""
        with writer(self.engine).begin() as conn:
            return load_rules(conn, document, Work(self.tenant))

    @staticmethod
    def _accounts(conn: Connection, uais: frozenset[str] | None) -> Iterator[Member]:
        """Every account of the view (`uais` None), or those of structures `uais`: their records, read in
        order, are parsed only when they name one of those structures (most are skipped unread)."""
        uai_of = uai_map(conn)
        if uais is None:
            accounts = everyone(conn)
            for i in range(0, len(accounts), CHUNK):
                yield from members(conn, accounts[i:i + CHUNK], uai_of).values()
            return
        needles = [f'"{j}"'.encode() for j, u in uai_of.items() if u in uais] + [f'"{u}"'.encode() for u in uais]
        rows = conn.execution_options(yield_per=CHUNK).execute(select(t.person.c.data))
        for (data,) in rows:
            if any(n in data for n in needles):
                m = Member.from_record(orjson.loads(data), uai_of)
                if m.structures & uais:
                    yield m
