"""The `idp:` section of the SSO configuration: our SAML identity provider and the platforms it serves.

```yaml
idp:
  entity_id: https://ent.example.org/idp/metadata   # default: {base_url}/idp/metadata; never change it once used
  keys:                                  # our signing key pairs; several at once for a rollover
    - id: idp-2025
      key_file: /etc/relais/idp-2025.key # PEM, unencrypted, readable only by the service
      cert_file: /etc/relais/idp-2025.crt
    - {id: idp-2026, key_file: ..., cert_file: ..., signing: false}   # published ahead, not signing yet
  signing_key: idp-2025                  # default: the first key with signing: true
  clock_skew: 120                        # seconds of clock difference tolerated in AuthnRequests' IssueInstant
  request_lifetime: 600                  # seconds an AuthnRequest stays good (the user may log in meanwhile)
  assertion_lifetime: 300                # seconds our assertions are valid
  want_authn_requests_signed: false      # true: every platform must sign its AuthnRequests
  contact_email: dsi@ac-example.fr       # technical contact in our metadata
  platforms:
    - id: maths-en-ligne                 # also in the IdP-initiated URL /idp/launch/maths-en-ligne
      label: Maths en ligne
      metadata_file: /etc/relais/platforms/maths.xml   # the platform's SAML metadata (its ACS URLs, keys)
      entity_id: null                    # required when the file holds several service providers
      nameid_format: persistent          # persistent (pseudonymous, stable) or transient (new at each login)
      attributes: [GARPersonProfils, GARPersonEtab, {attribute: sn, name: "urn:oid:2.5.4.4"}]  # default: none
      encrypt_assertions: null           # default: when the metadata has an encryption key; true: required
      require_signed_requests: false     # also required when the metadata says AuthnRequestsSigned
      idp_initiated: true                # may the ENT open the platform with an unsolicited response
```

`parse_idp(raw, where=..., base_url=...)` checks everything at once and raises
`ConfigError` listing every problem with where it is: key files are read and
matched with their certificates, each platform's metadata is read here (a
platform never logs anyone in from metadata that did not load).
Relative file paths are relative to the working directory of the service.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from ..config import ConfigError
from ..rules.platform_attributes import RELEASABLE, AttributeRelease
from ..saml.config_checks import contact_email, entries, flag, key_pairs, optional_flag, seconds, signing_key_of
from ..saml.encryption import CIPHERS
from ..saml.keys import KeyPair
from ..saml.xml import Refused
from .platforms import NAMEID_FORMATS, Platform, read_sp_metadata

_SAML_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.:/#-]{0,255}")
_TOP = {"entity_id", "keys", "signing_key", "clock_skew", "request_lifetime", "assertion_lifetime",
        "want_authn_requests_signed", "contact_email", "platforms"}
_PLATFORM = {"id", "label", "metadata_file", "entity_id", "nameid_format", "attributes", "encrypt_assertions",
             "require_signed_requests", "idp_initiated"}


@dataclass(frozen=True)
class IdentityProviderSettings:
    entity_id: str
    base_url: str
    keys: tuple[KeyPair, ...]
    signing_key: KeyPair
    platforms: tuple[Platform, ...]
    clock_skew: int = 120
    request_lifetime: int = 600
    assertion_lifetime: int = 300
    want_authn_requests_signed: bool = False
    contact_email: str | None = None

    @property
    def sso_url(self) -> str:
        return f"{self.base_url}/idp/sso"

    @property
    def slo_url(self) -> str:
        return f"{self.base_url}/idp/slo"

    @property
    def metadata_url(self) -> str:
        return f"{self.base_url}/idp/metadata"

    def platform(self, platform_id: str) -> Platform | None:
        return next((p for p in self.platforms if p.id == platform_id), None)

    def platform_for(self, entity_id: str | None) -> Platform | None:
        """The registered platform with this entityID, or None."""
        return next((p for p in self.platforms if p.entity_id == entity_id), None) if entity_id else None


def parse_idp(raw: Any, *, where: str, base_url: str, now: datetime | None = None
              ) -> IdentityProviderSettings | None:
    """Check the `idp:` section; None when it is empty (no SAML IdP configured)."""
    if not raw:
        return None
    at = f"{where}: idp"
    if not isinstance(raw, dict):
        raise ConfigError([f"{at}: must be a mapping"])
    now = now or datetime.now(UTC)
    problems: list[str] = []
    for key in sorted(set(raw) - _TOP):
        problems.append(f"{at}: unknown key {key!r} (known: {', '.join(sorted(_TOP))})")
    base_url = base_url.rstrip("/")
    entity_id = raw.get("entity_id", f"{base_url}/idp/metadata")
    if not isinstance(entity_id, str) or not entity_id or len(entity_id) > 1024:
        problems.append(f"{at}.entity_id: a URI of at most 1024 characters is required")
    keys = key_pairs(raw.get("keys"), f"{at}.keys", problems, now, roles=("signing",))
    signing_key = signing_key_of(raw, keys, "idp", at, problems)
    numbers = seconds(raw, at, problems, ("clock_skew", 120, 0, 600), ("request_lifetime", 600, 60, 3600),
                      ("assertion_lifetime", 300, 30, 3600))
    signed_requests = flag(raw, "want_authn_requests_signed", False, at, problems)
    contact = contact_email(raw, at, problems)
    platforms = _platforms(raw.get("platforms"), f"{at}.platforms", problems, signed_requests, entity_id, now)
    if problems:
        raise ConfigError(problems)
    assert signing_key is not None  # keys are required and one of them signs, else a problem was noted
    return IdentityProviderSettings(
        entity_id=entity_id, base_url=base_url, keys=keys, signing_key=signing_key, platforms=platforms,
        clock_skew=numbers["clock_skew"], request_lifetime=numbers["request_lifetime"],
        assertion_lifetime=numbers["assertion_lifetime"], want_authn_requests_signed=signed_requests,
        contact_email=contact)


def _platforms(raw: Any, at: str, problems: list[str], signed_requests: bool, our_entity_id: Any,
               now: datetime) -> tuple[Platform, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        problems.append(f"{at}: must be a list")
        return ()
    out: list[Platform] = []
    for here, platform_id, item in entries(raw, at, problems, _PLATFORM):
        label = item.get("label", platform_id)
        if not isinstance(label, str) or not label.strip():
            problems.append(f"{here}: label: a non-empty string is required")
            label = platform_id
        fmt = item.get("nameid_format", "persistent")
        if fmt not in NAMEID_FORMATS:
            problems.append(f"{here}: nameid_format: persistent or transient, got {fmt!r}")
            fmt = "persistent"
        releases = _releases(item.get("attributes", []), f"{here}.attributes", problems)
        encrypt = optional_flag(item, "encrypt_assertions", here, problems)
        require_signed = flag(item, "require_signed_requests", False, here, problems)
        idp_initiated = flag(item, "idp_initiated", True, here, problems)
        entity_id = item.get("entity_id")
        if entity_id is not None and not (isinstance(entity_id, str) and entity_id):
            problems.append(f"{here}: entity_id: a non-empty string is required")
            entity_id = None
        path = item.get("metadata_file")
        if not isinstance(path, str) or not path:
            problems.append(f"{here}: metadata_file: the path of the platform's SAML metadata is required")
            continue
        try:
            document = Path(path).read_bytes()
        except OSError as exc:
            problems.append(f"{here}: metadata_file: cannot read {path}: {exc.strerror or exc}")
            continue
        try:
            metadata = read_sp_metadata(document, where=path, now=now, entity_id=entity_id)
        except Refused as exc:
            problems.append(f"{here}: {exc.detail}")
            continue
        if metadata.entity_id == our_entity_id:
            problems.append(f"{here}: the platform's entityID is our own IdP's")
        if any(p.entity_id == metadata.entity_id for p in out):
            problems.append(f"{here}: entityID {metadata.entity_id} is already registered by another platform")
        cipher = CIPHERS[0]
        if encrypt is not False and metadata.encryption_certificates:
            listed = metadata.encryption_methods
            common = [c for c in CIPHERS if not listed or c in listed]
            if common:
                cipher = common[0]
            elif encrypt:
                problems.append(f"{here}: encrypt_assertions: the metadata lists no cipher we support "
                                f"({', '.join(CIPHERS)})")
            else:
                encrypt = False  # auto: the platform cannot decrypt what we can write
        if (require_signed or signed_requests or metadata.authn_requests_signed) and not metadata.signing_certificates:
            problems.append(f"{here}: its AuthnRequests must be signed, but the metadata ({path}) has no signing key")
        if encrypt and not metadata.encryption_certificates:
            problems.append(f"{here}: encrypt_assertions: true, but the metadata ({path}) has no encryption key")
        out.append(Platform(
            id=platform_id, label=label, metadata_file=Path(path), metadata=metadata, releases=releases,
            name_id_format=NAMEID_FORMATS[fmt],
            encrypt_assertions=bool(metadata.encryption_certificates) if encrypt is None else bool(encrypt),
            cipher=cipher, require_signed_requests=bool(require_signed or signed_requests
                                                        or metadata.authn_requests_signed),
            idp_initiated=bool(idp_initiated)))
    return tuple(out)


def _releases(raw: Any, at: str, problems: list[str]) -> tuple[AttributeRelease, ...]:
    if not isinstance(raw, list):
        problems.append(f"{at}: a list of attribute names (or {{attribute, name}} mappings) is required")
        return ()
    out: list[AttributeRelease] = []
    for n, item in enumerate(raw):
        attribute: Any
        name: Any
        if isinstance(item, str):
            attribute, name = item, item
        elif isinstance(item, dict) and set(item) <= {"attribute", "name"} and "attribute" in item:
            attribute, name = item.get("attribute"), item.get("name", item.get("attribute"))
        else:
            problems.append(f"{at}[{n}]: an attribute name, or a mapping {{attribute: ..., name: ...}}, is required, "
                            f"got {item!r}")
            continue
        if attribute not in RELEASABLE:
            problems.append(f"{at}[{n}]: {attribute!r} is not an attribute we can release "
                            f"(known: {', '.join(RELEASABLE)})")
            continue
        if not isinstance(name, str) or not _SAML_NAME.fullmatch(name):
            problems.append(f"{at}[{n}]: name: letters, digits and _ . : / # - are allowed, got {name!r}")
            continue
        if any(r.saml_name == name for r in out):
            problems.append(f"{at}[{n}]: {name!r} is released twice")
            continue
        out.append(AttributeRelease(attribute, name))
    return tuple(out)
