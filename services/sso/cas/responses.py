"""The CAS documents: `serviceResponse` for validation and proxy requests (CAS 2.0 and 3.0, XML or JSON),
and the SAML `logoutRequest` a service receives for back-channel logout.

XML namespace http://www.yale.edu/tp/cas; JSON as in the CAS 3.0 specification's appendix.
"""

from __future__ import annotations

import json
import secrets
from datetime import UTC, datetime
from typing import Any
from xml.sax.saxutils import escape

from .tickets import CasError, Validation

CAS_NS = "http://www.yale.edu/tp/cas"


def render_xml(validation: Validation | None = None, error: CasError | None = None, *,
               with_attributes: bool) -> str:
    if error is not None:
        return (f'<cas:serviceResponse xmlns:cas="{CAS_NS}">\n  <cas:authenticationFailure code="{error.code}">'
                f"{escape(error.reason)}</cas:authenticationFailure>\n</cas:serviceResponse>\n")
    assert validation is not None
    parts = [f'<cas:serviceResponse xmlns:cas="{CAS_NS}">', "  <cas:authenticationSuccess>",
             f"    <cas:user>{escape(validation.user)}</cas:user>"]
    if with_attributes:
        parts.append("    <cas:attributes>")
        for name, values in _attributes(validation).items():  # names are checked XML names (config)
            parts.extend(f"      <cas:{name}>{escape(str(v))}</cas:{name}>" for v in values)
        parts.append("    </cas:attributes>")
    if validation.pgt_iou:
        parts.append(f"    <cas:proxyGrantingTicket>{escape(validation.pgt_iou)}</cas:proxyGrantingTicket>")
    if validation.proxies:
        parts.append("    <cas:proxies>")
        parts.extend(f"      <cas:proxy>{escape(p)}</cas:proxy>" for p in validation.proxies)
        parts.append("    </cas:proxies>")
    parts += ["  </cas:authenticationSuccess>", "</cas:serviceResponse>", ""]
    return "\n".join(parts)


def render_json(validation: Validation | None = None, error: CasError | None = None, *,
                with_attributes: bool) -> str:
    if error is not None:
        body: dict[str, Any] = {"authenticationFailure": {"code": error.code, "description": error.reason}}
    else:
        assert validation is not None
        success: dict[str, Any] = {"user": validation.user}
        if with_attributes:
            success["attributes"] = _attributes(validation)
        if validation.pgt_iou:
            success["proxyGrantingTicket"] = validation.pgt_iou
        if validation.proxies:
            success["proxies"] = list(validation.proxies)
        body = {"authenticationSuccess": success}
    return json.dumps({"serviceResponse": body}, ensure_ascii=False)


def render_proxy_xml(ticket: str | None = None, error: CasError | None = None) -> str:
    if error is not None:
        return (f'<cas:serviceResponse xmlns:cas="{CAS_NS}">\n  <cas:proxyFailure code="{error.code}">'
                f"{escape(error.reason)}</cas:proxyFailure>\n</cas:serviceResponse>\n")
    return (f'<cas:serviceResponse xmlns:cas="{CAS_NS}">\n  <cas:proxySuccess>\n    <cas:proxyTicket>'
            f"{escape(ticket or '')}</cas:proxyTicket>\n  </cas:proxySuccess>\n</cas:serviceResponse>\n")


def render_proxy_json(ticket: str | None = None, error: CasError | None = None) -> str:
    if error is not None:
        return json.dumps({"serviceResponse": {"proxyFailure": {"code": error.code, "description": error.reason}}})
    return json.dumps({"serviceResponse": {"proxySuccess": {"proxyTicket": ticket}}})


def logout_request(ticket: str, now: datetime) -> str:
    """The SAML LogoutRequest CAS servers POST (as `logoutRequest`) to a service for back-channel logout."""
    return ('<samlp:LogoutRequest xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" '
            'xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" '
            f'ID="LR-{secrets.token_hex(16)}" Version="2.0" '
            f'IssueInstant="{now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")}">'
            "<saml:NameID>@NOT_USED@</saml:NameID>"
            f"<samlp:SessionIndex>{escape(ticket)}</samlp:SessionIndex></samlp:LogoutRequest>")


def _attributes(validation: Validation) -> dict[str, list[str]]:
    out = {"authenticationDate": [validation.authenticated_at.astimezone(UTC).isoformat().replace("+00:00", "Z")],
           "isFromNewLogin": ["true" if validation.renewed else "false"],
           "longTermAuthenticationRequestTokenUsed": ["false"]}
    out.update(validation.attributes)
    return out
