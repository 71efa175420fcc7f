"""Relais connectors: the SDK (``connectors.sdk``) and the reference connectors.

Reference connectors: ``connectors.webdav`` (documents over WebDAV) and ``connectors.dav``
(calendars over CalDAV, contacts over CardDAV). See connectors/README.md.
"""
