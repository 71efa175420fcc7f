"""The HTTP adapter connectors share: keep-alive pools per thread, auth, rate limit, retries.

One :class:`HttpClient` per connector instance. It is safe to use from many threads: each
thread gets its own ``requests.Session`` (keep-alive connections are reused within a thread,
sessions are not shared across threads), and the rate limiter is shared. Every request is
retried on timeouts, connection errors, HTTP 429 and 5xx under the client's
:class:`RetryPolicy`; 401/403 raise :class:`AuthError`, 404 :class:`NotFound`, other
unexpected statuses :class:`BadResponse`. Errors and logs show URLs through
:func:`redact_url` and never show headers, so credentials stay out of them.
"""
from __future__ import annotations

import base64
import binascii
import logging
import re
import threading
import time
import urllib.parse
from collections.abc import Callable, Collection, Iterator, Mapping
from email.utils import parsedate_to_datetime
from typing import BinaryIO

import requests
from requests.adapters import HTTPAdapter

from .auth import Auth
from .errors import AuthError, BadResponse, NotFound, TransientError
from .items import CHUNK
from .oauth import OAuth2
from .ratelimit import RateLimiter
from .retry import RetryPolicy, call_with_retries

log = logging.getLogger("connectors.http")

#: Statuses worth a retry: the peer is busy or broken for a moment.
RETRY_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504})
USER_AGENT = "relais-connectors/1.0 (+https://relais.example/)"


def redact_url(url: str) -> str:
    """The URL without user info and with query values hidden (tokens travel there sometimes)."""
    parts = urllib.parse.urlsplit(url)
    netloc = parts.hostname or ""
    if ":" in netloc:
        netloc = f"[{netloc}]"
    if parts.port:
        netloc += f":{parts.port}"
    query = "&".join(f"{k}=***" for k, _ in urllib.parse.parse_qsl(parts.query, keep_blank_values=True))
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def _retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


class _HeaderAuth(requests.auth.AuthBase):
    """Hands our Auth to requests (so ~/.netrc is never consulted instead)."""

    def __init__(self, auth: Auth | None) -> None:
        self._auth = auth

    def __call__(self, r):
        if self._auth is not None:
            r.headers.update(self._auth.headers())
        return r


Body = bytes | Callable[[], BinaryIO] | None


class HttpClient:
    def __init__(self, connector: str, *, auth: Auth | None = None, timeout: float = 60.0,
                 connect_timeout: float = 10.0, retry: RetryPolicy | None = None,
                 rate_limit: RateLimiter | None = None, pool_size: int = 16,
                 verify_tls: bool | str = True) -> None:
        self.connector = connector
        self.auth = auth
        self.timeout = (connect_timeout, timeout)
        self.retry = retry or RetryPolicy()
        self.rate_limit = rate_limit
        self.pool_size = pool_size
        self.verify_tls = verify_tls
        self._local = threading.local()
        self._sessions: list[requests.Session] = []
        self._lock = threading.Lock()
        self._requests_auth = _HeaderAuth(auth)
        if isinstance(auth, OAuth2) and auth.connector == "oauth2":  # built from a configuration: now it has a name
            auth.connector = connector

    def __repr__(self) -> str:
        who = self.auth.describe() if self.auth else "no auth"
        return f"HttpClient({self.connector!r}, {who}, timeout={self.timeout}, retry={self.retry.attempts})"

    def _session(self) -> requests.Session:
        s = getattr(self._local, "session", None)
        if s is None:
            s = requests.Session()
            adapter = HTTPAdapter(pool_connections=4, pool_maxsize=self.pool_size, max_retries=0)
            s.mount("http://", adapter)
            s.mount("https://", adapter)
            s.headers["User-Agent"] = USER_AGENT
            s.verify = self.verify_tls
            self._local.session = s
            with self._lock:
                self._sessions.append(s)
        return s

    def close(self) -> None:
        with self._lock:
            for s in self._sessions:
                s.close()
            self._sessions.clear()
        self._local = threading.local()

    # -- requests -----------------------------------------------------------------------
    def request(self, method: str, url: str, *, item: str | None = None,
                headers: Mapping[str, str] | None = None, body: Body = None, stream: bool = False,
                ok: Collection[int] = (), retry: bool = True) -> requests.Response:
        """Send one request (retried as the policy allows) and return the response.

        A 2xx status, or one listed in ``ok``, is returned; the caller closes a streamed
        response. ``body`` is bytes or a callable opening a fresh stream for each attempt.
        ``item`` names the item in errors.
        """
        what = f"{method} {redact_url(url)}"

        def attempt() -> requests.Response:
            return self._once(method, url, item, headers, body, stream, ok)

        if not retry:
            return attempt()
        return call_with_retries(attempt, self.retry, what=what)

    def _once(self, method, url, item, headers, body, stream, ok, renewed=False) -> requests.Response:
        if self.rate_limit is not None:
            self.rate_limit.acquire()
        safe = redact_url(url)
        data = body() if callable(body) else body
        t0 = time.monotonic()
        try:
            resp = self._session().request(method, url, headers=dict(headers or {}), data=data,
                                           stream=stream, timeout=self.timeout,
                                           auth=self._requests_auth, allow_redirects=True)
        except requests.exceptions.ConnectTimeout:
            raise TransientError(f"{method} could not connect within {self.timeout[0]:g} s",
                                 connector=self.connector, url=safe, item=item) from None
        except requests.exceptions.ReadTimeout:
            raise TransientError(f"{method} got no answer within {self.timeout[1]:g} s (read timeout)",
                                 connector=self.connector, url=safe, item=item) from None
        except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            raise TransientError(f"{method} connection failed: {_root_cause(exc)}",
                                 connector=self.connector, url=safe, item=item) from None
        except requests.exceptions.RequestException as exc:
            raise BadResponse(f"{method} failed: {type(exc).__name__}", connector=self.connector,
                              url=safe, item=item) from None
        finally:
            if hasattr(data, "close"):
                data.close()
        log.debug("%s %s -> %s in %.3f s", method, safe, resp.status_code, time.monotonic() - t0)
        status = resp.status_code
        if 200 <= status < 300 or status in ok:
            return resp
        snippet = _snippet(resp, stream)
        resp.close()
        invalidate = getattr(self.auth, "invalidate", None)
        if status == 401 and not renewed and callable(invalidate):
            # A token that expired early or was revoked (OAuth2): a new one, and the request once more.
            invalidate(resp.request.headers.get("Authorization"))
            log.info("%s: %s %s answered 401, sending it again with a new token", self.connector, method, safe)
            return self._once(method, url, item, headers, body, stream, ok, renewed=True)
        ctx = dict(connector=self.connector, url=safe, item=item)
        if status in (401, 403):
            raise AuthError(f"{method} refused: HTTP {status} {resp.reason} (check the credentials"
                            f"{' for ' + self.auth.describe() if self.auth else '; none were given'})", **ctx)
        if status == 404:
            raise NotFound(f"{method}: HTTP 404 not found", **ctx)
        if status in RETRY_STATUSES or status >= 500:
            raise TransientError(f"{method} answered HTTP {status} {resp.reason}{snippet}",
                                 retry_after=_retry_after(resp.headers.get("Retry-After")), **ctx)
        raise BadResponse(f"{method} answered HTTP {status} {resp.reason}{snippet}", **ctx)


