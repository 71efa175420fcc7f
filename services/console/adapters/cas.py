"""The console as a CAS client of Relais's SSO: validating a service ticket with CAS 3's `p3/serviceValidate`,
and reading the SSO's back-channel logout requests (`logout_ticket`).

The answer is parsed as untrusted XML (connectors.sdk.safexml: no DTD, no entity, no network). The
user id and the released attributes (the console's `attributes:` in the SSO's service registry) come
back; a failure says the CAS code and reason, or what was wrong with the answer.
"""

from __future__ import annotations

from dataclasses import dataclass

import requests

from connectors.sdk.errors import BadResponse
from connectors.sdk.safexml import parse_xml

CAS_NS = "http://www.yale.edu/tp/cas"
SAMLP_NS = "urn:oasis:names:tc:SAML:2.0:protocol"


class TicketRefused(Exception):
    """The SSO did not vouch for the ticket; the message says why (CAS code and reason, or the transport)."""


@dataclass(frozen=True)
class Validated:
    user: str
    attributes: dict[str, list[str]]


def validate(cas_url: str, service: str, ticket: str, timeout: float) -> Validated:
    """Ask the SSO whether `ticket` was issued for `service`; TicketRefused otherwise."""
    try:
        response = requests.get(f"{cas_url}/p3/serviceValidate", params={"service": service, "ticket": ticket},
                                timeout=timeout, allow_redirects=False)
    except requests.RequestException as exc:
        raise TicketRefused(f"the SSO at {cas_url} did not answer: {type(exc).__name__}") from None
    if response.status_code != 200:
        raise TicketRefused(f"the SSO at {cas_url} answered HTTP {response.status_code} to p3/serviceValidate")
    return read_answer(response.content)


def logout_ticket(body: bytes) -> str | None:
    """The ticket a back-channel `logoutRequest` (a SAML LogoutRequest the SSO POSTs) names, or None."""
    try:
        root = parse_xml(body, what="the SSO's logoutRequest")
    except BadResponse:
        return None
    if root.tag != f"{{{SAMLP_NS}}}LogoutRequest":
        return None
    ticket = root.findtext(f"{{{SAMLP_NS}}}SessionIndex")
    return ticket.strip() if ticket and ticket.strip() else None


def read_answer(body: bytes) -> Validated:
    """A CAS 3 serviceResponse document -> the user and attributes, or TicketRefused."""
    try:
        root = parse_xml(body, what="the SSO's p3/serviceValidate answer")
    except BadResponse as exc:
        raise TicketRefused(str(exc)) from None
    failure = root.find(f"{{{CAS_NS}}}authenticationFailure")
    if failure is not None:
        raise TicketRefused(f"{failure.get('code', '?')}: {(failure.text or '').strip()}")
    success = root.find(f"{{{CAS_NS}}}authenticationSuccess")
    user = success.findtext(f"{{{CAS_NS}}}user") if success is not None else None
    if success is None or not user or not user.strip():
        raise TicketRefused("the SSO's answer holds neither a success with a user nor a failure")
    attributes: dict[str, list[str]] = {}
    for element in success.iterfind(f"{{{CAS_NS}}}attributes/*"):
        name = element.tag.rsplit("}", 1)[-1] if isinstance(element.tag, str) else ""
        if name and element.text:
            attributes.setdefault(name, []).append(element.text.strip())
    return Validated(user.strip(), attributes)
