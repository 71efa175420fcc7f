"""Outgoing HTTP calls of the CAS server (proxy callbacks, back-channel logout): the network edge.

TLS certificates are verified (the default context), redirects are not
followed (CAS 3.0 section 2.5.4: a 3xx is not a success), and every call has a
short timeout. URLs are logged without their query, which carries tickets.
"""

from __future__ import annotations

import logging
import urllib.error
import urllib.parse
import urllib.request

log = logging.getLogger(__name__)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


_opener = urllib.request.build_opener(_NoRedirect)


def _where(url: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


def get_ok(url: str, params: dict[str, str], *, timeout: float) -> bool:
    """GET url?params; True only for a 200."""
    sep = "&" if urllib.parse.urlsplit(url).query else "?"
    try:
        with _opener.open(url + sep + urllib.parse.urlencode(params), timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("callback to %s failed: %s", _where(url), type(exc).__name__)
        return False


def post_form(url: str, fields: dict[str, str], *, timeout: float) -> int | None:
    """POST a form; the status code, or None when the peer could not be reached."""
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(url, data=data, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
    try:
        with _opener.open(request, timeout=timeout) as resp:
            return resp.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, OSError, ValueError) as exc:
        log.warning("logout request to %s failed: %s", _where(url), type(exc).__name__)
        return None
