"""The SAML messages our SP writes (metadata, AuthnRequest, LogoutRequest/Response) and the logout ones it reads.

Built with lxml, signed with our signing key when sent (saml/bindings.py `encode`):
the HTTP-Redirect binding signs the query, the HTTP-POST binding carries an
enveloped XML signature.

Incoming logout messages (`read_logout` then `verify_logout`) must be signed by
the IdP, addressed to our SLO endpoint, fresh, and from the IdP they name.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from ..rules.national_attributes import ATTRIBUTE_OIDS
from ..saml.bindings import inflate_b64, verify_redirect
from ..saml.encryption import decrypt
from ..saml.keys import Certificate, KeyPair
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
from .config import SamlSettings

MD_NS = NS["md"]
NAMEID_FORMATS = ("urn:oasis:names:tc:SAML:2.0:nameid-format:transient",
                  "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent")
ATTRNAME_URI = "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"
STATUS_PARTIAL_LOGOUT = "urn:oasis:names:tc:SAML:2.0:status:PartialLogout"
STATUS_REQUESTER = "urn:oasis:names:tc:SAML:2.0:status:Requester"
_ENCRYPTION_METHODS = ("http://www.w3.org/2009/xmlenc11#aes256-gcm", "http://www.w3.org/2009/xmlenc11#aes128-gcm",
                       "http://www.w3.org/2001/04/xmlenc#aes256-cbc", "http://www.w3.org/2001/04/xmlenc#aes128-cbc",
                       "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p")


def _el(tag: str, parent: etree._Element | None = None, text: str | None = None,
        **attrs: str | None) -> etree._Element:
    prefix, local = tag.split(":")
    qname = f"{{{NS[prefix]}}}{local}"
    element = etree.Element(qname, nsmap={prefix: NS[prefix]}) if parent is None else \
        etree.SubElement(parent, qname)
    for name, value in attrs.items():
        if value is not None:
            element.set(name, value)
    if text is not None:
        element.text = text
    return element


# -- our metadata ------------------------------------------------------------------------------

def sp_metadata(settings: SamlSettings, *, sign: bool = True) -> bytes:
    """Our SP metadata: every key (rollover), ACS, SLO, requested attributes; signed with the signing key."""
    root = etree.Element(f"{{{MD_NS}}}EntityDescriptor", nsmap={"md": MD_NS, "ds": NS["ds"]})
    root.set("entityID", settings.entity_id)
    root.set("ID", new_id())
    sp = _el("md:SPSSODescriptor", root, AuthnRequestsSigned="true", WantAssertionsSigned="true",
             protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol")
    for key in settings.keys:
        for use, wanted in (("signing", key.signing), ("encryption", key.encryption)):
            if not wanted:
                continue
            kd = _el("md:KeyDescriptor", sp, use=use)
            info = _el("ds:KeyInfo", kd)
            _el("ds:KeyName", info, key.id)
            _el("ds:X509Certificate", _el("ds:X509Data", info), key.certificate.base64)
            if use == "encryption":
                for algorithm in _ENCRYPTION_METHODS:
                    _el("md:EncryptionMethod", kd, Algorithm=algorithm)
    for binding in (BINDING_REDIRECT, BINDING_POST):
        _el("md:SingleLogoutService", sp, Binding=binding, Location=settings.slo_url)
    for fmt in NAMEID_FORMATS:
        _el("md:NameIDFormat", sp, fmt)
    _el("md:AssertionConsumerService", sp, Binding=BINDING_POST, Location=settings.acs_url, index="0",
        isDefault="true")
    if settings.requested_attributes:
        acs = _el("md:AttributeConsumingService", sp, index="0", isDefault="true")
        name = _el("md:ServiceName", acs, settings.service_name)
        name.set("{http://www.w3.org/XML/1998/namespace}lang", "fr")
        for attribute in settings.requested_attributes:
            oid = ATTRIBUTE_OIDS.get(attribute)
            _el("md:RequestedAttribute", acs, Name=oid or attribute, FriendlyName=attribute if oid else None,
                NameFormat=ATTRNAME_URI if (oid or attribute).startswith("urn:") else None, isRequired="false")
    if settings.contact_email:
        contact = _el("md:ContactPerson", root, contactType="technical")
        _el("md:EmailAddress", contact, f"mailto:{settings.contact_email}")
    if sign:
        sign_enveloped(root, settings.signing_key)
    return etree.tostring(root, xml_declaration=True, encoding="utf-8", pretty_print=not sign)


# -- requests and responses we send ------------------------------------------------------------

def authn_request(*, request_id: str, now: datetime, destination: str, settings: SamlSettings,
                  force_authn: bool) -> etree._Element:
    root = _el("samlp:AuthnRequest", None, ID=request_id, Version="2.0", IssueInstant=format_instant(now),
               Destination=destination, AssertionConsumerServiceURL=settings.acs_url, ProtocolBinding=BINDING_POST,
               ForceAuthn="true" if force_authn else None)
    _el("saml:Issuer", root, settings.entity_id)
    _el("samlp:NameIDPolicy", root, AllowCreate="true")
    return root


def logout_request(*, request_id: str, now: datetime, destination: str, settings: SamlSettings, name_id: str,
                   name_id_format: str | None, name_qualifier: str | None, sp_name_qualifier: str | None,
                   session_index: str | None, lifetime: timedelta) -> etree._Element:
    root = _el("samlp:LogoutRequest", None, ID=request_id, Version="2.0", IssueInstant=format_instant(now),
               Destination=destination, NotOnOrAfter=format_instant(now + lifetime))
    _el("saml:Issuer", root, settings.entity_id)
    _el("saml:NameID", root, name_id, Format=name_id_format, NameQualifier=name_qualifier,
        SPNameQualifier=sp_name_qualifier)
    if session_index:
        _el("samlp:SessionIndex", root, session_index)
    return root


def logout_response(*, now: datetime, destination: str, settings: SamlSettings, in_response_to: str,
                    status: str = STATUS_SUCCESS) -> etree._Element:
    root = _el("samlp:LogoutResponse", None, ID=new_id(), Version="2.0", IssueInstant=format_instant(now),
               Destination=destination, InResponseTo=in_response_to)
    _el("saml:Issuer", root, settings.entity_id)
    _el("samlp:StatusCode", _el("samlp:Status", root), Value=status)
    return root


# -- logout messages we receive ------------------------------------------------------------------

@dataclass(frozen=True)
class IncomingLogout:
    kind: str  # LogoutRequest | LogoutResponse
    binding: str
    root: etree._Element
    issuer: str | None
    relay_state: str | None


def read_logout(args: dict[str, str], form: dict[str, str], method: str) -> IncomingLogout:
    """Decode a LogoutRequest/LogoutResponse from the HTTP-Redirect (GET) or HTTP-POST binding."""
    source, binding = (form, BINDING_POST) if method == "POST" else (args, BINDING_REDIRECT)
    present = [p for p in ("SAMLRequest", "SAMLResponse") if source.get(p)]
    if len(present) != 1:
        raise Refused("malformed", "the request carries neither a SAMLRequest nor a SAMLResponse")
    param = present[0]
    if binding == BINDING_REDIRECT:
        data = inflate_b64(source[param], param)
    else:
        try:
            data = base64.b64decode("".join(source[param].split()), validate=True)
        except (binascii.Error, ValueError):
            raise Refused("malformed", f"{param} is not base64") from None
    root = parse(data, param)
    kind = etree.QName(root).localname if root.tag.startswith(SAMLP) else ""
    if kind != ("LogoutRequest" if param == "SAMLRequest" else "LogoutResponse"):
        raise Refused("malformed", f"{param} holds <{etree.QName(root).localname}>, not a logout message")
    return IncomingLogout(kind, binding, root, text_of(root.find(f"{SAML}Issuer")), source.get("RelayState"))


@dataclass(frozen=True)
class VerifiedLogout:
    id: str
    in_response_to: str | None
    status: str | None  # LogoutResponse: the top-level status code
    name_id: str | None  # LogoutRequest: whom to log out
    session_indexes: tuple[str, ...]
    not_on_or_after: datetime | None


def verify_logout(message: IncomingLogout, *, raw_query: bytes, idp_entity_id: str, trusted: Sequence[Certificate],
                  slo_url: str, decryption_keys: Sequence[KeyPair], now: datetime, skew: timedelta,
                  allow_legacy: bool = False) -> VerifiedLogout:
    """Signature (required), Destination, Issuer, freshness; then the facts a logout needs."""
    root = message.root
    what = message.kind
    message_id = root.get("ID")
    if root.get("Version") != "2.0" or not message_id:
        raise Refused("malformed", f"{what} lacks Version 2.0 or an ID")
    check_unique_ids(root, what)
    if message.issuer != idp_entity_id:
        raise Refused("wrong-issuer", f"{what} Issuer is {message.issuer!r}, expected {idp_entity_id!r}")
    if message.binding == BINDING_REDIRECT:
        if signature_of(root) is not None:
            raise Refused("signature-structure", f"{what}: an XML signature inside an HTTP-Redirect message")
        param = "SAMLRequest" if what == "LogoutRequest" else "SAMLResponse"
        verify_redirect(raw_query, param, trusted, what, allow_legacy=allow_legacy)
    else:
        verify_enveloped(root, trusted, what, allow_legacy=allow_legacy)
    if any(s is not signature_of(root) for s in root.iter(f"{DS}Signature")):
        raise Refused("signature-structure", f"{what}: a signature sits elsewhere than on the message")
    if root.get("Destination") != slo_url:
        raise Refused("wrong-destination", f"{what} Destination is {root.get('Destination')!r}, not our SLO {slo_url}")
    issued = parse_instant(root.get("IssueInstant"), f"{what} IssueInstant")
    if issued is None or issued > now + skew:
        raise Refused("not-yet-valid" if issued else "malformed", f"{what} IssueInstant missing or in the future")
    until = parse_instant(root.get("NotOnOrAfter"), f"{what} NotOnOrAfter")
    if until is not None and until <= now - skew:
        raise Refused("expired", f"{what} expired {(now - until).total_seconds():.0f} s ago")
    if what == "LogoutResponse":
        code = root.find(f"{SAMLP}Status/{SAMLP}StatusCode")
        return VerifiedLogout(message_id, root.get("InResponseTo"), code.get("Value") if code is not None else None,
                              None, (), until)
    if issued < now - timedelta(minutes=10) - skew and until is None:
        raise Refused("expired", f"{what} was issued more than 10 minutes ago")
    encrypted = root.find(f"{SAML}EncryptedID")
    name_id = (decrypt(encrypted, decryption_keys, "EncryptedID", allow_legacy=allow_legacy) if encrypted is not None
               else root.find(f"{SAML}NameID"))
    if name_id is None or not text_of(name_id):
        raise Refused("no-nameid", f"{what} names no NameID")
    indexes = tuple(t for t in (text_of(s) for s in root.findall(f"{SAMLP}SessionIndex")) if t)
    return VerifiedLogout(message_id, None, None, text_of(name_id), indexes, until)
