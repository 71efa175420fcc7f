"""Checking an IdP's `samlp:Response` to our AuthnRequest: everything, before anything is read from it.

`read_response` decodes and parses (safely) the POSTed `SAMLResponse`, so the
caller can find the pending request it answers (`in_response_to`). `verify`
then checks, raising `Refused(reason, detail)` at the first failure:

- structure: SAML 2.0, IDs unique, exactly one assertion (plain or encrypted)
  anywhere in the document and it is a direct child of the Response, no
  signature anywhere but on the Response or that assertion;
- the Response: `Destination` is our ACS, `InResponseTo` is the pending
  request, its `Issuer` (if any) and the assertion's are the IdP the request
  was sent to, status Success;
- signatures (saml/signatures.py `verify_enveloped`): the Response or the assertion is
  signed by one of the IdP's keys, each signature present verifies, the
  assertion itself is signed when the IdP is configured so; an
  `EncryptedAssertion` is decrypted with one of our keys (required if configured);
- the assertion: a bearer `SubjectConfirmation` whose data has our ACS as
  `Recipient`, the request as `InResponseTo` and a `NotOnOrAfter` not past;
  `Conditions` with `NotBefore` / `NotOnOrAfter` respected and an
  `AudienceRestriction` naming us (unknown conditions refused); an
  `AuthnStatement` (newer than the request when `ForceAuthn` was asked), its
  `SessionNotOnOrAfter` not past; a non-empty NameID.
Every time is compared with the caller's `now`, give or take `clock_skew`.
Only the verified assertion element is read afterwards. The replay cache
(store.remember_once) is the caller's, as it needs the database.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime, timedelta

from lxml import etree

from ..saml.encryption import decrypt
from ..saml.keys import Certificate, KeyPair
from ..saml.signatures import signature_of, verify_enveloped
from ..saml.xml import DS, SAML, SAMLP, STATUS_SUCCESS, Refused, check_unique_ids, parse, parse_instant, text_of

BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
ENTITY_FORMAT = "urn:oasis:names:tc:SAML:2.0:nameid-format:entity"
_KNOWN_CONDITIONS = {f"{SAML}AudienceRestriction", f"{SAML}OneTimeUse", f"{SAML}ProxyRestriction"}


@dataclass(frozen=True)
class ResponseDocument:
    root: etree._Element
    in_response_to: str | None
    issuer: str | None


@dataclass(frozen=True)
class Expected:
    """What the response must say, from our configuration and the pending request."""

    sp_entity_id: str
    acs_url: str
    idp_entity_id: str
    request_id: str
    request_issued_at: datetime
    force_authn: bool = False


@dataclass(frozen=True)
class Policy:
    """How much to trust: the IdP's keys and what it must do."""

    trusted: tuple[Certificate, ...]
    decryption_keys: tuple[KeyPair, ...]
    clock_skew: timedelta = timedelta(seconds=120)
    want_assertions_signed: bool = False
    want_assertions_encrypted: bool = False
    allow_legacy: bool = False


@dataclass(frozen=True)
class VerifiedLogin:
    """The facts of a verified assertion (the only thing read from a response)."""

    issuer: str
    response_id: str
    assertion_id: str
    name_id: str
    name_id_format: str | None
    name_qualifier: str | None
    sp_name_qualifier: str | None
    session_index: str | None
    authn_instant: datetime
    session_not_on_or_after: datetime | None
    attributes: tuple[tuple[str, str | None, list[str]], ...]  # (Name, FriendlyName, values) as sent
    replay_until: datetime  # keep the assertion id in the replay cache until then
    encrypted: bool
    signed_parts: tuple[str, ...]  # "response" and/or "assertion"


def read_response(value: str | bytes | None) -> ResponseDocument:
    """Decode and parse a POSTed SAMLResponse (base64); refuses anything that is not a samlp:Response."""
    if not value:
        raise Refused("malformed", "no SAMLResponse in the request")
    try:
        data = base64.b64decode(value, validate=True) if isinstance(value, bytes) else \
            base64.b64decode("".join(value.split()), validate=True)
    except (binascii.Error, ValueError):
        raise Refused("malformed", "SAMLResponse is not base64") from None
    root = parse(data, "SAMLResponse")
    if root.tag != f"{SAMLP}Response":
        raise Refused("malformed", f"SAMLResponse holds <{etree.QName(root).localname}>, not samlp:Response")
    issuer = root.find(f"{SAML}Issuer")
    return ResponseDocument(root, root.get("InResponseTo"), text_of(issuer))


