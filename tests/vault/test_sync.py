"""Incremental sync on real servers: wsgidav (no sync-collection: ETags compared) and Radicale (RFC 6578
sync tokens) for documents, calendars and contacts; a change, an addition and a deletion each found,
only they read; a refused token; the completeness check catching a miss; the command's --json."""
from __future__ import annotations

import json

import pytest
import requests
from click.testing import CliRunner

from app.cli import main
from connectors.sdk import Item, open_importer
from services.vault.adapters.local_store import LocalStore
from services.vault.items import Vault
from services.vault.rules.completeness import NOT_IN_VAULT
from services.vault.sync import state as sync_state
from services.vault.sync.run import sync
from services.vault.transfer.peers import open_peer
from tests.connectors.test_dav import ICS, VCF
from tests.vault.test_transfer import TENANT, seed_source, servers  # noqa: F401 - the fixture

PASSWORD = "s3cret"


def live(engine, store, person, vertical):
    return {v.item_id: v for v in Vault(engine, store).current(person) if v.vertical == vertical}


def test_webdav_without_sync_collection_compares_etags(engine, tmp_path, servers):  # noqa: F811
    store = LocalStore(tmp_path / "vault", TENANT)
    source = open_peer("webdav", {"url": servers["source"], "workers": 4})
    first = sync(engine, store, source, workers=4)
    assert first.complete, first.to_dict()["incomplete"]
    assert {p.mode for p in first.persons} == {"etag"} and all(p.full for p in first.persons)
    assert first.total("new_versions") == 10 and first.total("source_items") == 10  # 6 files, 4 folders

    quiet = sync(engine, store, source, workers=4)
    assert quiet.complete and (quiet.total("changed"), quiet.total("bytes"), quiet.total("new_versions")) == (0, 0, 0)

    root = servers["source_root"]
    (root / "2605692/Mes documents/Cours/maths.txt").write_bytes(b"Thales\n")  # a change
    (root / "2605693/nouveau.txt").write_bytes(b"ajout du jour\n")  # an addition
    (root / "2605692/Mes documents/Cours/partage.txt").unlink()  # a deletion
    after = sync(engine, store, source, workers=4)
    assert after.complete, after.to_dict()["incomplete"]
    assert after.total("bytes") == len(b"Thales\n") + len(b"ajout du jour\n")  # only they were read
    assert after.total("deleted") == 1
    a, b = live(engine, store, "2605692", "documents"), live(engine, store, "2605693", "documents")
    assert Vault(engine, store).read(a["Mes documents/Cours/maths.txt"]) == b"Thales\n"
    assert "Mes documents/Cours/partage.txt" not in a and "nouveau.txt" in b
    versions = Vault(engine, store).versions("2605692", "documents", "Mes documents/Cours/partage.txt")
    assert versions[-1].content_sha256 is None  # a tombstone: restorable
    assert sync(engine, store, source, workers=4).total("changed") == 0


def test_completeness_check_names_what_the_vault_misses(sqlite_engine, tmp_path, servers):  # noqa: F811
    engine, store = sqlite_engine, LocalStore(tmp_path / "vault", TENANT)
    source = open_peer("webdav", {"url": servers["source"]})
    assert sync(engine, store, source, persons=["2605693"]).complete
    Vault(engine, store).delete("2605693", "documents", "vide.txt")  # lost from the vault, unchanged at the source
    again = sync(engine, store, source, persons=["2605693"])
    assert not again.complete
    assert again.persons[0].misses == [{"item": "vide.txt", "reason": NOT_IN_VAULT}]


@pytest.fixture
def radicale(tmp_path, monkeypatch):
    from connectors.testing import radicale_app, serve_wsgi
    monkeypatch.setenv("DAV_PASSWORD", PASSWORD)
    with serve_wsgi(radicale_app(tmp_path / "radicale", {"relais": PASSWORD})) as url:
        yield url + "/"


def cfg(url):
    return {"url": url, "auth": {"type": "basic", "username": "relais", "password_env": "DAV_PASSWORD"}}


def _event(uid: str, summary: str) -> bytes:
    return (f"BEGIN:VCALENDAR\r\nVERSION:2.0\r\nPRODID:-//ENT A//FR\r\nBEGIN:VEVENT\r\nUID:{uid}\r\n"
            f"DTSTAMP:20260901T080000Z\r\nDTSTART:20260902T080000Z\r\nSUMMARY:{summary}\r\nEND:VEVENT\r\n"
            "END:VCALENDAR\r\n").encode()


def _card(uid: str, name: str) -> bytes:
    return f"BEGIN:VCARD\r\nVERSION:4.0\r\nUID:{uid}\r\nFN:{name}\r\nEND:VCARD\r\n".encode()


