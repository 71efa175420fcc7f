"""The WebDAV documents connector against a real wsgidav server: the conformance kit, folder
trees with non-ASCII names, files written by others, paging and resuming, large files streamed,
concurrent keep-alive downloads, Basic and bearer auth."""
from __future__ import annotations

import hashlib
import logging
import os
import threading
import tracemalloc
import unicodedata

import pytest

from connectors.sdk import (
    AuthError,
    ConfigError,
    ConnectorConfig,
    FileContent,
    Item,
    Outcome,
    check_record,
    open_exporter,
    open_importer,
)
from connectors.sdk.conformance import ConformancePair, ConnectorConformance, export_all
from connectors.testing import serve_wsgi, wsgidav_app
from connectors.webdav import WebDavExporter, WebDavImporter

PASSWORD = "s3cret-wsgidav"
ENV = {"ENT_A_PASSWORD": PASSWORD}


@pytest.fixture(scope="module")
def dav_root(tmp_path_factory):
    return tmp_path_factory.mktemp("webdav")


@pytest.fixture(scope="module")
def dav_url(dav_root):
    with serve_wsgi(wsgidav_app(dav_root, {"relais": PASSWORD})) as url:
        yield url + "/"


def config(url, **extra):
    return {"url": url, "auth": {"type": "basic", "username": "relais", "password_env": "ENT_A_PASSWORD"}, **extra}


@pytest.fixture
def pair(dav_url):
    exp = open_exporter("webdav", config(dav_url), environ=ENV)
    imp = open_importer("webdav", config(dav_url), environ=ENV)
    yield exp, imp
    exp.close()
    imp.close()


class TestWebDavConformance(ConnectorConformance):
    @pytest.fixture
    def conformance_pair(self, pair):
        exp, imp = pair
        return ConformancePair(exporter=exp, importer=imp)


def test_files_written_by_others_are_exported_with_derived_metadata(dav_url, dav_root, pair):
    exp, _ = pair
    home = dav_root / "legacy-user"
    nfd = unicodedata.normalize("NFD", "Élève")
    (home / nfd / "Sous dossier").mkdir(parents=True)
    (home / nfd / "Sous dossier" / "notes été.txt").write_bytes("déjà vu\n".encode())
    (home / "vide").mkdir()
    (home / "racine.pdf").write_bytes(b"%PDF-1.4 fake")
    refs = list(exp.iter_refs("legacy-user"))
    ids = [r.id for r in refs]
    assert ids == ["racine.pdf", "vide", "Élève", "Élève/Sous dossier", "Élève/Sous dossier/notes été.txt"]
    assert all(unicodedata.is_normalized("NFC", i) for i in ids)
    items = {i.id: i for i in export_all(exp, "legacy-user")}
    note = items["Élève/Sous dossier/notes été.txt"]
    assert note.content.read() == "déjà vu\n".encode()
    assert note.sha256 == hashlib.sha256(note.content.read()).hexdigest()
    assert note.metadata["media_type"] == "text/plain" and note.metadata["modified"].endswith("Z")
    assert items["vide"].kind == "folder"
    for item in items.values():
        check_record("documents", item.record())
    assert "legacy-user" in set(exp.iter_owners())


def test_listing_pages_and_resumes_from_a_cursor(dav_url, pair):
    _, imp = pair
    items = [Item.folder("pager", "documents", f"d{n}") for n in range(3)]
    items += [Item.from_bytes("pager", "documents", f"d{n}/f{m}.txt", f"{n}{m}".encode())
              for n in range(3) for m in range(3)]
    imp.import_items(items, stop_on_error=True)
    small = WebDavExporter(ConnectorConfig.from_mapping(config(dav_url, options={"page_size": 2}), environ=ENV))
    first = small.list("pager")
    assert first.next_cursor is not None and len(first.items) >= 2
    # a new process resumes from the checkpointed cursor
    again = WebDavExporter(ConnectorConfig.from_mapping(config(dav_url, options={"page_size": 2}), environ=ENV))
    rest = list(again.iter_refs("pager", first.next_cursor))
    assert sorted(r.id for r in first.items + rest) == sorted(i.id for i in items)
    assert len(first.items + rest) == len(items)