def verify(doc: ResponseDocument, expected: Expected, policy: Policy, now: datetime) -> VerifiedLogin:
    """Every check of the module docstring; returns the verified facts or raises `Refused`."""
    root = doc.root
    skew = policy.clock_skew
    if root.get("Version") != "2.0":
        raise Refused("malformed", f"Response Version is {root.get('Version')!r}, not 2.0")
    response_id = root.get("ID")
    if not response_id:
        raise Refused("malformed", "Response without ID")
    check_unique_ids(root, "Response")

    if root.get("Destination") != expected.acs_url:
        raise Refused("wrong-destination", f"Response Destination is {root.get('Destination')!r}, "
                                           f"not our ACS {expected.acs_url}")
    if doc.in_response_to != expected.request_id:
        raise Refused("in-response-to-mismatch", "Response InResponseTo does not name the pending request")
    issuers = root.findall(f"{SAML}Issuer")
    if len(issuers) > 1:
        raise Refused("wrong-issuer", "the Response has several Issuers")
    if issuers:
        _check_issuer(issuers[0], expected.idp_entity_id, "Response")
    _check_status(root)
    _check_instant(root, "Response", now, skew)

    signed: list[str] = []
    if signature_of(root) is not None:
        verify_enveloped(root, policy.trusted, "Response", allow_legacy=policy.allow_legacy)
        signed.append("response")

    plain = list(root.iter(f"{SAML}Assertion"))
    encrypted = list(root.iter(f"{SAML}EncryptedAssertion"))
    if len(plain) + len(encrypted) != 1:
        raise Refused("assertion-count", f"the Response holds {len(plain)} assertion(s) and {len(encrypted)} "
                                         "encrypted assertion(s); exactly one is expected")
    if encrypted:
        if encrypted[0].getparent() is not root:
            raise Refused("assertion-count", "the encrypted assertion is not a direct child of the Response")
        assertion = decrypt(encrypted[0], policy.decryption_keys, "EncryptedAssertion",
                            allow_legacy=policy.allow_legacy)
        if assertion.tag != f"{SAML}Assertion" or len(list(assertion.iter(f"{SAML}Assertion"))) != 1:
            raise Refused("assertion-count", "the encrypted assertion does not hold exactly one saml:Assertion")
        _check_decrypted(assertion)
    else:
        if policy.want_assertions_encrypted:
            raise Refused("not-encrypted", "this IdP must encrypt its assertions and did not")
        assertion = plain[0]
        if assertion.getparent() is not root:
            raise Refused("assertion-count", "the assertion is not a direct child of the Response "
                                             "(signature wrapping?)")

    expected_signatures = [s for s in (signature_of(root), signature_of(assertion)) if s is not None]
    for tree in (root, assertion):
        for sig in tree.iter(f"{DS}Signature"):
            if not any(sig is s for s in expected_signatures):
                raise Refused("signature-structure", "a signature sits elsewhere than on the Response or the "
                                                     "assertion (signature wrapping?)")
    if signature_of(assertion) is not None:
        verify_enveloped(assertion, policy.trusted, "Assertion", allow_legacy=policy.allow_legacy)
        signed.append("assertion")
    elif policy.want_assertions_signed:
        raise Refused("assertion-unsigned", "this IdP must sign its assertions and this one is not signed")
    if not signed:
        raise Refused("unsigned", "neither the Response nor the assertion is signed")

    return _read_assertion(assertion, expected, policy, now, response_id, bool(encrypted), tuple(signed))


def _check_issuer(issuer: etree._Element, expected: str, what: str) -> None:
    fmt = issuer.get("Format")
    if fmt not in (None, ENTITY_FORMAT):
        raise Refused("wrong-issuer", f"{what} Issuer has Format {fmt}")
    value = text_of(issuer)
    if value != expected:
        raise Refused("wrong-issuer", f"{what} Issuer is {value!r}, expected {expected!r}")


