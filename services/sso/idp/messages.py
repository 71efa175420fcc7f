"""The SAML messages of our identity provider: its metadata, the requests it reads, the responses it writes.

Reading a request (AuthnRequest or LogoutRequest) is two steps, so that nothing
in it is believed before its sender is known: `read_request` decodes the
binding and parses the XML safely (no DTD, entities, comments or network:
saml/xml.py parse), then the caller finds the platform named by the Issuer, and
`check_authn_request` / `check_logout_request` verify the signature against
that platform's metadata keys only (never a KeyInfo sent along), the
destination, the age of the request and, for a login, which ACS it asks for.
LogoutRequests must always be signed.

Responses carry one assertion about the subject: a NameID, a bearer
SubjectConfirmation for the ACS (Recipient, InResponseTo, NotOnOrAfter), an
AudienceRestriction to the platform, an AuthnStatement and the released
attributes. The assertion is signed, then encrypted to the platform's key when
its configuration says so, and the Response is signed too. Signatures are
enveloped, exclusive c14n, RSA-SHA256 (saml/signatures.py). AttributeValues
carry no xsi:type: a QName in an attribute value is not covered by exclusive
canonicalisation, a classic cause of signatures that break in transit.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from lxml import etree

from ..rules.platform_attributes import AttributeRelease
from ..saml.bindings import inflate_b64, verify_redirect
from ..saml.encryption import encrypt_assertion
from ..saml.keys import Certificate
from ..saml.signatures import sign_enveloped, signature_of, verify_enveloped
from ..saml.xml import (
    BINDING_POST,
    BINDING_REDIRECT,
    DS,
    NS,
    SAML,
    SAMLP,
    STATUS_SUCCESS,
    Refused,
    check_unique_ids,
    format_instant,
    new_id,
    parse,
    parse_instant,
    text_of,
)
from .config import IdentityProviderSettings
from .platforms import NAMEID_PERSISTENT, NAMEID_TRANSIENT, NAMEID_UNSPECIFIED, AcsEndpoint, Platform

MAX_REQUEST_BYTES = 64 * 1024  # an AuthnRequest is a few hundred bytes; anything near this is not one
MAX_RELAY_STATE = 1024  # SAML says 80 bytes; real SPs send longer (return URLs), so we allow some room
ENTITY_FORMAT = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
AUTHN_CONTEXT_UNSPECIFIED = "urn:oasis:names:tc:SAML:2.0:ac:classes:unspecified"

STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
STATUS_RESPONDER = "urn:oasis:names:tc:SAML:2.0:status:Responder"
NO_PASSIVE = "urn:oasis:names:tc:SAML:2.0:status:NoPassive"
INVALID_NAMEID_POLICY = "urn:oasis:names:tc:SAML:2.0:status:InvalidNameIDPolicy"
REQUEST_UNSUPPORTED = "urn:oasis:names:tc:SAML:2.0:status:RequestUnsupported"

def _sub(parent: etree._Element, tag: str, text: str | None = None, **attrs: str | None) -> etree._Element:
    """A child element `prefix:local` (prefixes of saml/xml.py NS), attributes set when not None."""
    prefix, local = tag.split(":")
    element = etree.SubElement(parent, f"{{{NS[prefix]}}}{local}")
    for name, value in attrs.items():
        if value is not None:
            element.set(name, value)
    if text is not None:
        element.text = text
    return element


def _root(tag: str, *prefixes: str, **attrs: str | None) -> etree._Element:
    prefix, local = tag.split(":")
    element = etree.Element(f"{{{NS[prefix]}}}{local}", nsmap={p: NS[p] for p in (prefix, *prefixes)})
    for name, value in attrs.items():
        if value is not None:
            element.set(name, value)
    return element


# -- our metadata -------------------------------------------------------------------------------

def idp_metadata(settings: IdentityProviderSettings) -> bytes:
    """Our IdP metadata: every key (rollover), SSO and SLO over HTTP-Redirect and HTTP-POST, NameID formats; signed."""
    root = _root("md:EntityDescriptor", "ds", entityID=settings.entity_id, ID=new_id())
    idp = _sub(root, "md:IDPSSODescriptor", protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol",
               WantAuthnRequestsSigned="true" if settings.want_authn_requests_signed else "false")
    for key in settings.keys:  # the signing one and those published ahead of (or after) a rollover
        kd = _sub(idp, "md:KeyDescriptor", use="signing")
        info = _sub(kd, "ds:KeyInfo")
        _sub(info, "ds:KeyName", key.id)
        _sub(_sub(info, "ds:X509Data"), "ds:X509Certificate", key.certificate.base64)
    for binding in (BINDING_REDIRECT, BINDING_POST):
        _sub(idp, "md:SingleLogoutService", Binding=binding, Location=settings.slo_url)
    for fmt in (NAMEID_PERSISTENT, NAMEID_TRANSIENT):
        _sub(idp, "md:NameIDFormat", fmt)
    for binding in (BINDING_REDIRECT, BINDING_POST):
        _sub(idp, "md:SingleSignOnService", Binding=binding, Location=settings.sso_url)
    if settings.contact_email:
        contact = _sub(root, "md:ContactPerson", contactType="technical")
        _sub(contact, "md:EmailAddress", f"mailto:{settings.contact_email}")
    sign_enveloped(root, settings.signing_key)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8")


# -- requests -------------------------------------------------------------------------------------

@dataclass(frozen=True)
class IncomingRequest:
    """A decoded, parsed, not yet trusted AuthnRequest or LogoutRequest."""

    root: etree._Element
    binding: str
    issuer: str | None
    relay_state: str | None

    @property
    def kind(self) -> str:
        return etree.QName(self.root).localname


def read_request(params: dict[str, str], *, binding: str, kind: str) -> IncomingRequest:
    """Decode `SAMLRequest` from the HTTP-Redirect (DEFLATE) or HTTP-POST (base64) binding and parse it safely;
    its root must be a `samlp:{kind}`."""
    value = params.get("SAMLRequest")
    if not value:
        raise Refused("malformed", "no SAMLRequest parameter")
    if binding == BINDING_REDIRECT:
        encoding = params.get("SAMLEncoding")
        if encoding not in (None, "urn:oasis:names:tc:SAML:2.0:bindings:URL-Encoding:DEFLATE"):
            raise Refused("malformed", f"SAMLEncoding {encoding[:80]!r} is not supported (DEFLATE only)")
        data = inflate_b64(value, "SAMLRequest")
    else:
        try:
            data = base64.b64decode("".join(value.split()), validate=True)
        except (binascii.Error, ValueError):
            raise Refused("malformed", "SAMLRequest is not base64 (HTTP-POST binding)") from None
    root = parse(data, f"the {kind}", max_bytes=MAX_REQUEST_BYTES)
    if root.tag != f"{SAMLP}{kind}":
        raise Refused("malformed", f"SAMLRequest holds <{etree.QName(root).localname}>, not a samlp:{kind}")
    relay_state = params.get("RelayState")
    if relay_state is not None and len(relay_state.encode()) > MAX_RELAY_STATE:
        raise Refused("malformed", f"RelayState is {len(relay_state.encode())} bytes (limit {MAX_RELAY_STATE})")
    issuer = root.find(f"{SAML}Issuer")
    if issuer is not None and issuer.get("Format") not in (None, ENTITY_FORMAT):
        raise Refused("malformed", f"the {kind}'s Issuer has a Format other than entity")
    return IncomingRequest(root, binding, text_of(issuer), relay_state)


@dataclass(frozen=True)
class AuthnRequest:
    """A verified AuthnRequest from a registered platform, and the ACS the answer goes to."""

    id: str
    platform: Platform
    acs: AcsEndpoint
    relay_state: str | None
    force_authn: bool
    is_passive: bool
    problem: tuple[str, str, str] | None = None  # (status, sub-status, message) to answer with, or None


def check_authn_request(incoming: IncomingRequest, platform: Platform, *, raw_query: bytes,
                        settings: IdentityProviderSettings, now: datetime) -> AuthnRequest:
    """Signature, version, destination, age and ACS of a request whose Issuer is `platform`.

    Raises `Refused` when nothing may be answered (the answer would go to an ACS we cannot trust);
    returns an `AuthnRequest` whose `problem` is set when the platform gets a SAML error status instead.
    """
    root = incoming.root
    request_id = _check_envelope(incoming, platform, raw_query=raw_query, settings=settings, now=now,
                                 endpoint=settings.sso_url, signature_required=platform.require_signed_requests)
    what = f"AuthnRequest from {platform.id}"
    binding = root.get("ProtocolBinding")
    if binding is not None and binding != BINDING_POST:
        raise Refused("unsupported-binding", f"{what} asks for an answer over {binding[:100]}; this IdP answers "
                                             "over HTTP-POST only")
    acs = platform.acs(url=root.get("AssertionConsumerServiceURL"), index=root.get("AssertionConsumerServiceIndex"))
    request = AuthnRequest(request_id, platform, acs, incoming.relay_state,
                           force_authn=_true(root.get("ForceAuthn")), is_passive=_true(root.get("IsPassive")))
    problem = _policy_problem(root, platform)
    return request if problem is None else replace(request, problem=problem)


def _check_envelope(incoming: IncomingRequest, platform: Platform, *, raw_query: bytes,
                    settings: IdentityProviderSettings, now: datetime, endpoint: str, signature_required: bool) -> str:
    """What every request must pass: version and ID, unique IDs, signature, Destination, age. Returns the ID."""
    root = incoming.root
    what = f"{incoming.kind} from {platform.id}"
    request_id = root.get("ID") or ""
    if root.get("Version") != "2.0" or not request_id or len(request_id) > 256:
        raise Refused("malformed", f"{what} lacks Version 2.0 or an ID (of at most 256 characters)")
    check_unique_ids(root, what)
    signed = _verify_signature(incoming, platform, raw_query, what, signature_required)
    destination = root.get("Destination")
    if destination is not None and destination != endpoint:
        raise Refused("wrong-destination", f"{what} is addressed to {destination[:200]!r}, not our endpoint "
                                           f"{endpoint}")
    if signed and destination is None:
        raise Refused("wrong-destination", f"{what} is signed but names no Destination (SAML bindings 3.4.5.2)")
    skew = timedelta(seconds=settings.clock_skew)
    issued = parse_instant(root.get("IssueInstant"), f"{what}: IssueInstant")
    if issued is None:
        raise Refused("malformed", f"{what} has no IssueInstant")
    if issued > now + skew:
        raise Refused("not-yet-valid", f"{what} was issued {(issued - now).total_seconds():.0f} s in the future "
                                       "(check the clocks)")
    if issued < now - timedelta(seconds=settings.request_lifetime) - skew:
        raise Refused("expired", f"{what} was issued {(now - issued).total_seconds():.0f} s ago "
                                 f"(limit {settings.request_lifetime} s)")
    return request_id


def _verify_signature(incoming: IncomingRequest, platform: Platform, raw_query: bytes, what: str,
                      required: bool) -> bool:
    """Verify the request's signature when it has one (or must have one); True if signed."""
    root = incoming.root
    certs: tuple[Certificate, ...] = platform.metadata.signing_certificates
    own = signature_of(root)
    if any(s is not own for s in root.iter(f"{DS}Signature")):
        raise Refused("signature-structure", f"{what}: a signature sits elsewhere than on the request")
    if incoming.binding == BINDING_REDIRECT:
        if own is not None:
            raise Refused("signature-structure", f"{what}: an XML signature inside an HTTP-Redirect message")
        names = {pair.partition(b"=")[0] for pair in raw_query.split(b"&")}
        signed = b"Signature" in names or b"SigAlg" in names
        if signed or required:
            _check_keys(certs, platform, what)
            verify_redirect(raw_query, "SAMLRequest", certs, what)
        return signed
    if own is not None or required:
        _check_keys(certs, platform, what)
        verify_enveloped(root, certs, what)
    return own is not None