def test_large_file_is_streamed_both_ways(dav_url, pair, tmp_path):
    exp, imp = pair
    size = 48 * 1024 * 1024
    src = tmp_path / "big.bin"
    block = os.urandom(1 << 20)
    with open(src, "wb") as f:
        for n in range(size >> 20):
            f.write(block[n:] + block[:n])
    content = FileContent.from_path(src)
    item = Item(owner="big", vertical="documents", id="Vidéos/cours filmé.bin", path="Vidéos/cours filmé.bin",
                content=content, metadata={"media_type": "application/octet-stream"})
    tracemalloc.start()
    try:
        assert imp.put(item) == Outcome.CREATED
        ref = next(r for r in exp.iter_refs("big") if r.kind == "file")
        got = exp.fetch(ref, spool_dir=tmp_path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(got.content, FileContent) and got.sha256 == content.sha256 and got.size == size
    assert peak < 16 * 1024 * 1024, f"peak Python memory {peak / 1e6:.1f} MB for a {size / 1e6:.0f} MB file"
    spool = got.content.path
    got.content.release()
    assert not spool.exists()


def test_fetch_many_is_concurrent_over_kept_alive_connections(dav_root):
    ports: list[str] = []
    seen = threading.Lock()
    app = wsgidav_app(dav_root / "conc", {"relais": PASSWORD})

    def recording(environ, start_response):
        with seen:
            ports.append(environ.get("REMOTE_PORT"))
        return app(environ, start_response)

    with serve_wsgi(recording, threads=8) as url:
        cfg = ConnectorConfig.from_mapping(config(url + "/", workers=4), environ=ENV)
        imp, exp = WebDavImporter(cfg), WebDavExporter(cfg)
        items = [Item.from_bytes("conc", "documents", f"f{n:02}.bin", os.urandom(2000 + n)) for n in range(40)]
        imp.import_items(items, stop_on_error=True)
        ports.clear()
        results = list(exp.fetch_many(exp.iter_refs("conc"), workers=4))
    assert len(results) == 40 and all(r.error is None for r in results)
    want = {i.id: i.sha256 for i in items}
    assert {r.item.id: r.item.sha256 for r in results} == want
    # 41 requests (a listing, 40 GETs) over at most one connection per worker thread (+ the listing's)
    assert len(ports) == 41 and len(set(ports)) <= 5, sorted(set(ports))


def test_wrong_password_is_a_clear_error_without_the_secret(dav_url, caplog):
    caplog.set_level(logging.DEBUG)
    exp = open_exporter("webdav", config(dav_url), environ={"ENT_A_PASSWORD": "wrong-pass-123"})
    with pytest.raises(AuthError) as info:
        list(exp.iter_owners())
    message = str(info.value)
    assert "webdav" in message and "401" in message and dav_url.rstrip("/") in message and "relais" in message
    assert "wrong-pass-123" not in message + caplog.text
    assert "wrong-pass-123" not in repr(exp.http) + repr(exp.config)


def test_bearer_token_reaches_the_server(dav_root):
    inner = wsgidav_app(dav_root / "bearer")

    def bearer_only(environ, start_response):
        if environ.get("HTTP_AUTHORIZATION") != "Bearer tok-42":
            start_response("401 Unauthorized", [("WWW-Authenticate", "Bearer"), ("Content-Length", "0")])
            return [b""]
        return inner(environ, start_response)

    with serve_wsgi(bearer_only) as url:
        good = {"url": url + "/", "auth": {"type": "bearer", "token_env": "ENT_TOKEN"}}
        imp = open_importer("webdav", good, environ={"ENT_TOKEN": "tok-42"})
        assert imp.put(Item.from_bytes("tok", "documents", "a.txt", b"a")) == Outcome.CREATED
        exp = open_exporter("webdav", good, environ={"ENT_TOKEN": "tok-41"})
        with pytest.raises(AuthError) as info:
            list(exp.iter_refs("tok"))
        assert "tok-41" not in str(info.value) and "bearer" in str(info.value)


def test_configuration_names_what_is_missing():
    with pytest.raises(ConfigError, match="ENT_A_PASSWORD"):
        open_exporter("webdav", config("https://dav.example/"), environ={})
    with pytest.raises(ConfigError, match="password_env"):
        open_exporter("webdav", {"url": "https://dav.example/", "auth": {"type": "basic", "username": "u",
                                                                          "password": "inline"}}, environ={})
    with pytest.raises(ConfigError, match="credentials"):
        open_exporter("webdav", {"url": "https://u:p@dav.example/"}, environ={})
    with pytest.raises(ConfigError, match="no connector named 'nfs'.*webdav"):
        open_exporter("nfs", {"url": "https://dav.example/"})
    with pytest.raises(ConfigError, match="handles documents, not 'calendars'"):
        open_exporter("webdav", {"url": "https://dav.example/"}, "calendars")