def _check_status(root: etree._Element) -> None:
    code = root.find(f"{SAMLP}Status/{SAMLP}StatusCode")
    value = code.get("Value") if code is not None else None
    if value == STATUS_SUCCESS:
        return
    sub = code.find(f"{SAMLP}StatusCode") if code is not None else None
    sub_value = sub.get("Value") if sub is not None else None
    detail = (value or "no status").rsplit(":", 1)[-1]
    if sub_value:
        detail += "/" + sub_value.rsplit(":", 1)[-1]
    raise Refused("idp-status", f"the IdP answered {detail}")


def _check_instant(element: etree._Element, what: str, now: datetime, skew: timedelta) -> None:
    issued = parse_instant(element.get("IssueInstant"), f"{what} IssueInstant")
    if issued is None:
        raise Refused("malformed", f"{what} without IssueInstant")
    if issued > now + skew:
        raise Refused("not-yet-valid", f"{what} IssueInstant is {(issued - now).total_seconds():.0f} s in the "
                                       f"future (clock skew allowed: {skew.total_seconds():.0f} s)")


def _check_decrypted(assertion: etree._Element) -> None:
    if next(assertion.iter(etree.Comment, etree.ProcessingInstruction, etree.Entity), None) is not None:
        raise Refused("xml-comment", "the decrypted assertion holds a comment or processing instruction")
    check_unique_ids(assertion.getroottree().getroot(), "decrypted Response")


def _read_assertion(assertion: etree._Element, expected: Expected, policy: Policy, now: datetime,
                    response_id: str, encrypted: bool, signed: tuple[str, ...]) -> VerifiedLogin:
    skew = policy.clock_skew
    assertion_id = assertion.get("ID")
    if assertion.get("Version") != "2.0" or not assertion_id:
        raise Refused("malformed", "the assertion lacks Version 2.0 or an ID")
    _check_instant(assertion, "Assertion", now, skew)
    issuers = assertion.findall(f"{SAML}Issuer")
    if len(issuers) != 1:
        raise Refused("wrong-issuer", f"the assertion has {len(issuers)} Issuers (1 expected)")
    _check_issuer(issuers[0], expected.idp_entity_id, "Assertion")

    subjects = assertion.findall(f"{SAML}Subject")
    if len(subjects) != 1:
        raise Refused("malformed", f"the assertion has {len(subjects)} Subjects (1 expected)")
    subject = subjects[0]
    name_id = _name_id(subject, policy)
    confirmation_until = _confirmation(subject, expected, now, skew)

    conditions = assertion.findall(f"{SAML}Conditions")
    if len(conditions) != 1:
        raise Refused("malformed", f"the assertion has {len(conditions)} Conditions elements (1 expected)")
    conditions_until = _conditions(conditions[0], expected, now, skew)

    statements = assertion.findall(f"{SAML}AuthnStatement")
    if not statements:
        raise Refused("malformed", "the assertion has no AuthnStatement")
    statement = statements[0]
    authn_instant = parse_instant(statement.get("AuthnInstant"), "AuthnInstant")
    if authn_instant is None:
        raise Refused("malformed", "AuthnStatement without AuthnInstant")
    if expected.force_authn and authn_instant < expected.request_issued_at - skew:
        raise Refused("stale-authentication", "a fresh authentication (ForceAuthn) was asked, the IdP reused an "
                                              "older one")
    session_end = parse_instant(statement.get("SessionNotOnOrAfter"), "SessionNotOnOrAfter")
    if session_end is not None and session_end <= now - skew:
        raise Refused("session-expired", "the IdP session ended (SessionNotOnOrAfter is past)")

    if assertion.find(f"{SAML}AttributeStatement/{SAML}EncryptedAttribute") is not None:
        raise Refused("unsupported", "encrypted attributes are not supported (encrypt the whole assertion)")
    attributes = tuple(
        (a.get("Name") or "", a.get("FriendlyName"),
         [v for v in (text_of(x) for x in a.findall(f"{SAML}AttributeValue")) if v])
        for a in assertion.findall(f"{SAML}AttributeStatement/{SAML}Attribute") if a.get("Name"))

    replay_until = max(confirmation_until, conditions_until or confirmation_until) + skew
    return VerifiedLogin(
        issuer=expected.idp_entity_id, response_id=response_id, assertion_id=assertion_id,
        name_id=text_of(name_id) or "", name_id_format=name_id.get("Format"),
        name_qualifier=name_id.get("NameQualifier"), sp_name_qualifier=name_id.get("SPNameQualifier"),
        session_index=statement.get("SessionIndex"), authn_instant=authn_instant,
        session_not_on_or_after=session_end, attributes=attributes, replay_until=replay_until,
        encrypted=encrypted, signed_parts=signed)