def _check_keys(certs: tuple[Certificate, ...], platform: Platform, what: str) -> None:
    if not certs:
        raise Refused("signature-invalid", f"{what}: its registered metadata has no signing key to verify the "
                                           "request with")


def _policy_problem(root: etree._Element, platform: Platform) -> tuple[str, str, str] | None:
    """What we cannot honour in a valid request, as a SAML status for the platform (None: all is well)."""
    if root.find(f"{SAML}Subject") is not None:
        return (STATUS_REQUESTER, REQUEST_UNSUPPORTED, "a Subject in the AuthnRequest is not supported")
    policy = root.find(f"{SAMLP}NameIDPolicy")
    if policy is not None:
        fmt = policy.get("Format")
        if fmt not in (None, NAMEID_UNSPECIFIED, platform.name_id_format):
            return (STATUS_REQUESTER, INVALID_NAMEID_POLICY,
                    f"NameID format {fmt} is not the one configured for this platform ({platform.name_id_format})")
        qualifier = policy.get("SPNameQualifier")
        if qualifier not in (None, platform.entity_id):
            return (STATUS_REQUESTER, INVALID_NAMEID_POLICY, "identifiers shared with another entity "
                                                             "(SPNameQualifier) are not supported")
    return None


def _true(value: str | None) -> bool:
    return value in ("true", "1")


