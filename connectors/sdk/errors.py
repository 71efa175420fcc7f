"""Errors raised by connectors. Each names the connector, and where known the URL and the item.

URLs in messages never carry credentials (see :func:`connectors.sdk.http.redact_url`).
"""
from __future__ import annotations


class ConnectorError(Exception):
    """Something a connector could not do; ``str()`` says what, with connector, URL and item."""

    def __init__(self, message: str, *, connector: str | None = None, url: str | None = None,
                 item: str | None = None) -> None:
        self.reason = message
        self.connector = connector
        self.url = url
        self.item = item
        super().__init__(self._render())

    def _render(self) -> str:
        where = []
        if self.item is not None:
            where.append(f"item {self.item!r}")
        if self.url is not None:
            where.append(f"URL {self.url}")
        head = f"{self.connector}: " if self.connector else ""
        return f"{head}{self.reason}" + (f" ({', '.join(where)})" if where else "")

    def with_context(self, *, connector: str | None = None, url: str | None = None,
                     item: str | None = None) -> ConnectorError:
        """Fill in what the raiser did not know (the caller knows the item, say); returns self."""
        self.connector = self.connector or connector
        self.url = self.url or url
        self.item = self.item if self.item is not None else item
        self.args = (self._render(),)
        return self


class ConfigError(ConnectorError):
    """A connector configuration is wrong or incomplete (unknown name, missing variable...)."""


class AuthError(ConnectorError):
    """The source or target refused our credentials (HTTP 401/403). Not retried."""


class NotFound(ConnectorError):
    """The item or folder does not exist at the source (HTTP 404)."""


class TransientError(ConnectorError):
    """A failure worth retrying: timeout, connection error, HTTP 429 or 5xx, a cut-off body."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kw) -> None:
        self.retry_after = retry_after
        super().__init__(message, **kw)


class RetriesExhausted(ConnectorError):
    """A transient failure that lasted through every allowed attempt; ``last`` is the final one."""

    def __init__(self, message: str, *, attempts: int, last: ConnectorError, **kw) -> None:
        self.attempts = attempts
        self.last = last
        super().__init__(message, **kw)


class BadResponse(ConnectorError):
    """The peer answered something we cannot accept: garbage XML, a DTD, an unexpected status."""


class ChecksumMismatch(ConnectorError):
    """What the source sent does not match what it announced (size or sha256)."""

    def __init__(self, message: str, *, expected: str, actual: str, **kw) -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(message, **kw)


class BadItem(ConnectorError):
    """An item handed to an importer is refused before anything is written (id, metadata, checksum)."""
