"""Signing ID tokens and logout tokens, and the JWKS that lets clients check them, through key rotations.

The configured signing key signs (RS256 for RSA, ES256 for EC P-256); every configured key is published. Before a
key signs anything, its public half is recorded in `sso_oidc_jwk` with the time the last token it may sign expires
(`published_until`, pushed forward at most every few minutes): the JWKS keeps publishing a key whose file has left
the configuration until then, so a rotation never leaves a client holding a token it cannot check. Verification
(the `id_token_hint` at logout) accepts the same keys, with RS256 and ES256 only: `alg=none`, HMAC algorithms and
unknown keys are refused.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, RSAKey
from sqlalchemy import Connection, insert, select, update

from ..tables import oidc_jwk as jwk_t
from .config import OidcSettings, SigningKey

ALGORITHMS = ("RS256", "ES256")
_REFRESH = timedelta(minutes=5)  # how often the signing key's publication is pushed forward


class BadToken(Exception):
    """A JWT we did not sign, or not in a form we accept."""


def public_jwk(key: SigningKey) -> dict[str, Any]:
    return {**key.key.as_dict(private=False), "kid": key.id, "use": "sig", "alg": key.alg}


class Keys:
    """The provider's keys: `sign`, `jwks`, `verify`. `lifetime` is the longest life of a token they sign."""

    def __init__(self, settings: OidcSettings, *, lifetime: int) -> None:
        self.settings = settings
        self.signing = settings.signing_key
        self.lifetime = timedelta(seconds=lifetime)
        self._published_until: datetime | None = None
        self._lock = threading.Lock()

    def sign(self, claims: dict[str, Any], *, typ: str = "JWT") -> str:
        header = {"alg": self.signing.alg, "kid": self.signing.id, "typ": typ}
        return jwt.encode(header, claims, self.signing.key, algorithms=[self.signing.alg])

    def publish(self, conn: Connection, now: datetime) -> None:
        """Record (or push forward) the signing key's publication before it signs; cheap when recently done."""
        with self._lock:
            if self._published_until is not None and self._published_until - self.lifetime > now:
                return
        until = now + self.lifetime + 2 * _REFRESH
        key = self.signing
        done = conn.execute(update(jwk_t).where(jwk_t.c.kid == key.id, jwk_t.c.published_until < until)
                            .values(published_until=until)).rowcount
        if not done and conn.execute(select(jwk_t.c.kid).where(jwk_t.c.kid == key.id)).first() is None:
            conn.execute(insert(jwk_t).values(kid=key.id, jwk=json.dumps(public_jwk(key)), published_until=until))
        with self._lock:
            self._published_until = until - _REFRESH

    def jwks(self, conn: Connection, now: datetime) -> dict[str, Any]:
        """Every configured key, and each earlier key while tokens it signed may still be presented."""
        keys = [public_jwk(k) for k in self.settings.keys]
        configured = {k.id for k in self.settings.keys}
        for kid, raw in conn.execute(select(jwk_t.c.kid, jwk_t.c.jwk).where(jwk_t.c.published_until > now)
                                     .order_by(jwk_t.c.kid)):
            if kid not in configured:
                keys.append(json.loads(raw))
        return {"keys": keys}

    def verify(self, token: str, conn: Connection, now: datetime) -> dict[str, Any]:
        """The claims of a JWT one of our published keys signed (its expiry is the caller's business)."""
        keyset = KeySet([_import(k) for k in self.jwks(conn, now)["keys"]])
        try:
            return dict(jwt.decode(token, keyset, algorithms=list(ALGORITHMS)).claims)
        except (JoseError, ValueError, TypeError) as exc:
            raise BadToken(f"{type(exc).__name__}: {exc}") from None


def _import(data: dict[str, Any]) -> RSAKey | ECKey:
    cls = RSAKey if data.get("kty") == "RSA" else ECKey
    return cls.import_key(data)