@dataclass(frozen=True)
class LogoutRequest:
    """A verified LogoutRequest from a registered platform."""

    id: str
    platform: Platform
    name_id: str
    session_indexes: tuple[str, ...]
    relay_state: str | None


def check_logout_request(incoming: IncomingRequest, platform: Platform, *, raw_query: bytes,
                         settings: IdentityProviderSettings, now: datetime) -> LogoutRequest:
    """A LogoutRequest must be signed by the platform, addressed to our SLO endpoint, fresh, and name a subject."""
    root = incoming.root
    request_id = _check_envelope(incoming, platform, raw_query=raw_query, settings=settings, now=now,
                                 endpoint=settings.slo_url, signature_required=True)
    what = f"LogoutRequest from {platform.id}"
    until = parse_instant(root.get("NotOnOrAfter"), f"{what}: NotOnOrAfter")
    if until is not None and until <= now - timedelta(seconds=settings.clock_skew):
        raise Refused("expired", f"{what} expired {(now - until).total_seconds():.0f} s ago (NotOnOrAfter)")
    if root.find(f"{SAML}EncryptedID") is not None:
        raise Refused("malformed", f"{what} carries an EncryptedID: this IdP publishes no encryption key, send the "
                                   "NameID in clear")
    name_id = text_of(root.find(f"{SAML}NameID"))
    if not name_id:
        raise Refused("malformed", f"{what} names no NameID")
    indexes = tuple(t for t in (text_of(e) for e in root.findall(f"{SAMLP}SessionIndex")) if t)
    return LogoutRequest(request_id, platform, name_id, indexes, incoming.relay_state)


