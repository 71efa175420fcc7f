"""The conformance kit fails connectors that lose or duplicate things (it is not a rubber stamp):
a WebDAV connector with one flaw each, run through the kit's properties, must be caught."""
from __future__ import annotations

import pytest
from hypothesis import Phase, settings

from connectors.sdk import ConnectorConfig, Item, Outcome
from connectors.sdk.conformance import ConformancePair, ConnectorConformance
from connectors.testing import serve_wsgi, wsgidav_app
from connectors.webdav import WebDavExporter, WebDavImporter


class DropsVendorFields(WebDavExporter):
    def describe(self, ref, content):
        return {k: v for k, v in ref.metadata.items() if k != "extra"}


class MangledNames(WebDavExporter):
    def list(self, owner, cursor=None):
        page = super().list(owner, cursor)
        for n, ref in enumerate(page.items):
            if ref.kind == "file" and any(ord(c) > 127 for c in ref.id):
                page.items[n] = type(ref)(**{**{f: getattr(ref, f) for f in ref.__dataclass_fields__},
                                              "id": ref.id.encode("ascii", "replace").decode(),
                                              "path": ref.path.encode("ascii", "replace").decode()})
        return page


class CopiesUnderNewNames(WebDavImporter):
    """Not idempotent: a second import of the same item writes a copy beside it."""

    def write(self, item):
        if item.kind == "file" and super().write(item) == Outcome.UNCHANGED:
            copy = Item(owner=item.owner, vertical=item.vertical, id=item.id + " (2)", path=item.path + " (2)",
                        content=item.content, metadata=dict(item.metadata))
            super().write(copy)
            return Outcome.CREATED
        return super().write(item) if item.kind == "folder" else Outcome.CREATED


class ForgetsFolderMetadata(WebDavImporter):
    """Creates folders but keeps none of their metadata (sharing, dates, vendor fields)."""

    def write(self, item):
        if item.kind == "folder":
            self.dav.mkcol(self.owner_url(item.owner), item=item.label)
            self.dav.mkcol(self.item_url(item.owner, item.id, folder=True), item=item.label)
            return Outcome.CREATED
        return super().write(item)


@pytest.fixture(autouse=True)
def no_shrinking():
    """A found flaw is enough here; shrinking it to the smallest example would take minutes."""
    previous = settings.get_current_profile_name()
    settings.register_profile("kit-no-shrink", phases=[Phase.explicit, Phase.reuse, Phase.generate])
    settings.load_profile("kit-no-shrink")
    yield
    settings.load_profile(previous)


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    with serve_wsgi(wsgidav_app(tmp_path_factory.mktemp("kit"))) as base:
        yield base + "/"


@pytest.mark.parametrize("exporter_cls,importer_cls,prop", [
    (DropsVendorFields, WebDavImporter, "test_round_trip"),
    (MangledNames, WebDavImporter, "test_round_trip"),
    (WebDavExporter, CopiesUnderNewNames, "test_import_twice_creates_no_duplicates"),
    (WebDavExporter, ForgetsFolderMetadata, "test_round_trip"),
])
def test_the_kit_catches_a_flawed_connector(url, request, exporter_cls, importer_cls, prop):
    cfg = ConnectorConfig.from_mapping({"url": url, "retries": {"attempts": 1}})
    pair = ConformancePair(exporter=exporter_cls(cfg), importer=importer_cls(cfg), examples=20)
    with pytest.raises(AssertionError):
        getattr(ConnectorConformance(), prop)(pair, request)
