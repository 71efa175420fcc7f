"""The WebDAV documents connector (``webdav``): see :mod:`connectors.webdav.connector`."""
from connectors.sdk.registry import ConnectorInfo

from .connector import WebDavExporter, WebDavImporter

CONNECTOR = ConnectorInfo(
    name="webdav", verticals=("documents",),
    summary="Documents with their folder tree on a WebDAV server (one collection per owner under the URL)",
    exporter=WebDavExporter, importer=WebDavImporter,
    options={"page_size": "items per listing page (default 500)"})

__all__ = ["CONNECTOR", "WebDavExporter", "WebDavImporter"]