@pytest.mark.parametrize("name,vertical,coll,first,make,ext", [
    ("caldav", "calendars", "perso", ICS, _event, "ics"),
    ("carddav", "contacts", "parents", VCF, _card, "vcf"),
])
def test_dav_sync_tokens_find_a_change_an_addition_and_a_deletion(sqlite_engine, tmp_path, radicale, name,
                                                                    vertical, coll, first, make, ext):
    engine, store = sqlite_engine, LocalStore(tmp_path / "vault", TENANT)
    media = "text/calendar" if ext == "ics" else "text/vcard"
    imp = open_importer(name, cfg(radicale))
    imp.import_items([
        Item.folder("2605692", vertical, coll, metadata={"displayname": "Vie de classe"}),
        Item.from_bytes("2605692", vertical, f"{coll}/a.{ext}", first, metadata={"media_type": media}),
        Item.from_bytes("2605692", vertical, f"{coll}/b.{ext}", make("b@ent", "Bérénice"),
                        metadata={"media_type": media}),
        Item.from_bytes("2605692", vertical, f"{coll}/c.{ext}", make("c@ent", "Camille"),
                        metadata={"media_type": media})], stop_on_error=True)
    source = open_peer(name, cfg(radicale))
    one = sync(engine, store, source)
    assert one.complete and one.persons[0].mode == "sync-collection" and one.persons[0].full
    assert one.total("new_versions") == 4

    imp.import_items([Item.from_bytes("2605692", vertical, f"{coll}/b.{ext}", make("b@ent", "Bérénice 2"),
                                      metadata={"media_type": media}),
                      Item.from_bytes("2605692", vertical, f"{coll}/d.{ext}", make("d@ent", "Dora"),
                                      metadata={"media_type": media})], stop_on_error=True)
    gone = requests.delete(f"{radicale}2605692/{coll}/c.{ext}", auth=("relais", PASSWORD), timeout=10)
    assert gone.status_code in (200, 204)
    two = sync(engine, store, source)
    p = two.persons[0]
    assert two.complete, two.to_dict()["incomplete"]
    assert (p.full, p.changed, p.new_versions, p.deleted) == (False, 2, 2, 1)
    items = live(engine, store, "2605692", vertical)
    assert set(items) == {coll, f"{coll}/a.{ext}", f"{coll}/b.{ext}", f"{coll}/d.{ext}"}
    assert "Bérénice 2".encode() in Vault(engine, store).read(items[f"{coll}/b.{ext}"])

    # a token the server refuses (expired): the collection is listed in full again, nothing lost nor re-added
    with engine.begin() as conn:
        state = sync_state.load(conn, TENANT, name, vertical, "2605692")
        state["tokens"][coll] = "http://radicale.org/ns/sync/0000"
        sync_state.save(conn, TENANT, name, vertical, "2605692", state, two.started_at)
    three = sync(engine, store, source)
    assert three.complete and three.persons[0].full
    assert (three.total("new_versions"), three.total("deleted")) == (0, 0)


