"""What the SSO shows people: plain French pages (framing and scripts refused), and redirects.

Every HTTP side uses them for its messages: the CAS login and logout pages, the SAML SP's
account choice and refusals (the SAML IdP has its own stricter page, idp/http.py).
"""

from __future__ import annotations

from html import escape

from werkzeug.wrappers import Response


def page(title: str, message: str, *, status: int = 200, extra: str = "") -> Response:
    """A plain French page (the SSO's messages to people), framing and scripts refused; `extra` is HTML."""
    body = (f"<!doctype html><html lang=\"fr\"><head><meta charset=\"utf-8\"><title>{escape(title)}</title></head>"
            f"<body><h1>{escape(title)}</h1><p>{escape(message)}</p>{extra}</body></html>")
    return Response(body, status=status, mimetype="text/html", headers={
        "X-Frame-Options": "DENY", "Content-Security-Policy": "default-src 'none'; form-action 'self'"})


def redirect(location: str) -> Response:
    """A 302 to `location` (which the caller checked: a registered service, a local path, an IdP's endpoint)."""
    return Response(status=302, headers={"Location": location})
