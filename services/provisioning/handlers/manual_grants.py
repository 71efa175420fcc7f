"""Grants by hand: a resource manager of a structure gives a resource to one of its accounts, or takes it back.

A manual grant's cause is `manual:<manager>`; the rules never take it back
(`grants.planning`), only a departure or a manager does. A manager takes
back only manual grants: one the rules gave is changed by changing the rules.
"""

from __future__ import annotations

from sqlalchemy import Connection, delete, insert

from ..adapters import tables as t
from ..adapters.licence_pools import LicencePools
from ..adapters.queries import catalogue, grant_cause, members, ruleset, uai_map
from ..adapters.write_locks import read_configuration
from ..grants.causes import is_manual, manual_cause
from ..grants.data_minimisation import account
from ..grants.managers import is_manager
from .work import GRANT_CREATED, GRANT_REVOKED, Context, ProvisioningError


def grant_manually(conn: Connection, by: str, person: str, resource: str, uai: str, ctx: Context) -> None:
    """A resource manager of `uai` gives `resource` to `person` there."""
    uai = uai.upper()
    read_configuration(conn)  # the quota checked is the one in force until this commits (`write_locks`)
    resources, rules, uai_of = catalogue(conn), ruleset(conn), uai_map(conn)
    found = members(conn, [by, person], uai_of)
    if resource not in resources:
        raise ProvisioningError(f"resource {resource!r} is not in the catalogue")
    if by not in found or not is_manager(rules, found[by], uai):
        raise ProvisioningError(f"{by} is not a resource manager of {uai} (RESP-AFFECT: listed under "
                                f"'managers' in the rules, or holding a function {sorted(rules.manager_functions)})")
    if person not in found or uai not in found[person].structures:
        raise ProvisioningError(f"{person} is not an account of structure {uai}")
    if grant_cause(conn, person, resource, uai) is not None:
        raise ProvisioningError(f"{person} already holds {resource} in {uai}")
    why_not = LicencePools(conn, resources).refusal((resource, uai))
    if why_not:
        raise ProvisioningError(why_not)
    cause = manual_cause(by)
    conn.execute(insert(t.grant).values(person=person, resource=resource, structure=uai, cause=cause,
                                        granted_at=ctx.now))
    conn.execute(insert(t.history).values(at=ctx.now, person=person, resource=resource, structure=uai,
                                          action="granted", cause=cause))
    ctx.counts["granted"] += 1
    ctx.event(GRANT_CREATED, {"person": person, "resource": resource, "structure": uai, "cause": cause,
                              "account": account(found[person], resources[resource].attributes, uai)})
    ctx.flush(conn)


def revoke_manually(conn: Connection, by: str, person: str, resource: str, uai: str, ctx: Context) -> None:
    """A resource manager of `uai` takes back a `resource` given by hand to `person` there."""
    uai = uai.upper()
    rules = ruleset(conn)
    found = members(conn, [by], uai_map(conn))
    if by not in found or not is_manager(rules, found[by], uai):
        raise ProvisioningError(f"{by} is not a resource manager of {uai}")
    held = grant_cause(conn, person, resource, uai)
    if held is None:
        raise ProvisioningError(f"{person} does not hold {resource} in {uai}")
    if not is_manual(held):
        raise ProvisioningError(f"{person} holds {resource} by {held}: change the rules, not the grant")
    conn.execute(delete(t.grant).where(t.grant.c.person == person, t.grant.c.resource == resource,
                                       t.grant.c.structure == uai))
    cause = manual_cause(by)
    conn.execute(insert(t.history).values(at=ctx.now, person=person, resource=resource, structure=uai,
                                          action="revoked", cause=cause))
    ctx.counts["revoked"] += 1
    ctx.event(GRANT_REVOKED, {"person": person, "resource": resource, "structure": uai, "cause": cause})
    ctx.flush(conn)
