"""Who signs in as what, and what each role may do where (pure).

Roles come from the CAS attributes the SSO releases to the console and from configured lists:

- **administrator** (academy or territory DSI): listed in `RELAIS_CONSOLE_ADMINS`; everything in the tenant;
- **resource manager** of a school: holds there a directory function of `manager_functions` (default `DIR`,
  the head of the school, the GAR's RESP-AFFECT), or a profile of `manager_profiles` (default
  `National_DIR`) in the schools they belong to; only their UAI(s);
- **data-protection officer**: listed in `RELAIS_CONSOLE_DPOS`; the audit log and people, tenant-wide;
- **collectivité** (read-only): listed in `RELAIS_CONSOLE_COLLECTIVITE`; usage statistics.

`may(identity, action, uais)` is the one authorisation decision every page asks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

ADMINISTRATOR = "administrator"
RESOURCE_MANAGER = "resource_manager"
DPO = "dpo"
COLLECTIVITE = "collectivite"
ROLES = (ADMINISTRATOR, RESOURCE_MANAGER, DPO, COLLECTIVITE)
TENANT_WIDE = frozenset({ADMINISTRATOR, DPO})  # roles not bounded to UAIs

# action -> the roles that may do it
ACTIONS: dict[str, frozenset[str]] = {
    "health": frozenset({ADMINISTRATOR}),
    "imports": frozenset({ADMINISTRATOR}),
    "directory": frozenset({ADMINISTRATOR, RESOURCE_MANAGER, DPO}),
    "person": frozenset({ADMINISTRATOR, RESOURCE_MANAGER, DPO}),
    "resources": frozenset({ADMINISTRATOR, RESOURCE_MANAGER}),  # the catalogue and seats used
    "grant": frozenset({RESOURCE_MANAGER}),  # provisioning records the manager as the grant's cause
    "audit": frozenset({ADMINISTRATOR, DPO}),
    "rules": frozenset({ADMINISTRATOR}),  # a rule change, previewed before it is saved
    "sso": frozenset({ADMINISTRATOR}),  # the SSO's services, platforms, clients and open sessions
    "vault": frozenset({ADMINISTRATOR, COLLECTIVITE}),  # contract end: the transfer jobs' progress
    "vault-failures": frozenset({ADMINISTRATOR}),  # what a transfer could not do, naming people
    "vault-access": frozenset({ADMINISTRATOR, DPO}),  # the vault's access log: who read whose data
    "usage": frozenset({ADMINISTRATOR, COLLECTIVITE}),  # the usage statistics, anonymised: tenant-wide, read-only
}


@dataclass(frozen=True)
class RolePolicy:
    administrators: frozenset[str] = frozenset()
    dpos: frozenset[str] = frozenset()
    collectivite: frozenset[str] = frozenset()
    manager_functions: frozenset[str] = frozenset({"DIR"})
    manager_profiles: frozenset[str] = frozenset({"National_DIR"})


@dataclass(frozen=True)
class Identity:
    """A signed-in person: their CAS user id, the name shown, their roles, and the UAIs they manage."""

    user: str
    name: str
    roles: frozenset[str]
    uais: frozenset[str] = frozenset()


def function_structures(attributes: Mapping[str, list[str]], functions: Iterable[str]) -> set[str]:
    """The structure jointures where `ENTPersonFonctions` (`structure$code$label$discipline`) holds a function."""
    wanted = frozenset(functions)
    out = set()
    for value in attributes.get("ENTPersonFonctions", ()):
        structure, _, rest = value.partition("$")
        if structure and rest.partition("$")[0] in wanted:
            out.add(structure)
    return out


def identify(user: str, attributes: Mapping[str, list[str]], policy: RolePolicy,
             uai_of: Mapping[str, str]) -> Identity:
    """The identity of a CAS user; `uai_of` maps the structure jointures of `function_structures` to UAIs."""
    roles = {role for role, listed in ((ADMINISTRATOR, policy.administrators), (DPO, policy.dpos),
                                       (COLLECTIVITE, policy.collectivite)) if user in listed}
    uais = {uai_of[s] for s in function_structures(attributes, policy.manager_functions) if s in uai_of}
    if set(attributes.get("ENTPersonProfils", ())) & policy.manager_profiles:
        uais |= set(attributes.get("ENTPersonEtablissementsUAI", ())) or set(
            attributes.get("ENTPersonStructRattachUAI", ()))
    if uais:
        roles.add(RESOURCE_MANAGER)
    names = attributes.get("displayName") or [user]
    return Identity(user=user, name=names[0], roles=frozenset(roles), uais=frozenset(u.upper() for u in uais))


def may(identity: Identity, action: str, uais: Iterable[str] | None = None) -> bool:
    """May `identity` do `action`, on something of `uais` (None: nothing bounded to a school)?

    A tenant-wide role may everywhere; a resource manager only where one of `uais` is theirs. An
    unknown action is refused.
    """
    allowed = ACTIONS.get(action, frozenset()) & identity.roles
    if not allowed:
        return False
    if uais is None or allowed & TENANT_WIDE:
        return True
    return bool({u.upper() for u in uais} & identity.uais)


def scope(identity: Identity, action: str) -> frozenset[str] | None:
    """The UAIs `action` is bounded to for `identity` (None: the whole tenant)."""
    allowed = ACTIONS.get(action, frozenset()) & identity.roles
    return None if allowed & TENANT_WIDE else identity.uais
