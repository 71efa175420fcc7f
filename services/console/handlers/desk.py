"""The console's use cases, one method each: sign in, health, search, a person, grant and revoke, the audit log.

Every call is checked against the caller's role and UAIs (`rules.roles.may`) and written to the audit log
(who, what, when, from where, how it ended); a refusal raises `Forbidden` after it is logged, and the
HTTP side answers 403. Nothing here knows HTTP.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import yaml
from sqlalchemy import Engine

from ..adapters import audit, sessions
from ..adapters.cas import TicketRefused, logout_ticket, validate
from ..ports import Ports
from ..rules.roles import Identity, RolePolicy, function_structures, identify, may, scope
from ..rules.sealing import new_token

SEARCH_LIMIT = 50


class Forbidden(Exception):
    """Outside the caller's role or UAIs (logged before it is raised)."""


class SignInRefused(Exception):
    """The ticket was not vouched for, or the person has no role in the console; `reason` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


class NotFound(Exception):
    """No such person; no usage figures of such a month or structure."""


class Rejected(Exception):
    """Provisioning refused a grant or revocation; the message is its reason."""


@dataclass
class Desk:
    engine: Engine
    ports: Ports
    policy: RolePolicy
    cas_url: str
    timeout_s: float = 10.0
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    # -- the audit log ---------------------------------------------------------------------------

    def _log(self, who: Identity | None, action: str, outcome: str, address: str | None, *,
             target: str | None = None, uai: str | None = None, detail: str | None = None) -> None:
        audit.record(self.engine, audit.Entry(actor=who.user if who else "-", action=action, outcome=outcome,
                                              address=address, target=target, uai=uai, detail=detail), self.clock())

    def _check(self, who: Identity, action: str, address: str | None, uais: Iterable[str] | None = None, *,
               target: str | None = None, uai: str | None = None) -> None:
        if not may(who, action, uais):
            self._log(who, action, "refused", address, target=target, uai=uai, detail="outside role or UAI")
            raise Forbidden(action)

    # -- use cases -------------------------------------------------------------------------------

    def sign_in(self, service: str, ticket: str, address: str | None) -> Identity:
        try:
            validated = validate(self.cas_url, service, ticket, self.timeout_s)
        except TicketRefused as exc:
            self._log(None, "sign-in", "refused", address, detail=str(exc))
            raise SignInRefused("ticket") from None
        structures = function_structures(validated.attributes, self.policy.manager_functions)
        uai_of = {}
        for jointure in sorted(structures):
            found = self.ports.directory.get_structure(jointure)
            if found and found.get("uai"):
                uai_of[jointure] = found["uai"]
        who = identify(validated.user, validated.attributes, self.policy, uai_of)
        if not who.roles:
            self._log(who, "sign-in", "refused", address, detail="no console role")
            raise SignInRefused("role")
        self._log(who, "sign-in", "ok", address, detail=",".join(sorted(who.roles)))
        return who

    def open_session(self, who: Identity, ticket: str, max_s: int) -> str:
        """A new session's id, recorded with the ticket it was opened with (what single logout names)."""
        sid = new_token()
        sessions.open_session(self.engine, sid, who.user, ticket, self.clock(), timedelta(seconds=max_s))
        return sid

    def session_open(self, sid: str) -> bool:
        return bool(sid) and sessions.is_open(self.engine, sid)

    def sign_out(self, who: Identity, sid: str, address: str | None) -> None:
        sessions.close(self.engine, sid)
        self._log(who, "sign-out", "ok", address)

    def single_logout(self, body: bytes, address: str | None) -> int:
        """The SSO ended a session: close the console's sessions opened with the ticket it names."""
        ticket = logout_ticket(body)
        if ticket is None:
            self._log(None, "sso-logout", "refused", address, detail="not a logoutRequest naming a ticket")
            return 0
        actors = sessions.close_ticket(self.engine, ticket)
        for actor in actors:
            self._log(Identity(actor, actor, frozenset()), "sso-logout", "ok", address)
        return len(actors)

    def health(self, who: Identity, address: str | None) -> dict[str, Any]:
        self._check(who, "health", address)
        self._log(who, "health", "ok", address)
        return self.ports.status()

    def imports(self, who: Identity, address: str | None) -> dict[str, Any] | None:
        """The directory's last import, with its rejected records."""
        self._check(who, "imports", address)
        self._log(who, "imports", "ok", address)
        return self.ports.directory.last_import()

    def search(self, who: Identity, text: str, address: str | None) -> list[dict[str, Any]]:
        self._check(who, "directory", address)
        bounds = scope(who, "directory")
        found = self.ports.directory.search_people(text, sorted(bounds) if bounds is not None else None,
                                                   SEARCH_LIMIT)
        self._log(who, "search", "ok", address, detail=f"{len(found)} found")  # never the text searched
        return [{"jointure": p["jointure"], "name": _name(p), "category": p.get("category"),
                 "profiles": p.get("profiles") or [], "uais": self._uais(p)} for p in found]

    def person(self, who: Identity, jointure: str, address: str | None) -> dict[str, Any]:
        record = self.ports.directory.get_person(jointure)
        if record is None:
            self._log(who, "person", "failed", address, target=jointure, detail="not in the directory")
            raise NotFound(jointure)
        kids = self.ports.directory.children(jointure)
        # A relative belongs to no structure: they are in their children's schools.
        uais = self._uais(record) or sorted({u for c in kids for u in self._uais(c)})
        self._check(who, "person", address, uais, target=jointure)
        relatives = []
        for m in record.get("memberships") or ():
            if m["kind"] == "relative":
                other = self.ports.directory.get_person(m["person"])
                relatives.append({"jointure": m["person"], "name": _name(other) if other else None,
                                  "legal_guardian": bool(m.get("legal_guardian"))})
        children = [{"jointure": c["jointure"], "name": _name(c)} for c in kids]
        classes = sorted(f"{self._uai(m['structure'])} {m['code']}" for m in record.get("memberships") or ()
                         if m["kind"] in ("class", "group"))
        resources = self.ports.provisioning.explain(jointure)
        manageable = sorted(u for u in uais if may(who, "grant", [u]))
        self._log(who, "person", "ok", address, target=jointure)
        return {"jointure": jointure, "name": _name(record), "category": record.get("category"),
                "profiles": record.get("profiles") or [], "ine": record.get("ine"), "uais": uais,
                "classes": classes, "relatives": relatives, "children": children,
                "grants": resources.get("grants", []),
                "refusals": resources.get("refusals", []), "manageable": manageable,
                "catalogue": self.ports.provisioning.resources() if manageable else []}

    def change_grant(self, who: Identity, action: str, jointure: str, resource: str, uai: str,
                     address: str | None) -> None:
        """`action` grant or revoke, by a resource manager of `uai` (provisioning checks it again)."""
        uai = uai.strip().upper()
        self._check(who, "grant", address, [uai], target=f"{jointure} {resource}", uai=uai)
        try:
            (self.ports.provisioning.grant if action == "grant" else self.ports.provisioning.revoke)(
                who.user, jointure, resource, uai)
        except ValueError as exc:
            self._log(who, action, "failed", address, target=f"{jointure} {resource}", uai=uai, detail=str(exc))
            raise Rejected(str(exc)) from None
        self._log(who, action, "ok", address, target=f"{jointure} {resource}", uai=uai)

    def resources(self, who: Identity, address: str | None) -> list[dict[str, Any]]:
        """The catalogue with licences held and seats per school: every school, or a manager's own."""
        self._check(who, "resources", address)
        bounds = scope(who, "resources")
        out = self.ports.provisioning.seats()
        if bounds is not None:
            for r in out:
                r["pools"] = [p for p in r["pools"] if p["uai"] in bounds]
        self._log(who, "resources", "ok", address)
        return out

    def rules(self, who: Identity, address: str | None) -> str:
        """The rule set in force, as YAML to edit."""
        self._check(who, "rules", address)
        self._log(who, "rules", "ok", address)
        return yaml.safe_dump(self.ports.provisioning.rules_document(), allow_unicode=True, sort_keys=False)

    def preview_rules(self, who: Identity, text: str, address: str | None, *, names: bool = False) -> dict[str, Any]:
        """What saving `text` (YAML) would add and remove per structure; with `names`, who (the first 20)."""
        self._check(who, "rules", address)
        document = _rules_document(text)
        try:
            change = self.ports.provisioning.preview_rules(document)
        except ValueError as exc:
            self._log(who, "rules-preview", "failed", address, detail=str(exc))
            raise Rejected(str(exc)) from None
        structures = []
        for uai, s in sorted(change.structures.items()):
            row: dict[str, Any] = {"uai": uai, "added": s.added, "removed": s.removed}
            if names:
                row["added_names"] = [self._name_of(j) for j in s.added_sample]
                row["removed_names"] = [self._name_of(j) for j in s.removed_sample]
            structures.append(row)
        self._log(who, "rules-preview", "ok", address, detail=f"+{change.added} -{change.removed}")
        return {"accounts": change.accounts, "added": change.added, "removed": change.removed,
                "structures": structures, "names": names}

    def save_rules(self, who: Identity, text: str, address: str | None) -> dict[str, int]:
        """Save `text` as the rule set (the HTTP side lets only a previewed text through)."""
        self._check(who, "rules", address)
        try:
            counts = self.ports.provisioning.save_rules(_rules_document(text))
        except ValueError as exc:
            self._log(who, "rules-save", "failed", address, detail=str(exc))
            raise Rejected(str(exc)) from None
        self._log(who, "rules-save", "ok", address, detail=" ".join(f"{k}={v}" for k, v in sorted(counts.items())))
        return counts

    def usage(self, who: Identity, period: str | None, structure: str | None, address: str | None) -> dict[str, Any]:
        """The usage statistics of a month (the newest usage knows unless `period` is given), of every structure
        or of one UAI: NotFound for a month or a structure usage has no figures of."""
        self._check(who, "usage", address)
        periods = self.ports.usage.periods()
        chosen = self._usage_period(periods, period)
        statistics = self.ports.usage.statistics(chosen, structure) if chosen else None
        if structure and (statistics is None or structure not in statistics["structures"]):
            raise NotFound(structure)
        self._log(who, "usage", "ok", address, uai=structure, detail=chosen)
        return {"periods": periods, "period": chosen, "structure": structure, "statistics": statistics,
                "names": self._resource_names()}

    def usage_chart(self, who: Identity, chart: str, period: str, structure: str | None, lang: str,
                    address: str | None) -> bytes:
        """One of the usage page's charts (`licences` or `active-users`), SVG: part of the page, not logged again."""
        self._check(who, "usage", address)
        self._usage_period(self.ports.usage.periods(), period)
        if chart == "licences":
            return self.ports.usage.licences_svg(period, structure or None, lang, self._resource_names())
        return self.ports.usage.active_users_svg(period, structure or None, lang)

    def usage_csv(self, who: Identity, period: str, structure: str | None, address: str | None) -> str:
        """The month's report by structure and resource as CSV: a download, logged."""
        self._check(who, "usage", address)
        self._usage_period(self.ports.usage.periods(), period)
        text = self.ports.usage.csv(period, structure or None)
        self._log(who, "usage-csv", "ok", address, uai=structure or None, detail=period)
        return text

    def sso(self, who: Identity, address: str | None) -> dict[str, Any]:
        """The SSO: its CAS services, SAML platforms and OIDC clients with what each receives; sessions open."""
        self._check(who, "sso", address)
        self._log(who, "sso", "ok", address)
        return self.ports.sso.overview()

    def vault(self, who: Identity, address: str | None) -> dict[str, Any]:
        """The vault and the contract end: the transfer jobs' progress (administrator, collectivité), their
        failures naming people (administrator), the access log (administrator, DPO)."""
        if not (may(who, "vault") or may(who, "vault-access")):
            self._check(who, "vault", address)
        jobs = self.ports.vault.jobs() if may(who, "vault") else None
        if jobs is not None and may(who, "vault-failures"):
            for job in jobs:
                job["failures"] = self.ports.vault.failures(job["job"], 20) if job["items_failed"] or job[
                    "listings_failed"] else []
        log = self.ports.vault.access_log() if may(who, "vault-access") else None
        self._log(who, "vault", "ok", address)
        return {"jobs": jobs, "access_log": log}

    def audit_log(self, who: Identity, address: str | None) -> list[dict[str, Any]]:
        self._check(who, "audit", address)
        self._log(who, "audit", "ok", address)
        return audit.recent(self.engine)

    def refused(self, who: Identity | None, what: str, address: str | None) -> None:
        """Log a request refused before any use case (no session, a bad CSRF token...)."""
        self._log(who, what, "refused", address)

    # -- helpers ---------------------------------------------------------------------------------

    @staticmethod
    def _usage_period(periods: list[dict[str, Any]], period: str | None) -> str | None:
        """`period` if usage knows it (NotFound if not), else the newest it knows (None: none yet)."""
        if not period:
            return str(periods[0]["period"]) if periods else None
        if period not in {p["period"] for p in periods}:
            raise NotFound(period)
        return period

    def _resource_names(self) -> dict[str, str]:
        return {r["id"]: r.get("title") or r["id"] for r in self.ports.provisioning.resources()}

    def _name_of(self, jointure: str) -> str:
        record = self.ports.directory.get_person(jointure)
        return _name(record) if record else jointure

    def _uai(self, structure: str) -> str:
        found = self.ports.directory.get_structure(structure)
        return str(found["uai"]) if found and found.get("uai") else structure

    def _uais(self, record: dict[str, Any]) -> list[str]:
        structures = {m["structure"] for m in record.get("memberships") or () if m["kind"] == "structure"}
        if record.get("structure"):
            structures.add(record["structure"])
        return sorted({self._uai(s) for s in structures})


def _rules_document(text: str) -> dict[str, Any]:
    """The YAML of a rule set, as a mapping; Rejected naming the line where it is not."""
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        raise Rejected(f"not valid YAML{where}: {getattr(exc, 'problem', None) or exc}") from None
    if not isinstance(document, dict):
        raise Rejected("the rules must be a YAML mapping with a 'rules' list")
    return document


def _name(record: dict[str, Any]) -> str:
    return " ".join(p for p in (record.get("first_name"), record.get("last_name")) if p) or record["jointure"]
