"""The Relais connector SDK: what a connector to an ENT (or any source or target) implements.

Read connectors/README.md first. The public API:

* items: :class:`Item`, :class:`ItemRef`, :class:`Content` (:class:`BytesContent`,
  :class:`FileContent`), ``VERTICALS``;
* interfaces: :class:`Exporter` (``owners``, ``list``, ``open``; gets ``fetch``,
  ``fetch_many``, ``export``, ``changes``: incremental sync, :mod:`connectors.sdk.sync`),
  :class:`Importer` (``write``; gets ``put``, ``check``,
  ``import_items``), :class:`Page`, :class:`Body`, :class:`Outcome`, :class:`ImportReport`;
* plumbing: :class:`HttpClient`, :class:`RetryPolicy`, :class:`RateLimiter`,
  :class:`BasicAuth`, :class:`BearerToken`, :class:`OAuth2` (tokens refreshed), :class:`Secret`,
  :func:`parse_xml`;
* configuration and names: :class:`ConnectorConfig`, :mod:`connectors.sdk.registry`;
* errors: :class:`ConnectorError` and its kinds;
* the conformance kit: :mod:`connectors.sdk.conformance` (its pytest plugin:
  :mod:`connectors.sdk.pytest_plugin`), and a new connector's package: :mod:`connectors.sdk.template`.

This package is the ``relais-connector-sdk`` distribution (``pyproject.toml`` here): it imports
nothing of the Relais server. Vendors: connectors/GUIDE.md.
"""
from .auth import Auth, BasicAuth, BearerToken, Secret
from .config import ConnectorConfig
from .errors import (
                     AuthError,
                     BadItem,
                     BadResponse,
                     ChecksumMismatch,
                     ConfigError,
                     ConnectorError,
                     NotFound,
                     RetriesExhausted,
                     TransientError,
)
from .http import HttpClient, redact_url
from .interfaces import Body, Exporter, Fetched, Importer, ImportReport, Outcome, Page
from .items import EMPTY_SHA256, KINDS, VERTICALS, BytesContent, Content, FileContent, Item, ItemRef, Kind, check_path
from .oauth import OAuth2
from .ratelimit import RateLimiter
from .registry import ConnectorInfo, open_exporter, open_importer
from .retry import RetryPolicy
from .safexml import parse_xml
from .schemas import FORMAT_VERSION, check_index, check_record, index_document
from .sync import Changes

__all__ = [
    "Auth", "BasicAuth", "BearerToken", "Secret", "ConnectorConfig", "AuthError", "BadItem", "BadResponse",
    "ChecksumMismatch", "ConfigError", "ConnectorError", "NotFound", "RetriesExhausted", "TransientError",
    "HttpClient", "redact_url", "Body", "Exporter", "Fetched", "Importer", "ImportReport", "Outcome", "Page",
    "EMPTY_SHA256", "KINDS", "VERTICALS", "BytesContent", "Content", "FileContent", "Item", "ItemRef", "Kind",
    "check_path", "RateLimiter", "ConnectorInfo", "open_exporter", "open_importer", "RetryPolicy", "parse_xml",
    "FORMAT_VERSION", "check_index", "check_record", "index_document", "OAuth2", "Changes",
]
