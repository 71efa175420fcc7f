"""Pseudonymous identifiers for resource platforms (plain Python, no I/O).

A platform knows a person only by a persistent NameID computed from three things:

    nameid = base32(HMAC-SHA256(key = deployment secret,
                                msg = "relais:saml-nameid:v1" NUL platform entityID NUL AAF jointure))

lower-case, without padding (52 characters). So:

- the same person gets the same identifier on one platform at every login, on
  every instance, and with whichever ENT vendor runs the portal, as long as the
  territory keeps its deployment secret and the platform its entityID: the
  formula is documented so another implementation can reproduce it;
- two platforms get unrelated identifiers for one person (they cannot link
  their users), and neither can recover the jointure without the secret;
- changing the secret, the platform's entityID or the person's AAF jointure
  gives the person a new identifier there: to the platform, a new user, whose
  history (progress, documents, licences) stays with the old one.

`session_index` is the SessionIndex a platform knows an SSO session by: derived
from the session's public ref and the platform's entityID, so nothing is stored
and two platforms get unrelated ones.

`secret_fingerprint` names a secret without revealing it; the IdP records the
one NameIDs were first issued with and refuses to issue others until an
operator accepts the change (idp/nameid_secret.py, `relais sso idp-secret`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac

NAMEID_LABEL = b"relais:saml-nameid:v1"
_FINGERPRINT_LABEL = b"relais:saml-nameid:fingerprint:v1"
_SESSION_INDEX_LABEL = b"relais:idp-session-index:v1\0"


def persistent_name_id(secret: bytes, platform_entity_id: str, jointure: str) -> str:
    """The persistent pseudonymous NameID of a person (AAF jointure) on a platform (its entityID)."""
    if not platform_entity_id or not jointure:
        raise ValueError("a platform entityID and a person's jointure are both required")
    if "\0" in platform_entity_id or "\0" in jointure:
        raise ValueError("NUL is not allowed in an entityID or a jointure")  # keeps the message unambiguous
    message = b"\0".join((NAMEID_LABEL, platform_entity_id.encode(), jointure.encode()))
    digest = hmac.new(secret, message, hashlib.sha256).digest()
    return base64.b32encode(digest).decode().rstrip("=").lower()


def session_index(secret: bytes, session_ref: str, platform_entity_id: str) -> str:
    """What a platform knows an SSO session by (a session's public ref, seen by one platform)."""
    mac = hmac.new(secret, _SESSION_INDEX_LABEL + f"{session_ref}\0{platform_entity_id}".encode(), hashlib.sha256)
    return "_" + mac.hexdigest()[:40]


def secret_fingerprint(secret: bytes) -> str:
    """A public name for a deployment secret (hex), from which the secret cannot be recovered."""
    return hmac.new(secret, _FINGERPRINT_LABEL, hashlib.sha256).hexdigest()
