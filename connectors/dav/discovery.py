"""Finding CalDAV and CardDAV homes from a server's address (RFC 6764, RFC 5397, RFC 4791 §6.2.1, RFC 6352 §7.1.1).

Given any URL of the server (its root will do), :func:`discover`:

1. asks ``/.well-known/caldav`` (or ``carddav``) on that host for ``current-user-principal``,
   following the redirect to the service's context path (RFC 6764 §5); a server without the
   well-known URI (404, 405, 501, or no multistatus) is asked at the URL given instead (§6);
2. reads the principal of the account the connector logs in with (RFC 5397);
3. reads that principal's ``calendar-home-set`` and ``addressbook-home-set``.

The connectors then find every owner's home beside the account's own: homes are siblings on
the servers Relais meets (Radicale ``/<user>/``, SabreDAV and Nextcloud
``/remote.php/dav/calendars/<user>/``), so the owners' base is the parent of the home found.
"""
from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from lxml import etree

from connectors.sdk import BadResponse, HttpClient, NotFound, redact_url
from connectors.webdav.multistatus import CALDAV, CARDDAV, DAV, clark, parse_multistatus, propfind_body

SERVICES = {"caldav": (CALDAV, "calendar-home-set"), "carddav": (CARDDAV, "addressbook-home-set")}
_NO_WELL_KNOWN = (404, 405, 501)


@dataclass(frozen=True)
class Discovery:
    """What a server said about the account: where its service lives, who it is, its homes (absolute URLs)."""

    context_url: str
    principal_url: str
    calendar_homes: tuple[str, ...]
    addressbook_homes: tuple[str, ...]
    well_known: bool  # the context came from /.well-known/ (else from the URL given)

    def homes(self, service: str) -> tuple[str, ...]:
        return self.calendar_homes if service == "caldav" else self.addressbook_homes

    def owners_base(self, service: str) -> str:
        """Where the owners' homes are: the parent of the account's own home."""
        home = self.homes(service)[0]
        parent = home.rstrip("/").rsplit("/", 1)[0] + "/"
        return parent

    def to_dict(self) -> dict[str, object]:
        return {"context_url": redact_url(self.context_url), "principal_url": redact_url(self.principal_url),
                "calendar_homes": [redact_url(u) for u in self.calendar_homes],
                "addressbook_homes": [redact_url(u) for u in self.addressbook_homes], "well_known": self.well_known}


def discover(http: HttpClient, url: str, service: str) -> Discovery:
    """Ask the server at ``url`` where the logged-in account's ``service`` (caldav or carddav) homes are."""
    if service not in SERVICES:
        raise ValueError(f"service must be one of {', '.join(SERVICES)}, not {service!r}")
    parts = urlsplit(url)
    origin = f"{parts.scheme}://{parts.netloc}"
    context, principal = _principal(http, f"{origin}/.well-known/{service}")
    well_known = principal is not None
    if principal is None:
        context, principal = _principal(http, url)
    if principal is None:
        raise BadResponse(f"the server says nothing of current-user-principal, at /.well-known/{service} or at "
                          "the URL given: not a CalDAV/CardDAV server, or the URL is not where it answers",
                          connector=http.connector, url=redact_url(url))
    principal_url = urljoin(context, principal)
    found = _propfind(http, principal_url, [(CALDAV, "calendar-home-set"), (CARDDAV, "addressbook-home-set")])
    if not found:
        raise BadResponse("the principal answered no properties", connector=http.connector,
                          url=redact_url(principal_url))
    res = found[0]
    calendars = tuple(urljoin(principal_url, h) for h in _hrefs(res.props.get(clark(CALDAV, "calendar-home-set"))))
    books = tuple(urljoin(principal_url, h) for h in _hrefs(res.props.get(clark(CARDDAV, "addressbook-home-set"))))
    result = Discovery(context, principal_url, calendars, books, well_known)
    if not result.homes(service):
        ns, name = SERVICES[service]
        raise BadResponse(f"the principal has no {name}: the account has no {service} home there",
                          connector=http.connector, url=redact_url(principal_url))
    return result


def _principal(http: HttpClient, url: str, *, again: bool = True) -> tuple[str, str | None]:
    """(the URL answering after redirects, the current-user-principal href or None).

    A 301 or 302 drops the request's body on the way (HTTP clients do): when the redirected
    answer does not say who we are, the PROPFIND is sent again, whole, where it led."""
    try:
        resp = http.request("PROPFIND", url, body=propfind_body([(DAV, "current-user-principal")]),
                            headers={"Depth": "0", "Content-Type": "application/xml; charset=utf-8"},
                            ok=_NO_WELL_KNOWN)
    except NotFound:
        return url, None
    try:
        if resp.status_code != 207:
            return url, None
        final = resp.url or url
        found = parse_multistatus(resp.content, connector=http.connector, url=redact_url(final))
    finally:
        resp.close()
    for res in found:
        el = res.props.get(clark(DAV, "current-user-principal"))
        if el is None:
            continue
        if el.find(clark(DAV, "unauthenticated")) is not None:
            raise BadResponse("the server took us for an unauthenticated user (current-user-principal): "
                              "the connector's auth is missing or not accepted", connector=http.connector,
                              url=redact_url(final))
        hrefs = _hrefs(el)
        if hrefs:
            return final, hrefs[0]
    if again and final != url:
        return _principal(http, final, again=False)
    return final, None


def _propfind(http: HttpClient, url: str, props: list[tuple[str, str]]):
    resp = http.request("PROPFIND", url, body=propfind_body(props),
                        headers={"Depth": "0", "Content-Type": "application/xml; charset=utf-8"})
    try:
        if resp.status_code != 207:
            raise BadResponse(f"PROPFIND answered HTTP {resp.status_code}, expected 207 Multi-Status",
                              connector=http.connector, url=redact_url(url))
        return parse_multistatus(resp.content, connector=http.connector, url=redact_url(url))
    finally:
        resp.close()


def _hrefs(el: etree._Element | None) -> list[str]:
    if el is None:
        return []
    return [h.text.strip() for h in el.iter(clark(DAV, "href")) if h.text and h.text.strip()]


__all__ = ["Discovery", "SERVICES", "discover"]
