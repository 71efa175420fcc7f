"""Where the SSO may send a browser after a login or a logout (pure).

- After a national login, the browser goes back only to a local CAS, SAML IdP or
  OpenID Connect path (`/cas/…`, `/idp/…`, `/oidc/…`): never to another site, so a crafted `next` cannot
  make the login page an open redirector (`safe_next`; anything else: `/cas/login`).
- After logout, EduConnect's `FrEduUrlRetour` is followed only when it is an
  https URL (http too for an http deployment, local tests) on a host the IdP may
  send to: its own endpoints' hosts, or the configured `return_url_hosts`
  (`return_url_allowed`).

(CAS services are redirected to only when the registry knows them: service_registry.py.)
"""

from __future__ import annotations

from collections.abc import Collection
from urllib.parse import urlsplit

LOCAL_NEXT_DEFAULT = "/cas/login"


def safe_next(value: str | None) -> str:
    """Only local CAS, SAML IdP and OIDC paths are followed after login (never another site: one leading "/")."""
    if (value and value.startswith(("/cas/", "/idp/", "/oidc/")) and "\\" not in value and len(value) <= 4096
            and not any(ord(c) < 32 or ord(c) == 127 for c in value)):
        return value
    return LOCAL_NEXT_DEFAULT


def return_url_allowed(url: str, hosts: Collection[str], *, base_url: str) -> bool:
    """Whether a return URL may be followed: https (or http for an http deployment), one of `hosts`
    (lower-case host names), and no user info."""
    parts = urlsplit(url)
    schemes = ("https", "http") if base_url.startswith("http://") else ("https",)
    return parts.scheme in schemes and (parts.hostname or "").lower() in hosts and not parts.username
