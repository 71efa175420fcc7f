"""CalDAV calendars (``caldav``) and CardDAV contacts (``carddav``): see :mod:`.connector`."""
from connectors.sdk.config import ConnectorConfig
from connectors.sdk.registry import ConnectorInfo

from .connector import CALDAV_FLAVOR, CARDDAV_FLAVOR, DavExporter, DavImporter, Flavor
from .discovery import Discovery, discover
from .objects import same_content


def _exporter(flavor: Flavor):
    def build(config: ConnectorConfig, vertical: str) -> DavExporter:
        return DavExporter(config, flavor)
    return build


def _importer(flavor: Flavor):
    def build(config: ConnectorConfig, vertical: str) -> DavImporter:
        return DavImporter(config, flavor)
    return build


_DISCOVER = ("true: the URL is only the server's address; the owners' homes are found beside the account's own "
             "(RFC 6764 .well-known, current-user-principal, {}-home-set)")
CALDAV = ConnectorInfo("caldav", ("calendars",), "Calendars on a CalDAV server (one home per owner under the URL)",
                       exporter=_exporter(CALDAV_FLAVOR), importer=_importer(CALDAV_FLAVOR),
                       options={"discover": _DISCOVER.format("calendar")})
CARDDAV = ConnectorInfo("carddav", ("contacts",),
                        "Address books on a CardDAV server (one home per owner under the URL)",
                        exporter=_exporter(CARDDAV_FLAVOR), importer=_importer(CARDDAV_FLAVOR),
                        options={"discover": _DISCOVER.format("addressbook")})

__all__ = ["CALDAV", "CARDDAV", "Discovery", "discover", "CALDAV_FLAVOR", "CARDDAV_FLAVOR", "DavExporter",
           "DavImporter", "same_content"]
