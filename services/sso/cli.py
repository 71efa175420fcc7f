"""`relais sso …` commands."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import click

from relais.commands import Context, pass_ctx
from relais.db import writer

from .config import ConfigError, SsoConfig, load_config
from .idp.config import IdentityProviderSettings, parse_idp
from .idp.messages import idp_metadata as render_idp_metadata
from .idp.nameid_secret import accept_secret, recorded_secret
from .oidc.config import OidcSettings, parse_oidc
from .oidc.store import purge as purge_oidc
from .rules.pseudonyms import secret_fingerprint
from .saml.xml import Refused
from .sessions import purge_expired
from .sp.config import SamlSettings, parse_saml
from .sp.messages import sp_metadata
from .sp.store import purge as purge_saml
from .sp.trusted_idps import IdpSource

_CONFIG = click.option("--config", "config_path", envvar="RELAIS_SSO_CONFIG", required=True,
                       type=click.Path(exists=True, dir_okay=False, path_type=Path),
                       help="The SSO configuration (YAML or JSON); default $RELAIS_SSO_CONFIG.")


@click.group()
def sso() -> None:
    """Single sign-on: SSO sessions, the CAS server for the ENT's apps, the SAML SP towards national IdPs,
    the SAML IdP towards resource platforms."""


def _load(path: Path) -> SsoConfig:
    try:
        return load_config(path)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


@sso.command("check-config")
@click.argument("path", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True)
@click.option("--offline", is_flag=True, help="Do not fetch IdP metadata from its URL (files are still read).")
def check_config(path: Path, as_json: bool, offline: bool) -> None:
    """Check an SSO configuration; every problem is listed with where it is (exit 1 if any).

    The saml section is checked too: key files (readable, matching their certificate, not expired) and each
    IdP's metadata (read, signature verified when certificates are configured, not expired).
    """
    try:
        config = load_config(path)
        sections: dict[str, Any] = {}
        section_problems: list[str] = []
        parsers: tuple[tuple[str, Any], ...] = (("saml", parse_saml), ("idp", parse_idp), ("oidc", parse_oidc))
        for name, parse_section in parsers:  # every section's problems at once
            try:
                sections[name] = parse_section(getattr(config, name), where=str(path), base_url=config.base_url)
            except ConfigError as exc:
                section_problems += exc.problems
        if section_problems:
            raise ConfigError(section_problems)
    except ConfigError as exc:
        if as_json:
            click.echo(json.dumps({"ok": False, "problems": exc.problems}, ensure_ascii=False))
        else:
            click.echo(str(exc), err=True)
        sys.exit(1)
    saml, idp = sections["saml"], sections["idp"]
    summary: dict[str, Any] = {"ok": True, "base_url": config.base_url, "services": [s.id for s in config.services],
                               "lifetimes": vars(config.lifetimes), "cookie_secure": config.cookie.secure,
                               "allow_http_callbacks": config.allow_http_callbacks, "secret_env": config.secret_env,
                               "saml": None, "idp": None, "oidc": None}
    warnings: list[str] = []
    if not config.cookie.secure or config.allow_http_callbacks:
        warnings.append("cookie.secure is off or allow_http_callbacks is on: for local tests only")
    problems: list[str] = []
    if saml is not None:
        summary["saml"] = _saml_summary(saml, str(path), offline, problems, warnings)
    if idp is not None:
        summary["idp"] = _idp_summary(idp, str(path), warnings)
    if sections["oidc"] is not None:
        summary["oidc"] = _oidc_summary(sections["oidc"], str(path), warnings)
    summary["warnings"] = warnings
    if problems:
        summary.update(ok=False, problems=problems)
    if as_json:
        click.echo(json.dumps(summary, ensure_ascii=False, default=str))
    else:
        for problem in problems:
            click.echo(f"error: {problem}", err=True)
        if not problems:
            idps = ", ".join(i["id"] for i in (summary["saml"] or {}).get("idps", [])) or "none"
            platforms = ", ".join(p["id"] for p in (summary["idp"] or {}).get("platforms", [])) or "none"
            clients = ", ".join(c["id"] for c in (summary["oidc"] or {}).get("clients", [])) or "none"
            click.echo(f"{path}: OK, {len(config.services)} CAS service(s): {', '.join(summary['services']) or 'none'}"
                       f"; SAML IdP(s): {idps}; resource platform(s): {platforms}; OIDC client(s): {clients}")
        for warning in warnings:
            click.echo(f"warning: {warning}", err=True)
    sys.exit(1 if problems else 0)


def _saml_summary(saml: SamlSettings, where: str, offline: bool, problems: list[str],
                  warnings: list[str]) -> dict[str, Any]:
    """Our keys and every IdP's metadata, as check-config reports them."""
    now = datetime.now(UTC)
    soon = now + timedelta(days=30)
    keys = []
    for key in saml.keys:
        cert = key.certificate
        keys.append({"id": key.id, "signing": key.signing, "encryption": key.encryption,
                     "signs_requests": key is saml.signing_key, "not_after": cert.not_after.isoformat(),
                     "sha256": cert.sha256})
        if cert.not_after <= soon:
            warnings.append(f"{where}: saml.keys ({key.id}): certificate expires on {cert.not_after:%Y-%m-%d}; "
                            "publish a new key (see the README's key rollover)")
    idps = []
    for idp in saml.idps:
        entry: dict[str, Any] = {"id": idp.id, "kind": idp.kind, "source": idp.source, "entity_id": None,
                                 "valid_until": None, "signature_checked": None, "signing_certificates": [],
                                 "error": None}
        if offline and idp.metadata_url:
            entry["error"] = "not fetched (--offline)"
        else:
            source = IdpSource(idp)
            try:
                if not source.refresh(now, force=True):
                    raise Refused("idp-unavailable", source.last_error or "no metadata")
                md = source.current(now)
            except Refused as exc:
                entry["error"] = exc.detail
                problems.append(f"{where}: saml.idps ({idp.id}): {exc.detail}")
            else:
                entry.update(entity_id=md.entity_id, valid_until=md.valid_until and md.valid_until.isoformat(),
                             signature_checked=md.signature_checked, single_logout=md.endpoint("slo") is not None,
                             signing_certificates=[{"sha256": c.sha256, "not_after": c.not_after.isoformat()}
                                                   for c in md.signing_certificates])
                if md.valid_until is not None and md.valid_until <= soon:
                    warnings.append(f"{where}: saml.idps ({idp.id}): metadata valid until {md.valid_until:%Y-%m-%d}")
                if not md.signature_checked and idp.metadata_url:
                    warnings.append(f"{where}: saml.idps ({idp.id}): metadata from a URL without "
                                    "metadata_certificates: its integrity rests on TLS alone")
        idps.append(entry)
    return {"entity_id": saml.entity_id, "acs": saml.acs_url, "slo": saml.slo_url, "keys": keys, "idps": idps}


