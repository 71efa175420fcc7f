"""`relais subject …`: data-subject requests across every service (GDPR articles 15, 17 and 20).

- `export JOINTURE --out FOLDER`: what every service holds about one person, in one BagIt bag the
  person can be given (each service's own `subject.export`; the vault's documents as files);
- `erase JOINTURE`: the request recorded in the audit trail (keyed hash, not the jointure) and sent
  over the bus to every service, which each erases and confirms; it waits for the confirmations,
  showing who confirmed, and names those that did not within `--timeout`;
- `status REQUEST_ID`: the audit record, after taking in confirmations that came since.

Composition root: the only place that calls every service's use case. docs/subject-requests.md is
the data-protection officer's guide.
"""
from __future__ import annotations

import getpass
import json
import os
import sys
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click

from relais.bus.contracts import consumers_of
from relais.commands import Context, pass_ctx, relay_now
from relais.db import writer
from relais.i18n import DEFAULT_LANGUAGE, UnknownLanguage, translator
from relais.runtime import Consumer
from relais.runtime.runner import event_consumer
from relais.subject import audit
from relais.subject.bag import BagError, SubjectBag
from relais.subject.events import REQUESTED, SUFFIX, new_request
from relais.subject.keys import SubjectKeyError, subject_hash, subject_key

DIRECTORY_NOTE = ("The directory's next import brings the person back if the academy's AAF export still lists "
                  "them: that import's report says so, naming this request. Ask the academy to remove them.")


def services_erasing() -> list[str]:
    """The services whose erasure consumer the contracts name (`<service>-subject`)."""
    return sorted(c.removesuffix(SUFFIX) for c in consumers_of().get(REQUESTED, ()) if c.endswith(SUFFIX))


def _default_actor() -> str:
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return f"cli:uid{os.getuid()}"


_ACTOR = click.option("--actor", default=_default_actor, show_default="cli:<login name>",
                      help="Who orders the request (a DPO or ticket reference), for the audit trail.")
_JSON = click.option("--json", "as_json", is_flag=True, help="The result as JSON, for scripts.")


@click.group()
def subject() -> None:
    """Data-subject requests (GDPR art. 15, 17, 20) across every service: export, erase, status."""


# -- export -------------------------------------------------------------------------------------------------

def gather(ctx: Context, jointure: str, bag: SubjectBag, actor: str,
           progress: Callable[[str, bool], object]) -> dict[str, bool]:
    """Each service's export into `bag` (data/<service>.json; the vault's contents under data/vault/items/)."""
    from services.directory import subject as directory
    from services.provisioning import subject as provisioning
    from services.sso import subject as sso
    from services.usage import subject as usage
    from services.vault import subject as vault

    found: dict[str, bool] = {}
    tenant = ctx.settings.tenant
    with ctx.engine.connect() as conn:
        sections: dict[str, Any] = {
            "directory": directory.export(conn, jointure),
            "provisioning": provisioning.export(conn, jointure),
            "sso": sso.export(conn, jointure, _pseudonyms(jointure)),
            "usage": usage.export(conn, tenant, jointure),
        }
    sections["vault"] = vault.export(_vault(ctx, actor), jointure,
                                     lambda name, chunks: bag.add(f"vault/items/{name}", chunks))
    for name, section in sections.items():
        found[name] = _holds(name, section)
        if section is None:
            section = {"note": "this service holds nothing about this person"}
        bag.add(f"{name}.json", [json.dumps(section, indent=2, ensure_ascii=False, default=str).encode("utf-8")])
        progress(name, found[name])
    return found


def _holds(name: str, section: Any) -> bool:
    if section is None:
        return False
    if name == "sso":
        return bool(section["sessions"]) or bool(section["cas_tickets_stored"])
    if name == "usage":
        return bool(section["open_months_activity"])
    if name == "vault":
        return bool(section["items"]) or bool(section["access_log"])
    return True