def _name_id(subject: etree._Element, policy: Policy) -> etree._Element:
    encrypted_ids = subject.findall(f"{SAML}EncryptedID")
    plain = subject.findall(f"{SAML}NameID")
    if len(encrypted_ids) + len(plain) != 1:
        raise Refused("no-nameid", "the Subject must hold exactly one NameID")
    name_id = (decrypt(encrypted_ids[0], policy.decryption_keys, "EncryptedID", allow_legacy=policy.allow_legacy)
               if encrypted_ids else plain[0])
    if name_id.tag != f"{SAML}NameID" or not text_of(name_id):
        raise Refused("no-nameid", "the NameID is empty")
    if len(name_id):
        raise Refused("malformed", "the NameID holds elements")
    return name_id


def _confirmation(subject: etree._Element, expected: Expected, now: datetime, skew: timedelta) -> datetime:
    """The NotOnOrAfter of the first bearer confirmation that holds; else the most telling refusal."""
    refusals: list[Refused] = []
    for sc in subject.findall(f"{SAML}SubjectConfirmation"):
        if sc.get("Method") != BEARER:
            continue
        data = sc.find(f"{SAML}SubjectConfirmationData")
        if data is None:
            refusals.append(Refused("no-bearer-confirmation", "bearer SubjectConfirmation without data"))
            continue
        if data.get("Recipient") != expected.acs_url:
            refusals.append(Refused("wrong-recipient", f"SubjectConfirmationData Recipient is "
                                                       f"{data.get('Recipient')!r}, not our ACS {expected.acs_url}"))
            continue
        if data.get("InResponseTo") != expected.request_id:
            refusals.append(Refused("in-response-to-mismatch", "SubjectConfirmationData InResponseTo does not "
                                                               "name the pending request"))
            continue
        until = parse_instant(data.get("NotOnOrAfter"), "SubjectConfirmationData NotOnOrAfter")
        if until is None:
            refusals.append(Refused("malformed", "bearer SubjectConfirmationData without NotOnOrAfter"))
            continue
        if until <= now - skew:
            refusals.append(Refused("expired", f"SubjectConfirmationData NotOnOrAfter passed "
                                               f"{(now - until).total_seconds():.0f} s ago"))
            continue
        not_before = parse_instant(data.get("NotBefore"), "SubjectConfirmationData NotBefore")
        if not_before is not None and not_before > now + skew:
            refusals.append(Refused("not-yet-valid", "SubjectConfirmationData NotBefore is in the future"))
            continue
        return until
    if refusals:
        raise refusals[0]
    raise Refused("no-bearer-confirmation", "no bearer SubjectConfirmation")


def _conditions(conditions: etree._Element, expected: Expected, now: datetime, skew: timedelta) -> datetime | None:
    not_before = parse_instant(conditions.get("NotBefore"), "Conditions NotBefore")
    if not_before is not None and not_before > now + skew:
        raise Refused("not-yet-valid", f"the assertion is valid from {(not_before - now).total_seconds():.0f} s "
                                       f"from now (clock skew allowed: {skew.total_seconds():.0f} s)")
    until = parse_instant(conditions.get("NotOnOrAfter"), "Conditions NotOnOrAfter")
    if until is not None and until <= now - skew:
        raise Refused("expired", f"the assertion expired {(now - until).total_seconds():.0f} s ago "
                                 f"(clock skew allowed: {skew.total_seconds():.0f} s)")
    restrictions = 0
    for child in conditions.iterchildren(etree.Element):
        if child.tag not in _KNOWN_CONDITIONS:
            raise Refused("unsupported-condition", f"condition <{etree.QName(child).localname}> is not understood")
        if child.tag == f"{SAML}AudienceRestriction":
            restrictions += 1
            audiences = [text_of(a) for a in child.findall(f"{SAML}Audience")]
            if expected.sp_entity_id not in audiences:
                raise Refused("wrong-audience", f"the assertion is meant for {audiences}, not {expected.sp_entity_id}")
    if not restrictions:
        raise Refused("wrong-audience", "the assertion has no AudienceRestriction")
    return until