def _idp_summary(idp: IdentityProviderSettings, where: str, warnings: list[str]) -> dict[str, Any]:
    """Our IdP keys and every platform, as check-config reports them."""
    now = datetime.now(UTC)
    soon = now + timedelta(days=30)
    keys = []
    for key in idp.keys:
        cert = key.certificate
        keys.append({"id": key.id, "signing": key.signing, "signs_assertions": key is idp.signing_key,
                     "not_after": cert.not_after.isoformat(), "sha256": cert.sha256})
        if cert.not_after <= soon:
            warnings.append(f"{where}: idp.keys ({key.id}): certificate expires on {cert.not_after:%Y-%m-%d}; "
                            "publish a new key (see the sso README, 'SAML identity provider')")
    platforms = []
    for p in idp.platforms:
        md = p.metadata
        platforms.append({"id": p.id, "entity_id": p.entity_id, "metadata_file": str(p.metadata_file),
                          "acs": [e.location for e in md.acs], "nameid_format": p.name_id_format.rsplit(":", 1)[-1],
                          "attributes": [r.saml_name for r in p.releases], "encrypt_assertions": p.encrypt_assertions,
                          "require_signed_requests": p.require_signed_requests, "idp_initiated": p.idp_initiated,
                          "valid_until": md.valid_until and md.valid_until.isoformat()})
        if md.valid_until is not None and md.valid_until <= soon:
            warnings.append(f"{where}: idp.platforms ({p.id}): metadata valid until {md.valid_until:%Y-%m-%d}")
        if not md.signing_certificates:
            warnings.append(f"{where}: idp.platforms ({p.id}): no signing key in its metadata: its AuthnRequests "
                            "cannot be authenticated (anyone can ask for a login to its registered ACS)")
    return {"entity_id": idp.entity_id, "sso": idp.sso_url, "metadata": idp.metadata_url, "keys": keys,
            "platforms": platforms}


def _oidc_summary(oidc: OidcSettings, where: str, warnings: list[str]) -> dict[str, Any]:
    """Our OIDC signing keys and every client, as check-config reports them."""
    clients = []
    for c in oidc.clients.values():
        clients.append({"id": c.id, "public": c.public, "redirect_uris": list(c.redirect_uris),
                        "post_logout_redirect_uris": list(c.post_logout_redirect_uris), "scopes": list(c.scopes),
                        "claims": list(c.claims), "sector": c.sector, "backchannel_logout": c.backchannel_logout_uri})
        if "offline_access" in c.scopes and c.public:
            warnings.append(f"{where}: oidc.clients ({c.id}): a public client with refresh tokens (offline_access): "
                            "they are rotated, but a confidential client keeps them safer")
    return {"issuer": oidc.issuer, "signing_key": oidc.signing_key.id,
            "keys": [{"id": k.id, "alg": k.alg} for k in oidc.keys], "lifetimes": vars(oidc.lifetimes),
            "clients": clients}