def _pseudonyms(jointure: str) -> dict[str, str] | None:
    """Per SAML platform, the NameID it knows the person by: with the SSO's configuration and secret, else None."""
    path = os.environ.get("RELAIS_SSO_CONFIG")
    if not path:
        return None
    from services.sso import subject as sso
    from services.sso.config import ConfigError, load_config
    from services.sso.idp.config import parse_idp

    try:
        config = load_config(path)
        idp = parse_idp(config.idp, where=path, base_url=config.base_url)
        secret = config.secret()
    except ConfigError as exc:
        raise click.ClickException(f"the SSO configuration {path} cannot give the platforms' pseudonyms: "
                                   f"{exc}") from None
    return sso.pseudonyms(secret, [(p.id, p.entity_id) for p in idp.platforms] if idp else [], jointure)


def _vault(ctx: Context, actor: str) -> Any:
    from services.vault.items import Vault
    from services.vault.settings import VaultConfigError, VaultSettings

    try:
        settings = VaultSettings.from_env(settings=ctx.settings)
    except VaultConfigError as exc:
        raise click.UsageError(str(exc)) from None
    return Vault(ctx.engine, settings.store_on_first_use(ctx.settings.tenant), actor=actor,
                 retention=settings.default_retention)


# What the bag tells the person (relais/locale: French by default, English with --lang en), one paragraph each.
README = (
    "Your data in Relais",
    "This folder is a BagIt bag (RFC 8493): manifest-sha256.txt holds each file's checksum, and any BagIt tool "
    "checks it. The data/ folder holds what each service of Relais keeps about you:",
    "data/directory.json: your record in the academic directory, your memberships (schools, classes, groups) and "
    "the persons linked to you (legal guardians, children).",
    "data/provisioning.json: the resources and licences given to you, each with its cause, and their history.",
    "data/sso.json: your login sessions still open, the services you logged into, and the pseudonym each "
    "resource platform knows you by.",
    "data/usage.json: the statistics keep only pseudonyms, destroyed when each month closes: after that nothing "
    "can be linked to you.",
    "data/vault.json and data/vault/items/: your documents, calendars and contacts kept, their versions, and who "
    "accessed them.",
)
README_FILE = "README.txt"  # its name: translated too (LISEZMOI.txt in French)


def readme(lang: str) -> tuple[str, bytes]:
    """The bag's explanation for the person, in `lang`: (file name, text)."""
    _ = translator(lang)
    return _(README_FILE), ("\n\n".join(_(part) for part in README) + "\n").encode("utf-8")


@subject.command("export")
@click.argument("jointure")
@click.option("--out", "out", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="A new (or empty) folder for the bag.")
@click.option("--lang", default=DEFAULT_LANGUAGE, show_default=True,
              help="The language of the bag's explanation for the person (fr, en).")
@_ACTOR
@_JSON
@pass_ctx
def export_cmd(ctx: Context, jointure: str, out: Path, lang: str, actor: str, as_json: bool) -> None:
    """Gather what every service holds about JOINTURE into one BagIt bag the person can be given (art. 15, 20)."""
    try:
        translator(lang)
        bag = SubjectBag(out)
    except (BagError, UnknownLanguage) as exc:
        raise click.UsageError(str(exc)) from None

    def progress(name: str, held: bool) -> None:
        if not as_json:
            click.echo(f"{name:<13} {'exported' if held else 'holds nothing about this person'}", err=True)

    found = gather(ctx, jointure, bag, actor, progress)
    name, text = readme(lang)
    bag.add(name, [text])
    bag.finish({"Source-Organization": f"Relais, tenant {ctx.settings.tenant}",
                "External-Description": "Data-subject access and portability export (GDPR art. 15 and 20)",
                "External-Identifier": f"relais-subject-export-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"})
    report = {"bag": str(out), "files": len(bag.manifest), "bytes": bag.bytes, "found": found}
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        held = [s for s, f in found.items() if f]
        click.echo(f"bag written to {out}: {len(bag.manifest)} file(s), {bag.bytes} bytes; data from "
                   f"{', '.join(held) or 'no service'}")
    if not any(found.values()):
        click.echo("no service holds anything about this person (check the jointure)", err=True)
        sys.exit(1)


# -- erase --------------------------------------------------------------------------------------------------