def iter_body(resp: requests.Response, *, connector: str, item: str | None = None,
              chunk: int = CHUNK) -> Iterator[bytes]:
    """The response body in chunks; a cut-off or stalled body raises :class:`TransientError`."""
    safe = redact_url(resp.url)
    try:
        yield from resp.iter_content(chunk)
    except requests.exceptions.Timeout:
        raise TransientError("the body stalled (read timeout)", connector=connector, url=safe,
                             item=item) from None
    except (requests.exceptions.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise TransientError(f"the body was cut off: {_root_cause(exc)}", connector=connector,
                             url=safe, item=item) from None
    finally:
        resp.close()


def announced_sha256(headers: Mapping[str, str]) -> str | None:
    """The sha256 a response announces for its body, as lowercase hex, or None.

    Read from ``Repr-Digest: sha-256=:<base64>:`` (RFC 9530), ``Digest: SHA-256=<base64>``
    (RFC 3230) and ``OC-Checksum: SHA256:<hex>`` (ownCloud/Nextcloud).
    """
    for header in ("Repr-Digest", "Content-Digest", "Digest"):
        value = headers.get(header)
        if not value:
            continue
        for part in value.split(","):
            algo, _, encoded = part.strip().partition("=")
            if algo.strip().lower() == "sha-256" and encoded:
                if header == "Content-Digest" and headers.get("Content-Encoding", "identity") != "identity":
                    continue
                try:
                    raw = base64.b64decode(encoded.strip().strip(":"), validate=True)
                except (binascii.Error, ValueError):
                    continue
                if len(raw) == 32:
                    return raw.hex()
    value = headers.get("OC-Checksum")
    if value:
        for part in value.split():
            m = re.fullmatch(r"(?i)sha256:([0-9a-f]{64})", part.strip())
            if m:
                return m.group(1).lower()
    return None


def _snippet(resp: requests.Response, streamed: bool) -> str:
    """The start of an error body (read at most 300 bytes of a streamed one), on one line."""
    try:
        if streamed:
            text = resp.raw.read(300, decode_content=True) if resp.raw is not None else b""
        else:
            text = resp.content[:300]
    except Exception:  # noqa: BLE001 - a failing error body must not hide the status
        return ""
    text = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    text = " ".join(text.split())[:200]
    return f": {text}" if text else ""


def _root_cause(exc: BaseException) -> str:
    """The innermost reason (``Connection refused``), without urllib3's pool and URL noise."""
    seen: BaseException = exc
    for _ in range(10):  # bounded: exception chains can loop
        nxt = seen.__cause__ or seen.__context__
        if nxt is None or nxt is seen:
            break
        seen = nxt
    for arg in getattr(exc, "args", ()):
        reason = getattr(arg, "reason", None)
        if reason is not None:
            seen = reason
    msg = str(seen)
    if "] " in msg and msg.startswith("<"):
        msg = msg.split("] ", 1)[1]
    return f"{type(seen).__name__}: {msg}"[:300]


__all__ = ["HttpClient", "announced_sha256", "iter_body", "redact_url", "RETRY_STATUSES"]
