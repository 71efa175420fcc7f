"""CalDAV calendars (``caldav``) and CardDAV contacts (``carddav``): see :mod:`.connector`."""
from connectors.sdk.config import ConnectorConfig
from connectors.sdk.registry import ConnectorInfo

from .connector import CALDAV_FLAVOR, CARDDAV_FLAVOR, DavExporter, DavImporter, Flavor
from .objects import same_content


def _exporter(flavor: Flavor):
    def build(config: ConnectorConfig, vertical: str) -> DavExporter:
        return DavExporter(config, flavor)
    return build


def _importer(flavor: Flavor):
    def build(config: ConnectorConfig, vertical: str) -> DavImporter:
        return DavImporter(config, flavor)
    return build


CALDAV = ConnectorInfo("caldav", ("calendars",), "Calendars on a CalDAV server (one home per owner under the URL)",
                       exporter=_exporter(CALDAV_FLAVOR), importer=_importer(CALDAV_FLAVOR), options={})
CARDDAV = ConnectorInfo("carddav", ("contacts",),
                        "Address books on a CardDAV server (one home per owner under the URL)",
                        exporter=_exporter(CARDDAV_FLAVOR), importer=_importer(CARDDAV_FLAVOR), options={})

__all__ = ["CALDAV", "CARDDAV", "CALDAV_FLAVOR", "CARDDAV_FLAVOR", "DavExporter", "DavImporter", "same_content"]
