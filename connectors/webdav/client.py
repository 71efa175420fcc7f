"""WebDAV requests over the SDK's :class:`HttpClient` (retries, auth, rate limit included)."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import BinaryIO

from connectors.sdk import BadResponse, HttpClient, NotFound, redact_url

from .multistatus import DAV, DavResource, clark, parse_multistatus, propfind_body, proppatch_body


class DavClient:
    def __init__(self, http: HttpClient) -> None:
        self.http = http
        self.connector = http.connector

    def propfind(self, url: str, props: Iterable[tuple[str, str]], *, depth: int | str = 1,
                 item: str | None = None) -> list[DavResource]:
        resp = self.http.request("PROPFIND", url, item=item, body=propfind_body(props),
                                 headers={"Depth": str(depth), "Content-Type": "application/xml; charset=utf-8"})
        try:
            if resp.status_code != 207:
                raise BadResponse(f"PROPFIND answered HTTP {resp.status_code}, expected 207 Multi-Status",
                                  connector=self.connector, url=redact_url(url), item=item)
            return parse_multistatus(resp.content, connector=self.connector, url=redact_url(url))
        finally:
            resp.close()

    def propfind_one(self, url: str, props: Iterable[tuple[str, str]], *,
                     item: str | None = None) -> DavResource | None:
        """The resource itself (Depth 0), or None when it does not exist."""
        try:
            found = self.propfind(url, props, depth=0, item=item)
        except NotFound:
            return None
        if not found:
            raise BadResponse("PROPFIND (Depth 0) answered no response", connector=self.connector,
                              url=redact_url(url), item=item)
        return found[0]

    def proppatch(self, url: str, props: Mapping[tuple[str, str], str | None], *, item: str | None = None) -> None:
        resp = self.http.request("PROPPATCH", url, item=item, body=proppatch_body(props),
                                 headers={"Content-Type": "application/xml; charset=utf-8"})
        try:
            if resp.status_code == 207:
                for res in parse_multistatus(resp.content, connector=self.connector, url=redact_url(url)):
                    missing = [k for k in props if _clark(k) not in res.props]
                    failed = [k for k in missing if props[k] is not None]
                    if failed:
                        raise BadResponse(f"PROPPATCH did not set {', '.join(n for _, n in failed)}",
                                          connector=self.connector, url=redact_url(url), item=item)
        finally:
            resp.close()

    def mkcol(self, url: str, *, body: bytes | None = None, item: str | None = None) -> bool:
        """Create a collection; False if it already existed (405)."""
        headers = {"Content-Type": "application/xml; charset=utf-8"} if body else {}
        resp = self.http.request("MKCOL", url, item=item, body=body, headers=headers, ok=(405,))
        resp.close()
        return resp.status_code != 405

    def put(self, url: str, open_body: Callable[[], BinaryIO], size: int, media_type: str, *,
            item: str | None = None, extra_headers: Mapping[str, str] | None = None) -> str | None:
        """Upload, streaming from a fresh ``open_body()`` on each attempt; returns the new ETag if sent."""
        headers = {"Content-Type": media_type, "Content-Length": str(size), **(extra_headers or {})}
        # an empty file-like body would go out chunked; send no body at all instead
        resp = self.http.request("PUT", url, item=item, body=open_body if size else b"", headers=headers)
        resp.close()
        return resp.headers.get("ETag")


def _clark(key: tuple[str, str]) -> str:
    return clark(*key)


__all__ = ["DavClient", "DAV"]
