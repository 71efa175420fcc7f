"""Back-channel single logout: when an SSO session ends, each CAS service it logged into is told.

A SAML `logoutRequest` (responses.logout_request, naming the ticket the service
validated) is POSTed to each registered service that takes logout requests
(`logout: true`, the default), in parallel, each with a short timeout. The SAML
SP and IdP call `notify` too when an IdP or a platform ends a session. Other
listeners (the OpenID Connect provider's back-channel logout) are called after.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from datetime import datetime

from ..rules.service_registry import ServiceRegistry, safe_url
from ..sessions import ClosedSession
from .callbacks import post_form
from .responses import logout_request

log = logging.getLogger(__name__)


class BackChannelLogout:
    """Tells the CAS services of closed sessions; `close` waits for the calls under way."""

    def __init__(self, registry: ServiceRegistry, *, timeout: float) -> None:
        self.registry = registry
        self.timeout = timeout
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="sso-slo")
        self.listeners: list[Callable[[ClosedSession, datetime], object]] = []  # told after the CAS services

    def notify(self, closed: ClosedSession, now: datetime) -> dict[str, int | None]:
        """POST a SAML LogoutRequest to each service that validated a ticket of the closed session.

        Calls run in parallel, each with a short timeout; returns "id URL" -> HTTP status (None: unreachable).
        """
        jobs: dict[str, Future[int | None]] = {}
        for service, ticket in closed.services:
            registered = self.registry.find(service)
            if registered is None or not registered.logout:
                continue
            jobs[f"{registered.id} {safe_url(service)}"] = self._pool.submit(
                post_form, service, {"logoutRequest": logout_request(ticket, now)}, timeout=self.timeout)
        results = {name: job.result() for name, job in jobs.items()}
        for name, status in results.items():
            log.info("back-channel logout of session %s to %s: %s", closed.ref, name, status)
        for listener in self.listeners:
            listener(closed, now)
        return results

    def close(self) -> None:
        self._pool.shutdown(wait=True)
