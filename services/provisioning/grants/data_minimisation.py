"""Data minimisation: what a resource, or an app, receives about an account.

A resource's catalogue entry lists the attributes it may receive
(`attributes:`); without a list, the least: the opaque id alone. A grant
event (`provisioning.grant.created`) carries `account(member, attributes,
uai)`, nothing more. An app serving several resources (OneRoster, SCIM) may
receive the union of their lists (`attributes_for_app`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from .member import Member

# What a resource may receive about an account. The default is the least: the opaque id alone.
ACCOUNT_ATTRIBUTES = ("id", "profiles", "structure", "classes", "groups", "mef", "last_name", "first_name", "email")
DEFAULT_ATTRIBUTES = ("id",)

_ACCOUNT_VALUES: dict[str, Callable[[Member, str], Any]] = {  # computed only for the attributes given
    "id": lambda m, uai: m.jointure,
    "profiles": lambda m, uai: sorted(m.profiles),
    "structure": lambda m, uai: uai,
    "classes": lambda m, uai: sorted([c for s, c in m.classes if s == uai]),
    "groups": lambda m, uai: sorted(g for s, g in m.groups if s == uai),
    "mef": lambda m, uai: m.mef,
    "last_name": lambda m, uai: m.last_name,
    "first_name": lambda m, uai: m.first_name,
    "email": lambda m, uai: m.email,
}


def account(m: Member, attributes: Iterable[str], uai: str) -> dict[str, Any]:
    """What a resource entitled to `attributes` receives about `m` in structure `uai`."""
    return {a: _ACCOUNT_VALUES[a](m, uai) for a in attributes}


def attributes_for_app(resource_attributes: Iterable[Iterable[str]]) -> frozenset[str]:
    """What an app may receive about an account: the union of its resources' lists, and the default."""
    out = set(DEFAULT_ATTRIBUTES)
    for attributes in resource_attributes:
        out.update(attributes)
    return frozenset(out)