def test_relais_vault_sync_prints_json(sqlite_engine, tmp_path, servers, monkeypatch):  # noqa: F811
    monkeypatch.setenv("RELAIS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RELAIS_DATABASE_URL", str(sqlite_engine.url))
    monkeypatch.setenv("RELAIS_TENANT", TENANT)
    conf = tmp_path / "webdav.yaml"
    conf.write_text(json.dumps({"url": servers["source"]}))
    out = CliRunner().invoke(main, ["vault", "sync", "--from", "webdav", "--config", str(conf), "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert (report["complete"], report["persons"], report["new_versions"]) == (True, 2, 10)
    bad = CliRunner().invoke(main, ["vault", "sync", "--from", "nosuch", "--json"])
    assert bad.exit_code == 2 and "nosuch" in bad.output


def test_the_service_syncs_on_its_timer_and_an_erasure_forgets_the_state(sqlite_engine, tmp_path, servers,  # noqa: F811
                                                                       monkeypatch):
    from app.bootstrap import PROCESSES, ports
    from relais.config import Settings
    from relais.runtime import Context, StartError
    from services.vault.subject import eraser

    data = tmp_path / "data"
    (data / "connectors").mkdir(parents=True)
    (data / "connectors" / "webdav.yaml").write_text(json.dumps({"url": servers["source"]}))
    monkeypatch.setenv("RELAIS_DATA_DIR", str(data))
    monkeypatch.setenv("RELAIS_TENANT", TENANT)
    monkeypatch.setenv("RELAIS_VAULT_SYNC", "webdav")
    monkeypatch.setenv("RELAIS_VAULT_SYNC_INTERVAL", "120")
    settings = Settings.from_env()
    parts = PROCESSES["vault"].start(Context(settings, sqlite_engine, ports("vault", settings, sqlite_engine)))
    timer = next(t for t in parts.timers if t.name == "sync")
    assert timer.every_s == 120
    timer.run()
    store = LocalStore(data / "vault", TENANT)
    assert "Mes documents/Cours/maths.txt" in live(sqlite_engine, store, "2605692", "documents")

    class Request:
        person, subject_hash = "2605692", "0" * 64

    with sqlite_engine.begin() as conn:
        assert eraser(store)(conn, Request()).counts["sync_states"] == 1  # type: ignore[arg-type]
        assert sync_state.load(conn, TENANT, "webdav", "documents", "2605692") is None

    monkeypatch.setenv("RELAIS_VAULT_SYNC", "webdav,nosuch")
    with pytest.raises(StartError, match="RELAIS_VAULT_SYNC: no connector named 'nosuch'"):
        PROCESSES["vault"].start(Context(Settings.from_env(), sqlite_engine, ports("vault", settings, sqlite_engine)))


def test_webdav_connector_uses_sync_collection_where_the_server_offers_it(sqlite_engine, tmp_path, radicale):
    """Radicale's calendar collections offer RFC 6578: the WebDAV connector pointed at a person's home there
    (each calendar an "owner") asks what changed instead of listing."""
    engine, store = sqlite_engine, LocalStore(tmp_path / "vault", TENANT)
    imp = open_importer("caldav", cfg(radicale))
    media = {"media_type": "text/calendar"}
    imp.import_items([Item.folder("2605692", "calendars", "perso"),
                      *(Item.from_bytes("2605692", "calendars", f"perso/{n}.ics", _event(f"{n}@ent", n), metadata=media)
                        for n in ("a", "b", "c"))], stop_on_error=True)
    source = open_peer("webdav", cfg(radicale + "2605692/"))
    one = sync(engine, store, source, persons=["perso"])
    assert one.complete and one.persons[0].mode == "sync-collection" and one.total("new_versions") == 3
    imp.import_items([Item.from_bytes("2605692", "calendars", f"perso/{n}.ics", _event(f"{n}@ent", f"{n} v2"),
                                      metadata=media) for n in ("b", "d")], stop_on_error=True)
    assert requests.delete(f"{radicale}2605692/perso/c.ics", auth=("relais", PASSWORD), timeout=10).ok
    two = sync(engine, store, source, persons=["perso"])
    p = two.persons[0]
    assert two.complete, two.to_dict()["incomplete"]
    assert (p.full, p.changed, p.new_versions, p.deleted) == (False, 2, 2, 1)
    assert set(live(engine, store, "perso", "documents")) == {"a.ics", "b.ics", "d.ics"}


def test_webdav_refusing_depth_infinity_is_walked_folder_by_folder(sqlite_engine, tmp_path):
    """RFC 4918 lets a server refuse Depth: infinity (403 propfind-finite-depth): the sync walks the folders."""
    from connectors.testing import serve_wsgi, wsgidav_app

    root = tmp_path / "ent"
    seed_source(root)
    app = wsgidav_app(root)
    refused = []

    def finite(environ, start_response):
        if environ["REQUEST_METHOD"] == "PROPFIND" and environ.get("HTTP_DEPTH") == "infinity":
            refused.append(environ["PATH_INFO"])
            start_response("403 Forbidden", [("Content-Type", "application/xml")])
            return [b'<?xml version="1.0"?><d:error xmlns:d="DAV:"><d:propfind-finite-depth/></d:error>']
        return app(environ, start_response)

    engine, store = sqlite_engine, LocalStore(tmp_path / "vault", TENANT)
    with serve_wsgi(finite) as url:
        source = open_peer("webdav", {"url": url + "/", "retries": 0})
        assert sync(engine, store, source).complete
        (root / "2605693/vide.txt").write_bytes(b"plus vide\n")
        again = sync(engine, store, source)
    assert again.complete and again.total("bytes") == len(b"plus vide\n") and again.total("new_versions") == 1
    assert refused  # asked once per exporter, then folder by folder


def test_a_caldav_server_without_sync_collection_is_compared_by_etags(sqlite_engine, tmp_path, monkeypatch):
    from connectors.testing import radicale_app, serve_wsgi

    monkeypatch.setenv("DAV_PASSWORD", PASSWORD)
    app = radicale_app(tmp_path / "radicale", {"relais": PASSWORD})

    def without_report(environ, start_response):
        if environ["REQUEST_METHOD"] == "REPORT":
            start_response("405 Method Not Allowed", [("Content-Type", "text/plain")])
            return [b"no REPORT here"]
        return app(environ, start_response)

    engine, store = sqlite_engine, LocalStore(tmp_path / "vault", TENANT)
    media = {"media_type": "text/calendar"}
    with serve_wsgi(without_report) as url:
        imp = open_importer("caldav", cfg(url + "/"))
        imp.import_items([Item.folder("2605692", "calendars", "perso"),
                          *(Item.from_bytes("2605692", "calendars", f"perso/{n}.ics", _event(f"{n}@ent", n),
                                            metadata=media) for n in ("a", "b"))], stop_on_error=True)
        source = open_peer("caldav", cfg(url + "/"))
        assert sync(engine, store, source).complete
        imp.import_items([Item.from_bytes("2605692", "calendars", "perso/b.ics", _event("b@ent", "b v2"),
                                          metadata=media)], stop_on_error=True)
        assert requests.delete(f"{url}/2605692/perso/a.ics", auth=("relais", PASSWORD), timeout=10).ok
        again = sync(engine, store, source)
    p = again.persons[0]
    assert again.complete, again.to_dict()["incomplete"]
    assert (p.mode, p.changed, p.new_versions, p.deleted) == ("etag", 1, 1, 1)
    assert set(live(engine, store, "2605692", "calendars")) == {"perso", "perso/b.ics"}