def wait_for_confirmations(ctx: Context, request_id: str, timeout: float,
                           progress: Callable[[str, dict[str, Any]], object] = lambda s, c: None) -> dict[str, Any]:
    """Take in confirmations from relais.q.subject until every expected service confirmed or `timeout` passed."""
    consumer = event_consumer(Consumer(audit.CONSUMER, audit.record_confirmation, batch_size=50), ctx.engine)
    deadline = time.monotonic() + timeout
    seen: set[str] = set()
    while True:
        with ctx.engine.connect() as conn:
            state = audit.status(conn, request_id)
        for service in sorted(set(state["confirmed"]) - seen):
            progress(service, state["confirmed"][service])
            seen.add(service)
        left = deadline - time.monotonic()
        if not state["waiting_for"] or left <= 0:
            return state
        consumer.run(ctx.settings.amqp_uri, idle_timeout=min(0.5, left), max_messages=50)


def _render(state: dict[str, Any]) -> Iterable[str]:
    yield f"request {state['request_id']} by {state['actor']} at {state['requested_at']}"
    for service in state["services"]:
        c = state["confirmed"].get(service)
        if c:
            counts = ", ".join(f"{k} {v}" for k, v in sorted(c["erased"].items()) if v) or "nothing held"
            yield f"  {service:<13} confirmed {c['confirmed_at']}: {counts}"
        else:
            yield f"  {service:<13} NOT CONFIRMED"


@subject.command("erase")
@click.argument("jointure")
@_ACTOR
@click.option("--timeout", type=float, default=120.0, show_default=True,
              help="Seconds to wait for every service's confirmation.")
@_JSON
@pass_ctx
def erase_cmd(ctx: Context, jointure: str, actor: str, timeout: float, as_json: bool) -> None:
    """Erase JOINTURE in every service (art. 17), each confirming over the bus; exit 1 naming any that did not."""
    try:
        key = subject_key(ctx.settings)
    except SubjectKeyError as exc:
        raise click.UsageError(str(exc)) from None
    services = services_erasing()
    request = new_request(jointure, subject_hash(key, ctx.settings.tenant, jointure), ctx.settings.tenant)
    with writer(ctx.engine).begin() as conn:
        audit.record_request(conn, request, actor=actor, services=services)
    sent, _pending, error = relay_now(ctx)
    if error:
        raise click.ClickException(f"request {request.request_id} recorded but not sent yet ({error}); it goes with "
                                   f"the next relay (`relais outbox relay`), then `relais subject status "
                                   f"{request.request_id}`")
    if not as_json:
        click.echo(f"request {request.request_id} sent to {', '.join(services)}; waiting up to {timeout:.0f} s",
                   err=True)

    def progress(service: str, confirmation: dict[str, Any]) -> None:
        if not as_json:
            click.echo(f"  {service} confirmed", err=True)

    state = wait_for_confirmations(ctx, request.request_id, timeout, progress)
    _finish(state, as_json, timeout)


@subject.command("status")
@click.argument("request_id")
@click.option("--wait", type=float, default=2.0, show_default=True,
              help="Seconds to take in confirmations that arrived since.")
@_JSON
@pass_ctx
def status_cmd(ctx: Context, request_id: str, wait: float, as_json: bool) -> None:
    """The audit record of an erasure request: who asked, when, which services confirmed what."""
    try:
        state = wait_for_confirmations(ctx, request_id, wait)
    except audit.UnknownRequest as exc:
        raise click.ClickException(str(exc)) from None
    _finish(state, as_json, None)


def _finish(state: dict[str, Any], as_json: bool, timeout: float | None) -> None:
    waiting = state["waiting_for"]
    if as_json:
        click.echo(json.dumps({**state, "completed": not waiting, "directory_note": DIRECTORY_NOTE}, indent=2,
                              ensure_ascii=False))
    else:
        for line in _render(state):
            click.echo(line)
        click.echo(DIRECTORY_NOTE)
    if waiting:
        after = f" within {timeout:.0f} s" if timeout is not None else ""
        click.echo(f"not confirmed{after} by: {', '.join(waiting)}. Is `relais serve` running for each? Their "
                   f"requests wait in relais.q.<service>-subject (or its dead-letter queue: `relais status`); "
                   f"then run `relais subject status {state['request_id']}`", err=True)
        sys.exit(1)
