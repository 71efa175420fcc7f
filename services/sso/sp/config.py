"""The `saml:` section of the SSO configuration: our SP and the national IdPs we trust.

```yaml
saml:
  entity_id: https://ent.example.org/saml/metadata   # default: {base_url}/saml/metadata
  keys:                                  # our key pairs; several at once during a rollover
    - id: sp-2025
      key_file: /etc/relais/sp-2025.key  # PEM, unencrypted, readable only by the service
      cert_file: /etc/relais/sp-2025.crt
    - {id: sp-2026, key_file: ..., cert_file: ..., signing: false}   # published, decrypts, does not sign yet
  signing_key: sp-2025                   # default: the first key with signing: true
  clock_skew: 120                        # seconds of clock difference tolerated with the IdPs
  request_lifetime: 600                  # seconds a user may take at the IdP
  want_assertions_encrypted: false       # true: refuse assertions that are not encrypted (per IdP too)
  service_name: ENT                      # AttributeConsumingService name in our metadata
  requested_attributes: [FrEduCtId, FrEduCtRefId, FrEduVecteur, FrEduUrlRetour]
  contact_email: dsi@ac-example.fr       # technical contact in our metadata
  idps:
    - id: educonnect                     # also the sessions' auth_source
      kind: educonnect                   # educonnect | agents: which attributes identify the account
      label: "Élève ou parent (ÉduConnect)"
      metadata_url: https://educonnect.education.gouv.fr/idp/metadata   # or metadata_file:
      metadata_certificates: [/etc/relais/educonnect-metadata.crt]     # then metadata must be signed by one
      entity_id: null                    # required when the metadata holds several entities
      refresh_interval: 3600             # seconds between metadata refreshes (cacheDuration may shorten it)
      want_assertions_signed: true       # the assertion itself must be signed (not only the response)
      allow_legacy_algorithms: false     # true: accept SHA-1 signatures and 3DES encryption (old IdPs)
      return_url_hosts: []               # hosts FrEduUrlRetour may point to; default: the IdP's own hosts
      email_attribute: mail              # agents: the attribute holding the academic e-mail
```

`parse_saml(raw, where=..., base_url=...)` checks everything at once and raises
`ConfigError` listing every problem with where it is; key and certificate files
are read and checked here (a key that does not match its certificate, an
expired certificate), metadata is read later by `trusted_idps.py`. What this
section shares with the `idp:` one is checked by saml/config_checks.py.
Relative file paths are relative to the working directory of the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ..config import ConfigError
from ..rules.national_attributes import ATTRIBUTE_OIDS
from ..saml.config_checks import contact_email, entries, flag, is_int, key_pairs, seconds, signing_key_of
from ..saml.keys import Certificate, KeyPair

IDP_KINDS = ("educonnect", "agents")
_TOP = {"entity_id", "keys", "signing_key", "clock_skew", "request_lifetime", "want_assertions_encrypted",
        "service_name", "requested_attributes", "contact_email", "idps"}
_IDP = {"id", "kind", "label", "metadata_url", "metadata_file", "metadata_certificates", "entity_id",
        "refresh_interval", "want_assertions_signed", "want_assertions_encrypted", "allow_legacy_algorithms",
        "return_url_hosts",
        "email_attribute"}


@dataclass(frozen=True)
class IdpSettings:
    """One trusted national IdP, as configured (its metadata is loaded by trusted_idps.py)."""

    id: str
    kind: str
    label: str
    metadata_url: str | None = None
    metadata_file: Path | None = None
    metadata_certificates: tuple[Certificate, ...] = ()
    entity_id: str | None = None
    refresh_interval: int = 3600
    want_assertions_signed: bool = False
    want_assertions_encrypted: bool = False
    allow_legacy_algorithms: bool = False
    return_url_hosts: tuple[str, ...] = ()
    email_attribute: str = "mail"

    @property
    def source(self) -> str:
        return self.metadata_url or str(self.metadata_file)


@dataclass(frozen=True)
class SamlSettings:
    entity_id: str
    base_url: str
    keys: tuple[KeyPair, ...]
    signing_key: KeyPair
    idps: tuple[IdpSettings, ...]
    clock_skew: int = 120
    request_lifetime: int = 600
    want_assertions_encrypted: bool = False
    service_name: str = "ENT"
    requested_attributes: tuple[str, ...] = ()
    contact_email: str | None = None

    @property
    def acs_url(self) -> str:
        return f"{self.base_url}/saml/acs"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/saml/slo"

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/saml/metadata"

    def idp(self, idp_id: str) -> IdpSettings | None:
        return next((i for i in self.idps if i.id == idp_id), None)


def parse_saml(raw: Any, *, where: str, base_url: str, now: datetime | None = None) -> SamlSettings | None:
    """Check the `saml:` section; None when it is empty (no SAML login configured)."""
    if not raw:
        return None
    at = f"{where}: saml"
    problems: list[str] = []
    if not isinstance(raw, dict):
        raise ConfigError([f"{at}: must be a mapping"])
    now = now or datetime.now(UTC)
    for key in sorted(set(raw) - _TOP):
        problems.append(f"{at}: unknown key {key!r} (known: {', '.join(sorted(_TOP))})")
    entity_id = raw.get("entity_id", f"{base_url}/saml/metadata")
    if not isinstance(entity_id, str) or not entity_id or len(entity_id) > 1024:
        problems.append(f"{at}.entity_id: a URI of at most 1024 characters is required")
    keys = key_pairs(raw.get("keys"), f"{at}.keys", problems, now)
    signing_key = signing_key_of(raw, keys, "saml", at, problems)
    numbers = seconds(raw, at, problems, ("clock_skew", 120, 0, 600), ("request_lifetime", 600, 30, 3600))
    encrypted = flag(raw, "want_assertions_encrypted", False, at, problems)
    service_name = raw.get("service_name", "ENT")
    if not isinstance(service_name, str) or not service_name.strip():
        problems.append(f"{at}.service_name: a non-empty string is required")
    requested = raw.get("requested_attributes", [])
    if not isinstance(requested, list) or not all(isinstance(a, str) and a for a in requested):
        problems.append(f"{at}.requested_attributes: a list of attribute names is required")
        requested = []
    else:
        for name in requested:
            if name not in ATTRIBUTE_OIDS and not name.startswith("urn:"):
                problems.append(f"{at}.requested_attributes: {name!r} is neither a known attribute "
                                f"({', '.join(sorted(ATTRIBUTE_OIDS))}) nor a urn:")
    contact = contact_email(raw, at, problems)
    idps = _idps(raw.get("idps"), f"{at}.idps", problems, encrypted, now)
    if problems:
        raise ConfigError(problems)
    assert signing_key is not None  # keys are required and one of them signs, else a problem was noted
    return SamlSettings(entity_id=entity_id, base_url=base_url.rstrip("/"), keys=keys, signing_key=signing_key,
                        idps=idps, clock_skew=numbers["clock_skew"], request_lifetime=numbers["request_lifetime"],
                        want_assertions_encrypted=encrypted, service_name=service_name,
                        requested_attributes=tuple(requested), contact_email=contact)


def _idps(raw: Any, at: str, problems: list[str], encrypted_default: bool,
          now: datetime) -> tuple[IdpSettings, ...]:
    if not isinstance(raw, list) or not raw:
        problems.append(f"{at}: a list of at least one identity provider is required")
        return ()
    out: list[IdpSettings] = []
    for here, idp_id, item in entries(raw, at, problems, _IDP):
        kind = item.get("kind")
        if kind not in IDP_KINDS:
            problems.append(f"{here}: kind: one of {', '.join(IDP_KINDS)} is required, got {kind!r}")
        label = item.get("label", idp_id)
        if not isinstance(label, str) or not label.strip():
            problems.append(f"{here}: label: a non-empty string is required")
        url, path = item.get("metadata_url"), item.get("metadata_file")
        if (url is None) == (path is None):
            problems.append(f"{here}: exactly one of metadata_url, metadata_file is required")
        certs: list[Certificate] = []
        raw_certs = item.get("metadata_certificates", [])
        if not isinstance(raw_certs, list):
            problems.append(f"{here}: metadata_certificates: a list of PEM certificate files is required")
            raw_certs = []
        for cert_path in raw_certs:
            try:
                certs.append(Certificate.from_pem(Path(cert_path).read_bytes()))
            except (OSError, ValueError, TypeError) as exc:
                problems.append(f"{here}: metadata_certificates: {cert_path}: cannot read a PEM certificate ({exc})")
        if url is not None:
            parts = urlsplit(url) if isinstance(url, str) else None
            loopback = parts is not None and parts.hostname in ("127.0.0.1", "localhost", "::1")
            if parts is None or parts.scheme not in ("https", "http") or not parts.hostname:
                problems.append(f"{here}: metadata_url: an http(s) URL is required, got {url!r}")
            elif parts.scheme == "http" and not certs and not loopback:
                problems.append(f"{here}: metadata_url: plain http needs metadata_certificates (signed metadata), "
                                "or use https")
        if path is not None and not (isinstance(path, str) and Path(path).is_file()):
            problems.append(f"{here}: metadata_file: {path!r} is not a readable file")
        entity_id = item.get("entity_id")
        if entity_id is not None and not (isinstance(entity_id, str) and entity_id):
            problems.append(f"{here}: entity_id: a non-empty string is required")
        refresh = item.get("refresh_interval", 3600)
        if not is_int(refresh) or not 60 <= refresh <= 7 * 86400:
            problems.append(f"{here}: refresh_interval: an integer from 60 to 604800 (seconds) is required, "
                            f"got {refresh!r}")
            refresh = 3600
        hosts = item.get("return_url_hosts", [])
        if not isinstance(hosts, list) or not all(isinstance(h, str) and h and "/" not in h for h in hosts):
            problems.append(f"{here}: return_url_hosts: a list of host names is required")
            hosts = []
        email_attribute = item.get("email_attribute", "mail")
        if not isinstance(email_attribute, str) or not email_attribute:
            problems.append(f"{here}: email_attribute: an attribute name is required")
        out.append(IdpSettings(
            id=idp_id, kind=kind if kind in IDP_KINDS else "educonnect", label=label if isinstance(label, str) else "",
            metadata_url=url if isinstance(url, str) else None,
            metadata_file=Path(path) if isinstance(path, str) else None, metadata_certificates=tuple(certs),
            entity_id=entity_id, refresh_interval=refresh,
            want_assertions_signed=flag(item, "want_assertions_signed", False, here, problems),
            want_assertions_encrypted=flag(item, "want_assertions_encrypted", encrypted_default, here, problems),
            allow_legacy_algorithms=flag(item, "allow_legacy_algorithms", False, here, problems),
            return_url_hosts=tuple(h.lower() for h in hosts), email_attribute=email_attribute))
    return tuple(out)
