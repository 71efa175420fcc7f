"""The OpenID Connect provider's decisions (pure): redirect URIs, PKCE, scopes, pairwise subjects, claims.

- **Redirect URIs** match exactly, as strings (OAuth 2.0 Security BCP 4.1): a path segment, a port, a user-info
  part, a query or a fragment more or less is another URI. A registered URI has no fragment and no user info, is
  https (http only on a loopback host, for local tests), and a redirect to it is the only one ever made.
- **PKCE** (RFC 7636): `S256` compares the SHA-256 of the verifier with the challenge, in constant time; `plain`
  is refused for public clients, who must use PKCE; a verifier is 43 to 128 unreserved characters.
- **Scopes**: `openid` is required; a scope the client is not registered for refuses the whole request.
- **Pairwise subjects** (OpenID Connect Core 8.1), computed, never stored, derived as the SAML IdP's
  pseudonymous NameIDs are (rules/pseudonyms.py) with their own label:

      sub = base32( HMAC-SHA256( key = deployment secret,
                                 msg = "relais:oidc-sub:v1" NUL sector NUL AAF jointure ) )

  lower-case, no padding (52 characters). The sector is the client's `sector` (default: the host of its redirect
  URIs), so the same person keeps one `sub` at a client across ENT vendors as long as the territory keeps its
  deployment secret, and two sectors cannot link their users.
- **Claims** follow the client's release policy (`claims:`, the CAS attributes' shape; default: `sub` alone):
  standard claims read from the ENT attributes need their scope (`profile`, `email`); ENT attributes are released
  under their own names, as lists, as CAS releases them.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
from collections.abc import Collection, Iterable
from urllib.parse import urlsplit

from .ent_attributes import ENT_ATTRIBUTES

SUB_LABEL = b"relais:oidc-sub:v1"
_SID_LABEL = b"relais:oidc-sid:v1\0"
_VERIFIER = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_CHALLENGE = re.compile(r"[A-Za-z0-9\-._~]{43,128}")
_LOOPBACK = ("127.0.0.1", "localhost", "::1")

# standard claim -> (the scope that releases it, the ENT attribute it is read from)
STANDARD_CLAIMS: dict[str, tuple[str, str]] = {
    "name": ("profile", "displayName"),
    "given_name": ("profile", "givenName"),
    "family_name": ("profile", "sn"),
    "birthdate": ("profile", "ENTPersonDateNaissance"),
    "email": ("email", "mail"),
}
SCOPES = ("openid", "profile", "email", "offline_access")
RELEASABLE = tuple(STANDARD_CLAIMS) + ENT_ATTRIBUTES


def redirect_uri_problem(uri: str) -> str | None:
    """Why a URI cannot be registered as a redirect (or post-logout redirect) URI, or None."""
    try:
        parts = urlsplit(uri)
        port = parts.port
    except ValueError:
        return "not a URL"
    host = (parts.hostname or "").lower()
    if parts.scheme not in ("https", "http") or not host:
        return "an absolute https URL is required"
    if parts.scheme == "http" and host not in _LOOPBACK:
        return "http is allowed only on a loopback host (127.0.0.1, localhost): use https"
    if parts.fragment or "#" in uri:
        return "a redirect URI has no fragment"
    if parts.username is not None or "@" in parts.netloc:
        return "a redirect URI has no user info"
    if port == 0 or any(ord(c) < 33 or ord(c) == 127 or c == "\\" for c in uri):
        return "spaces, control characters, backslashes and port 0 are not allowed"
    return None


def redirect_uri_registered(uri: str | None, registered: Collection[str]) -> bool:
    """Exact string match against the registered URIs (nothing normalised, nothing added or removed)."""
    return bool(uri) and uri in registered


def challenge_problem(challenge: str | None, method: str | None, *, public: bool) -> str | None:
    """Why an authorization request's PKCE parameters are refused, or None (`public`: the client has no secret)."""
    if not challenge:
        if method:
            return "code_challenge_method without code_challenge"
        return "PKCE is required for public clients (code_challenge, S256)" if public else None
    if not _CHALLENGE.fullmatch(challenge):
        return "code_challenge must be 43 to 128 unreserved characters"
    method = method or "plain"  # RFC 7636 4.3: the default
    if method == "plain" and public:
        return "code_challenge_method plain is refused for public clients: use S256"
    if method not in ("S256", "plain"):
        return f"code_challenge_method {method!r} is not supported (S256)"
    return None


def verifier_matches(verifier: str | None, challenge: str, method: str) -> bool:
    """Whether a token request's code_verifier answers the code's challenge (constant-time comparison)."""
    if not verifier or not _VERIFIER.fullmatch(verifier):
        return False
    if method == "S256":
        computed = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
    else:
        computed = verifier
    return hmac.compare_digest(computed.encode(), challenge.encode())


def requested_scopes(raw: str | None, allowed: Collection[str]) -> tuple[tuple[str, ...], str | None]:
    """The scopes asked (in order, once each) and why they are refused (None: granted as asked)."""
    asked = tuple(dict.fromkeys((raw or "").split()))
    if "openid" not in asked:
        return asked, "the openid scope is required"
    beyond = [s for s in asked if s not in allowed]
    if beyond:
        return asked, f"scope(s) not allowed for this client: {' '.join(beyond)}"
    return asked, None


def default_sector(redirect_uris: Iterable[str]) -> str | None:
    """The sector of a client without one: the host of its redirect URIs, when they share one (else None)."""
    hosts = {(urlsplit(u).hostname or "").lower() for u in redirect_uris}
    return hosts.pop() if len(hosts) == 1 else None


def pairwise_subject(secret: bytes, sector: str, jointure: str) -> str:
    """The `sub` of a person (AAF jointure) in a sector (formula in the module docstring)."""
    if not sector or not jointure:
        raise ValueError("a sector and a person's jointure are both required")
    if "\0" in sector or "\0" in jointure:
        raise ValueError("NUL is not allowed in a sector or a jointure")
    digest = hmac.new(secret, b"\0".join((SUB_LABEL, sector.encode(), jointure.encode())), hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()


def session_id_claim(secret: bytes, session_ref: str, client: str) -> str:
    """The `sid` a client knows an SSO session by (ID tokens, back-channel logout tokens): unrelated per client."""
    return hmac.new(secret, _SID_LABEL + f"{session_ref}\0{client}".encode(), hashlib.sha256).hexdigest()[:40]


def released_claims(attributes: dict[str, list[str]], policy: Collection[str],
                    scopes: Collection[str]) -> dict[str, str | list[str]]:
    """The claims a client receives beyond `sub`: its policy's, standard ones only with their scope."""
    out: dict[str, str | list[str]] = {}
    for name in policy:
        if name in STANDARD_CLAIMS:
            scope, source = STANDARD_CLAIMS[name]
            values = attributes.get(source)
            if scope in scopes and values:
                out[name] = _iso_date(values[0]) if name == "birthdate" else values[0]
        elif name in attributes:
            out[name] = list(attributes[name])
    return out


def _iso_date(aaf: str) -> str:
    """The AAF's dd/mm/yyyy as OpenID Connect's YYYY-MM-DD."""
    day, month, year = (aaf.split("/") + ["", "", ""])[:3]
    return f"{year}-{month}-{day}" if len(year) == 4 else aaf
