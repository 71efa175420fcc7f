"""The Edifice (ex-ODE, ENT Core) archive connector (``edifice``): see connectors/README.md.

Modules: :mod:`.archive` (safe reading of zips and folders), :mod:`.manifest`
(Manifest.json), :mod:`.workspace` (workspace rows <-> documents), :mod:`.view` (one export
as items, unmapped apps opaque), :mod:`.sidecar` (relais.json), :mod:`.staging` (writing an
export), :mod:`.connector` (the exporter and importer), :mod:`.dates`.
"""
from connectors.sdk.registry import ConnectorInfo

from .archive import BadArchive, Limits
from .connector import EdificeExporter, EdificeImporter, exporter_from_config, importer_from_config

CONNECTOR = ConnectorInfo(
    name="edifice", verticals=("documents",),
    summary="Edifice ENT exports (Manifest.json and per-app folders, zipped), one per owner in a folder",
    exporter=exporter_from_config, importer=importer_from_config,
    options={"path": "the folder of exports (<ms>_<user id>.zip or unpacked)",
             "timezone": "the Edifice server's time zone (default Europe/Paris)"})

__all__ = ["CONNECTOR", "BadArchive", "EdificeExporter", "EdificeImporter", "Limits"]
