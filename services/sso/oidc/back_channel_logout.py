"""Back-channel logout (OpenID Connect Back-Channel Logout 1.0): when an SSO session ends, each client that
received tokens in it is told, as CAS services are (cas/back_channel_logout.py calls `notify` after its own).

Each client with a `backchannel_logout_uri` gets a logout token POSTed (form field `logout_token`): a JWT signed
like ID tokens, `typ` `logout+jwt`, with `iss`, `aud`, `iat`, `exp`, `jti`, the back-channel logout event, the
session's `sid` for that client and the person's pairwise `sub`. Calls run in parallel, each with a short
timeout, redirects not followed. Every token issued in the session is revoked first.
"""

from __future__ import annotations

import logging
import secrets
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from relais.db import writer

from ..cas.callbacks import post_form
from ..rules.oidc import session_id_claim
from ..sessions import ClosedSession
from . import store
from .flows import OidcProvider

log = logging.getLogger(__name__)
EVENT = "http://schemas.openid.net/event/backchannel-logout"
TOKEN_LIFETIME = 120  # seconds a logout token is good for


class OidcBackChannel:
    """Tells the OIDC clients of closed sessions; `close` waits for the calls under way."""

    def __init__(self, provider: OidcProvider, *, secret: bytes, timeout: float) -> None:
        self.provider = provider
        self._secret = secret
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sso-oidc-slo")

    def notify(self, closed: ClosedSession, now: datetime) -> dict[str, int | None]:
        """Revoke the session's tokens, then POST a logout token to each client of it; client id -> HTTP status."""
        clients = [s[len(store.CLIENT_LINK):] for s, _ in closed.services if s.startswith(store.CLIENT_LINK)]
        if not clients:
            return {}
        with writer(self.provider.engine).begin() as conn:
            revoked = store.revoke_session(conn, closed.ref, now)
        log.info("session %s ended: %d OIDC token(s) revoked", closed.ref, revoked)
        settings = self.provider.settings
        jobs: dict[str, Future[int | None]] = {}
        for client_id in clients:
            client = settings.clients.get(client_id)
            if client is None or client.backchannel_logout_uri is None:
                continue
            claims = {"iss": settings.issuer, "aud": client.id, "iat": int(now.timestamp()),
                      "exp": int(now.timestamp()) + TOKEN_LIFETIME, "jti": secrets.token_hex(16),
                      "events": {EVENT: {}}, "sid": session_id_claim(self._secret, closed.ref, client.id),
                      "sub": self.provider.subject(client, closed.person_jointure)}
            token = self.provider.keys.sign(claims, typ="logout+jwt")
            jobs[client.id] = self._pool.submit(post_form, client.backchannel_logout_uri, {"logout_token": token},
                                                timeout=self.timeout)
        results = {name: job.result() for name, job in jobs.items()}
        for name, status in results.items():
            log.info("OIDC back-channel logout of session %s to client %s: %s", closed.ref, name, status)
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=True)
