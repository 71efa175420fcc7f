"""What the console needs of the other services: ports the composition root (`app/bootstrap.py`) hands in.

The console never imports another service: the directory's query facade, provisioning's, usage's, the SSO's and the
vault's desks and the stack's status arrive here as objects with these methods.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol


class DirectoryPort(Protocol):
    def get_person(self, jointure: str) -> dict | None:
        """The canonical Person record, or None."""

    def get_structure(self, key: str) -> dict | None:
        """A structure by jointure or UAI, or None."""

    def search_people(self, text: str, structures: list[str] | None = None, limit: int = 50) -> list[dict]:
        """People by jointure, INE or name, within `structures` (jointures or UAIs) when given."""

    def children(self, relative: str) -> list[dict]:
        """The pupils naming this person as a relative."""

    def last_import(self) -> dict | None:
        """The last import's report: status, files, counts per family, rejected records (file, line, reason)."""


class ProvisioningPort(Protocol):
    def explain(self, person: str) -> dict[str, Any]:
        """A person's grants with their causes, refusals and history (`relais provisioning explain`)."""

    def resources(self) -> list[dict[str, Any]]:
        """The catalogue: id and title of each resource."""

    def seats(self) -> list[dict[str, Any]]:
        """The catalogue: per resource its licence, quota and pools (UAI, licences held, seats there)."""

    def grant(self, by: str, person: str, resource: str, uai: str) -> None:
        """A manual grant by a resource manager; ValueError (provisioning's refusal) says why not."""

    def revoke(self, by: str, person: str, resource: str, uai: str) -> None:
        """Take back a manual grant; ValueError says why not."""

    def rules_document(self) -> dict[str, Any]:
        """The rule set in force, as loaded."""

    def preview_rules(self, document: dict[str, Any]) -> Any:
        """What loading `document` would do: `.accounts`, `.added`, `.removed`, `.structures` (UAI -> `.added`,
        `.removed`, `.added_sample`, `.removed_sample`); ValueError (the rules' problems) if it cannot be loaded."""

    def save_rules(self, document: dict[str, Any]) -> dict[str, int]:
        """Load `document` as the rule set (every account re-evaluated); ValueError if it cannot be."""


class UsagePort(Protocol):
    def periods(self) -> list[dict[str, Any]]:
        """The months the usage statistics know, newest first: `period`, `closed`."""

    def statistics(self, period: str, structure: str | None = None) -> dict[str, Any]:
        """One month, every structure or one UAI: `provisional`, `threshold`, `structures`, `licences` (per
        resource: licences_granted, _used, _unused, adoption_rate, None where suppressed), `weeks` (start,
        active_users); ValueError if `period` is not a month."""

    def licences_svg(self, period: str, structure: str | None, lang: str, names: dict[str, str]) -> bytes:
        """The month's licences chart (granted, used, unused per resource), SVG."""

    def active_users_svg(self, period: str, structure: str | None, lang: str) -> bytes:
        """The weekly active users per profile over the year's months up to `period`, SVG."""

    def csv(self, period: str, structure: str | None = None) -> str:
        """The month's report by structure and resource, CSV (the data dictionary's columns)."""


class SsoPort(Protocol):
    def overview(self) -> dict[str, Any]:
        """`services` (CAS: id, match, value, attributes, proxy, logout), `platforms` (SAML: id, label,
        nameid_format, attributes), `clients` (OIDC: id, scopes, claims), `problem` (why the configuration cannot
        be read, or None), `sessions` (`open`, `by_source`, `by_service`: counts only)."""


class VaultPort(Protocol):
    def jobs(self, limit: int = 20) -> list[dict[str, Any]]:
        """The newest transfer jobs: job, kind, connector, state, runs, started_at, updated_at, finished_at, error,
        items_done, items_failed, bytes, listings_done, listings_failed."""

    def failures(self, job: str, limit: int = 100) -> list[dict[str, Any]]:
        """A job's failures: person, vertical, item (None: the person's listing), error."""

    def access_log(self, limit: int = 100) -> list[dict[str, Any]]:
        """The vault's access log, newest first: at, actor, action, person, vertical, item_id, version."""


@dataclass(frozen=True)
class Ports:
    directory: DirectoryPort
    provisioning: ProvisioningPort
    status: Callable[[], dict[str, Any]]  # what `relais status --json` reports
    usage: UsagePort
    sso: SsoPort
    vault: VaultPort
