"""The CAS service registry: which services may receive tickets, and what each may see.

A service URL is matched strictly, on its parsed parts: scheme, host (and port)
and path. A URL with user info, a fragment, backslashes or control characters is
refused outright, so `https://app.example.org@evil.example/` and friends never
match. Three kinds of entry:

- `url`: the exact scheme, host, port and path (any query string is allowed);
- `prefix`: the same scheme, host and port, and a path starting with the prefix's
  path, which must end with `/` so `/app` cannot match `/app-evil`;
- `pattern`: a regular expression matched against the whole normalised URL
  (anchored with `fullmatch`); it must start with `^https?://` and name its host
  literally, so a pattern cannot accidentally match any host.

Unknown services are refused and never redirected to. Pure: the configuration's
`services:` entries in, the registered service a URL belongs to out.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import urlsplit


class RegistryError(ValueError):
    """A registry entry is unsafe or malformed."""


@dataclass(frozen=True)
class ServiceEntry:
    """One registered CAS service, as configured (`services:` in the SSO configuration)."""

    id: str
    match: str  # exact | prefix | pattern
    value: str
    attributes: tuple[str, ...] = ()
    proxy: bool = False
    logout: bool = True


@dataclass(frozen=True)
class ParsedUrl:
    scheme: str
    host: str  # lower-case host[:port], default ports removed
    path: str
    query: str

    @property
    def origin_and_path(self) -> str:
        return f"{self.scheme}://{self.host}{self.path}"


_UNSAFE_CHARACTER = re.compile(r'[\x00-\x20\x7f\\"<>]')  # controls, space, DEL, backslash, quote, angle brackets


def parse_service_url(url: str | None) -> ParsedUrl | None:
    """The parts of a service URL, or None when it is not a plain absolute http(s) URL."""
    if not isinstance(url, str) or not url or len(url) > 2048:
        return None
    if _UNSAFE_CHARACTER.search(url):
        return None
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("https", "http") or not parts.hostname or parts.username is not None \
            or parts.password is not None or "@" in parts.netloc or parts.fragment or "#" in url:
        return None
    host = parts.hostname.lower()
    if port is not None and port != {"https": 443, "http": 80}[parts.scheme]:
        host = f"{host}:{port}"
    path = parts.path or "/"
    if "/../" in path + "/" or "/./" in path + "/" or "%2e" in path.lower() or "%2f" in path.lower():
        return None
    return ParsedUrl(parts.scheme, host, path, parts.query)


def check_entry(entry: ServiceEntry) -> None:
    """Raise RegistryError unless the entry is safe to match against."""
    if entry.match in ("exact", "prefix"):
        parsed = parse_service_url(entry.value)
        if parsed is None:
            raise RegistryError(f"{entry.match}: {entry.value!r} is not a plain absolute http(s) URL")
        if entry.match == "prefix" and (parsed.query or not parsed.path.endswith("/")):
            raise RegistryError(f"prefix: {entry.value!r} must end its path with '/' and have no query")
    elif entry.match == "pattern":
        if not entry.value.startswith(("^https://", "^http://", "^https?://")):
            raise RegistryError(f"pattern: {entry.value!r} must start with ^https:// (or ^http://)")
        rest = entry.value.split("://", 1)[1]
        host = re.match(r"[A-Za-z0-9\-]+(\\\.[A-Za-z0-9\-]+)+(:\d+)?(?=/|\\/|$)", rest)
        if host is None:
            raise RegistryError(f"pattern: {entry.value!r} must name its host literally (dots escaped as \\.) "
                                "followed by a path")
        try:
            re.compile(entry.value)
        except re.error as exc:
            raise RegistryError(f"pattern: {entry.value!r}: {exc}") from None
    else:
        raise RegistryError(f"unknown match kind {entry.match!r}")


@dataclass(frozen=True)
class RegisteredService:
    id: str
    attributes: tuple[str, ...]
    proxy: bool
    logout: bool


class ServiceRegistry:
    """Finds the registered service a URL belongs to; first matching entry wins."""

    def __init__(self, entries: Iterable[ServiceEntry]):
        self._entries: list[tuple[ServiceEntry, re.Pattern[str] | None, ParsedUrl | None]] = []
        for entry in entries:
            check_entry(entry)
            compiled = re.compile(entry.value) if entry.match == "pattern" else None
            parsed = parse_service_url(entry.value) if entry.match != "pattern" else None
            self._entries.append((entry, compiled, parsed))

    def find(self, url: str | None) -> RegisteredService | None:
        parsed = parse_service_url(url) if url else None
        if parsed is None:
            return None
        for entry, compiled, own in self._entries:
            if compiled is not None:
                normal = parsed.origin_and_path + (f"?{parsed.query}" if parsed.query else "")
                hit = compiled.fullmatch(normal) is not None
            elif own is None:
                hit = False
            elif entry.match == "exact":
                hit = (own.scheme, own.host, own.path) == (parsed.scheme, parsed.host, parsed.path)
            else:
                hit = (own.scheme, own.host) == (parsed.scheme, parsed.host) and parsed.path.startswith(own.path)
            if hit:
                return RegisteredService(entry.id, entry.attributes, entry.proxy, entry.logout)
        return None


def safe_url(url: str | None) -> str:
    """A service URL for the logs: scheme, host and path only (queries can carry tickets)."""
    parsed = parse_service_url(url) if url else None
    return parsed.origin_and_path if parsed else "(malformed URL)"