@sso.command("metadata")
@_CONFIG
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
def metadata(config_path: Path, out: Path | None) -> None:
    """Print our SAML SP metadata (every published key, ACS, SLO), signed, for the IdPs' administrators."""
    config = _load(config_path)
    try:
        saml = parse_saml(config.saml, where=str(config_path), base_url=config.base_url)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if saml is None:
        raise click.ClickException(f"{config_path}: no saml section: the SAML SP is not configured")
    document = sp_metadata(saml)
    if out is None:
        click.echo(document.decode())
    else:
        out.write_bytes(document)
        click.echo(f"SP metadata written to {out}", err=True)


def _idp_settings(config: SsoConfig, config_path: Path) -> IdentityProviderSettings:
    try:
        idp = parse_idp(config.idp, where=str(config_path), base_url=config.base_url)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if idp is None:
        raise click.ClickException(f"{config_path}: no idp section: the SAML identity provider is not configured")
    return idp


@sso.command("idp-metadata")
@_CONFIG
@click.option("--out", "out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write to this file instead of standard output.")
def idp_metadata(config_path: Path, out: Path | None) -> None:
    """Print our SAML IdP metadata (every published key, SSO endpoints), signed, for the platforms' administrators."""
    document = render_idp_metadata(_idp_settings(_load(config_path), config_path))
    if out is None:
        click.echo(document.decode())
    else:
        out.write_bytes(document)
        click.echo(f"IdP metadata written to {out}", err=True)


@sso.command("idp-secret")
@_CONFIG
@click.option("--accept-change", is_flag=True,
              help="Derive NameIDs from the current secret from now on: every person gets a new identifier on "
                   "every platform.")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def idp_secret(ctx: Context, config_path: Path, accept_change: bool, as_json: bool) -> None:
    """Which deployment secret the pseudonymous NameIDs derive from (by fingerprint), and accepting a new one.

    Exit status 0 when the secret in the environment is the recorded one (or none is recorded yet), 1 when it
    differs and --accept-change was not given.
    """
    config = _load(config_path)
    _idp_settings(config, config_path)
    try:
        secret = config.secret()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    current = secret_fingerprint(secret)
    with writer(ctx.engine).begin() as conn:
        before = recorded_secret(conn)
        after = accept_secret(conn, secret, datetime.now(UTC))[1] if accept_change else before
    matches = after is None or after.fingerprint == current
    report = {"environment_fingerprint": current[:16],
              "recorded_fingerprint": after.fingerprint[:16] if after else None,
              "recorded_since": after.since.isoformat() if after else None,
              "previous_fingerprint": (after.previous_fingerprint or "")[:16] or None if after else None,
              "matches": matches, "changed": bool(accept_change and (before is None or before.fingerprint != current))}
    if as_json:
        click.echo(json.dumps(report))
    elif after is None:
        click.echo(f"no NameID issued yet; the first one will record the secret of {config.secret_env} "
                   f"(fingerprint {current[:16]})")
    elif report["changed"]:
        click.echo(f"NameIDs now derive from the secret of {config.secret_env} (fingerprint {current[:16]}); "
                   f"every person has a new identifier on every platform", err=True)
    elif matches:
        click.echo(f"NameIDs derive from the secret of {config.secret_env} (fingerprint {current[:16]}, since "
                   f"{after.since:%Y-%m-%d %H:%M} UTC)")
    else:
        click.echo(f"error: {config.secret_env} holds another secret (fingerprint {current[:16]}) than the one NameIDs "
                   f"derive from since {after.since:%Y-%m-%d %H:%M} UTC (fingerprint {after.fingerprint[:16]}); the "
                   "IdP answers nothing until you restore it or run this command with --accept-change", err=True)
    sys.exit(0 if matches else 1)


@sso.command("purge")
@click.option("--json", "as_json", is_flag=True)
@pass_ctx
def purge(ctx: Context, as_json: bool) -> None:
    """Delete expired tickets, sessions past their end, expired replay-cache entries, SAML requests and OIDC codes
    and tokens."""
    with writer(ctx.engine).begin() as conn:
        n = purge_expired(conn, datetime.now(UTC))
        saml = purge_saml(conn, datetime.now(UTC))
        oidc = purge_oidc(conn, datetime.now(UTC))
    click.echo(json.dumps({"sessions_deleted": n, "saml_rows_deleted": saml, "oidc_rows_deleted": oidc}) if as_json
               else f"{n} expired session(s) deleted, {saml} SAML request/choice/link row(s), "
                    f"{oidc} OIDC code/token row(s)")