def logout_response(settings: IdentityProviderSettings, *, destination: str, in_response_to: str,
                    status: tuple[str, str | None], now: datetime) -> etree._Element:
    """An (unsigned) LogoutResponse; saml/bindings.py `encode` signs it for its binding."""
    root = _root("samlp:LogoutResponse", "saml", ID=new_id(), Version="2.0", IssueInstant=format_instant(now),
                 Destination=destination, InResponseTo=in_response_to)
    _sub(root, "saml:Issuer", settings.entity_id)
    code = _sub(_sub(root, "samlp:Status"), "samlp:StatusCode", Value=status[0])
    if status[1]:
        _sub(code, "samlp:StatusCode", Value=status[1])
    return root


# -- Responses ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Subject:
    """What an assertion says about the person."""

    name_id: str
    name_id_format: str
    authn_instant: datetime
    session_index: str
    session_not_on_or_after: datetime
    attributes: tuple[tuple[AttributeRelease, tuple[str, ...]], ...] = ()


def response(settings: IdentityProviderSettings, platform: Platform, *, acs_url: str, in_response_to: str | None,
             subject: Subject | None, now: datetime, status: tuple[str, str | None, str | None] | None = None
             ) -> bytes:
    """A signed Response: with an assertion about `subject`, or (subject None) an error `status`."""
    root = _root("samlp:Response", "saml", ID=new_id(), Version="2.0", IssueInstant=format_instant(now),
                 Destination=acs_url, InResponseTo=in_response_to)
    issuer = _sub(root, "saml:Issuer", settings.entity_id)
    top, second, message = status or (STATUS_SUCCESS, None, None)
    status_el = _sub(root, "samlp:Status")
    code = _sub(status_el, "samlp:StatusCode", Value=top)
    if second:
        _sub(code, "samlp:StatusCode", Value=second)
    if message:
        _sub(status_el, "samlp:StatusMessage", message)
    if subject is not None:
        assertion = _assertion(settings, platform, acs_url=acs_url, in_response_to=in_response_to,
                               subject=subject, now=now)
        if platform.encrypt_assertions:
            root.append(encrypt_assertion(assertion, platform.metadata.encryption_certificates[0],
                                          platform.cipher))
        else:
            root.append(assertion)
    sign_enveloped(root, settings.signing_key, after=issuer)
    return etree.tostring(root, encoding="utf-8")


