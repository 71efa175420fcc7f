"""Resource platforms our SAML IdP answers: their metadata, read safely, and what we know of each.

A platform is a SAML service provider registered in the `idp:` configuration
with its metadata file. From the metadata we take only what the IdP needs:

- the assertion consumer services with the HTTP-POST binding (the only one we
  answer with); a response is only ever posted to one of these URLs;
- the single logout services (HTTP-Redirect or HTTP-POST), where our answers to
  its LogoutRequests go;
- the signing certificates (AuthnRequests and LogoutRequests are verified
  against them, never against a KeyInfo in the message) and the encryption
  certificates;
- `AuthnRequestsSigned` (then unsigned requests are refused), the NameID
  formats and encryption methods it declares.

`read_sp_metadata` is pure (bytes in, `SpMetadata` out) and raises
`Refused("metadata-…", detail)` naming the file and what is wrong; parsing
refuses DTDs, entities and network access (saml/xml.py parse).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ..rules.platform_attributes import AttributeRelease
from ..saml.encryption import CIPHERS
from ..saml.keys import Certificate
from ..saml.metadata import SAML2_PROTOCOL, Endpoint, metadata_root, the_entity
from ..saml.xml import BINDING_POST, BINDING_REDIRECT, DS, MD, Refused, parse_instant

MAX_SP_METADATA_BYTES = 5 * 1024 * 1024

NAMEID_PERSISTENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"
NAMEID_TRANSIENT = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
NAMEID_UNSPECIFIED = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
NAMEID_FORMATS = {"persistent": NAMEID_PERSISTENT, "transient": NAMEID_TRANSIENT}

@dataclass(frozen=True)
class AcsEndpoint:
    """One AssertionConsumerService of a platform (HTTP-POST binding)."""

    location: str
    index: int | None
    is_default: bool | None


@dataclass(frozen=True)
class SpMetadata:
    entity_id: str
    acs: tuple[AcsEndpoint, ...]  # HTTP-POST ones only, in document order
    slo: tuple[Endpoint, ...]  # SingleLogoutService, HTTP-Redirect and HTTP-POST ones
    signing_certificates: tuple[Certificate, ...]
    encryption_certificates: tuple[Certificate, ...]
    encryption_methods: tuple[str, ...]  # as the metadata lists them (empty: any)
    authn_requests_signed: bool
    want_assertions_signed: bool
    name_id_formats: tuple[str, ...]
    valid_until: datetime | None

    @property
    def default_acs(self) -> AcsEndpoint:
        """SAML metadata 2.2.3: the endpoint marked isDefault, else the first not marked false, else the first."""
        for endpoint in self.acs:
            if endpoint.is_default:
                return endpoint
        return next((e for e in self.acs if e.is_default is None), self.acs[0])

    @property
    def slo_endpoint(self) -> Endpoint | None:
        """Where our LogoutResponses go: HTTP-Redirect preferred, else HTTP-POST; None if neither."""
        for binding in (BINDING_REDIRECT, BINDING_POST):
            for endpoint in self.slo:
                if endpoint.binding == binding:
                    return endpoint
        return None


def read_sp_metadata(document: bytes, *, where: str, now: datetime, entity_id: str | None = None) -> SpMetadata:
    """One service provider's metadata (an EntityDescriptor, or one entity of an EntitiesDescriptor)."""
    root = metadata_root(document, where, MAX_SP_METADATA_BYTES)
    entity = the_entity(root, "SPSSODescriptor", entity_id, where, "a service provider", "service providers")
    found_id = entity.get("entityID") or ""
    if not found_id or len(found_id) > 1024:
        raise Refused("metadata-unusable", f"metadata {where}: the entityID is missing or longer than 1024 characters")
    descriptors = [d for d in entity.findall(f"{MD}SPSSODescriptor")
                   if SAML2_PROTOCOL in (d.get("protocolSupportEnumeration") or "").split()]
    if not descriptors:
        raise Refused("metadata-unusable", f"metadata {where}: {found_id} does not declare SAML 2.0 support")
    sp = descriptors[0]

    valid_until = None
    for element in (root, entity, sp):  # the earliest validUntil counts
        moment = _instant(element.get("validUntil"), where)
        if moment is not None and (valid_until is None or moment < valid_until):
            valid_until = moment
    if valid_until is not None and valid_until <= now:
        raise Refused("metadata-expired", f"metadata {where}: expired on {valid_until:%Y-%m-%d %H:%M} UTC "
                                          "(validUntil); ask the platform for current metadata")

    acs = []
    for n, element in enumerate(sp.findall(f"{MD}AssertionConsumerService")):
        if element.get("Binding") != BINDING_POST:
            continue
        location = (element.get("Location") or "").strip()
        if not location.startswith(("https://", "http://")):
            raise Refused("metadata-unusable", f"metadata {where}: AssertionConsumerService #{n + 1} has no http(s) "
                                               f"Location ({location[:80]!r})")
        index = element.get("index")
        if index is not None and not index.isdigit():
            raise Refused("metadata-unusable", f"metadata {where}: AssertionConsumerService {location}: index "
                                               f"{index!r} is not a number")
        default = element.get("isDefault")
        acs.append(AcsEndpoint(location, int(index) if index is not None else None,
                               None if default is None else default in ("true", "1")))
    if not acs:
        raise Refused("metadata-unusable", f"metadata {where}: {found_id} has no AssertionConsumerService with the "
                                           "HTTP-POST binding (the only one this IdP answers with)")

    slo = []
    for element in sp.findall(f"{MD}SingleLogoutService"):
        location = (element.get("Location") or "").strip()
        binding = element.get("Binding")
        if binding in (BINDING_REDIRECT, BINDING_POST):
            if not location.startswith(("https://", "http://")):
                raise Refused("metadata-unusable", f"metadata {where}: a SingleLogoutService has no http(s) Location "
                                                   f"({location[:80]!r})")
            slo.append(Endpoint(binding, location, element.get("ResponseLocation")))

    signing: list[Certificate] = []
    encryption: list[Certificate] = []
    methods: list[str] = []
    for kd in sp.findall(f"{MD}KeyDescriptor"):
        use = kd.get("use")
        if use not in (None, "signing", "encryption"):
            raise Refused("metadata-unusable", f"metadata {where}: KeyDescriptor use={use!r} is not signing or "
                                               "encryption")
        certs = []
        for text in kd.findall(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate"):
            try:
                certs.append(Certificate.from_base64(text.text or ""))
            except ValueError as exc:
                raise Refused("metadata-unusable", f"metadata {where}: a {use or 'signing/encryption'} certificate "
                                                   f"cannot be read ({exc})") from None
        if use in (None, "signing"):
            signing += certs
        if use in (None, "encryption"):
            encryption += certs
            methods += [a for m in kd.findall(f"{MD}EncryptionMethod") if (a := m.get("Algorithm"))]
    return SpMetadata(
        entity_id=found_id, acs=tuple(acs), slo=tuple(slo), signing_certificates=tuple(signing),
        encryption_certificates=tuple(encryption), encryption_methods=tuple(methods),
        authn_requests_signed=sp.get("AuthnRequestsSigned") in ("true", "1"),
        want_assertions_signed=sp.get("WantAssertionsSigned") in ("true", "1"),
        name_id_formats=tuple((f.text or "").strip() for f in sp.findall(f"{MD}NameIDFormat") if f.text),
        valid_until=valid_until)


def _instant(value: str | None, where: str) -> datetime | None:
    try:
        return parse_instant(value, f"metadata {where}: validUntil")
    except Refused as exc:
        raise Refused("metadata-unusable", exc.detail) from None


@dataclass(frozen=True)
class Platform:
    """A registered resource platform: its configuration and its metadata."""

    id: str
    label: str
    metadata_file: Path
    metadata: SpMetadata
    releases: tuple[AttributeRelease, ...] = ()
    name_id_format: str = NAMEID_PERSISTENT
    encrypt_assertions: bool = False  # resolved: true only with an encryption certificate
    cipher: str = CIPHERS[0]
    require_signed_requests: bool = False  # resolved: our setting or the metadata's AuthnRequestsSigned
    idp_initiated: bool = True

    @property
    def entity_id(self) -> str:
        return self.metadata.entity_id

    def acs(self, *, url: str | None = None, index: str | None = None) -> AcsEndpoint:
        """The ACS a request asks for (by URL or index), else the default; only ones from the metadata."""
        if url is not None and index is not None:
            raise Refused("acs-ambiguous", "the AuthnRequest gives both AssertionConsumerServiceURL and "
                                           "AssertionConsumerServiceIndex")
        if url is not None:
            for endpoint in self.metadata.acs:
                if endpoint.location == url:
                    return endpoint
            raise Refused("acs-not-registered", f"platform {self.id}: the AssertionConsumerServiceURL is not an "
                                                "HTTP-POST ACS of its registered metadata")
        if index is not None:
            for endpoint in self.metadata.acs:
                if index.isdigit() and endpoint.index == int(index):
                    return endpoint
            raise Refused("acs-not-registered", f"platform {self.id}: no HTTP-POST ACS with index {index[:10]!r} in "
                                                "its registered metadata")
        return self.metadata.default_acs