def _assertion(settings: IdentityProviderSettings, platform: Platform, *, acs_url: str, in_response_to: str | None,
               subject: Subject, now: datetime) -> etree._Element:
    until = format_instant(now + timedelta(seconds=settings.assertion_lifetime))
    assertion = _root("saml:Assertion", ID=new_id(), Version="2.0", IssueInstant=format_instant(now))
    issuer = _sub(assertion, "saml:Issuer", settings.entity_id)
    subject_el = _sub(assertion, "saml:Subject")
    _sub(subject_el, "saml:NameID", subject.name_id, Format=subject.name_id_format,
         NameQualifier=settings.entity_id if subject.name_id_format == NAMEID_PERSISTENT else None,
         SPNameQualifier=platform.entity_id)
    confirmation = _sub(subject_el, "saml:SubjectConfirmation", Method=BEARER)
    _sub(confirmation, "saml:SubjectConfirmationData", NotOnOrAfter=until, Recipient=acs_url,
         InResponseTo=in_response_to)
    conditions = _sub(assertion, "saml:Conditions", NotBefore=format_instant(now), NotOnOrAfter=until)
    _sub(_sub(conditions, "saml:AudienceRestriction"), "saml:Audience", platform.entity_id)
    authn = _sub(assertion, "saml:AuthnStatement", AuthnInstant=format_instant(subject.authn_instant),
                 SessionIndex=subject.session_index,
                 SessionNotOnOrAfter=format_instant(subject.session_not_on_or_after))
    _sub(_sub(authn, "saml:AuthnContext"), "saml:AuthnContextClassRef", AUTHN_CONTEXT_UNSPECIFIED)
    if subject.attributes:
        statement = _sub(assertion, "saml:AttributeStatement")
        for release, values in subject.attributes:
            attribute = _sub(statement, "saml:Attribute", Name=release.saml_name, NameFormat=release.name_format,
                             FriendlyName=release.friendly_name)
            for value in values:
                _sub(attribute, "saml:AttributeValue", value)
    sign_enveloped(assertion, settings.signing_key, after=issuer)
    return assertion
