"""Contract-end mode on real servers: a WebDAV source (wsgidav) exported into the vault, imported
into an empty WebDAV target, verified; idempotent re-runs; a partly filled target; a changed
source; CalDAV and CardDAV (Radicale) through the vault; the commands' exit codes and --json."""
from __future__ import annotations

import hashlib
import json
import unicodedata
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from sqlalchemy import text

from app.cli import main
from connectors.sdk import Item, open_exporter, open_importer
from connectors.testing import radicale_app, serve_wsgi, wsgidav_app
from services.vault.adapters.local_store import LocalStore
from services.vault.items import Vault
from services.vault.transfer.export import export
from services.vault.transfer.import_ import import_
from services.vault.transfer.peers import open_peer
from services.vault.transfer.verify import verify
from tests.connectors.test_dav import ICS, VCF

TENANT = "ac-test"
SHARED = b"Fiche d'exercices distribuee a toute la classe\n" * 200
BIG = bytes(range(256)) * 6000  # 1.5 MB: spooled to disk by the SDK's fetch


def seed_source(root: Path) -> dict[str, bytes]:
    """Two persons' document trees, written straight on disk as another ENT would have them."""
    files = {
        "2605692/Mes documents/Cours/maths.txt": "Théorème de Pythagore\n".encode(),
        "2605692/Mes documents/Cours/partage.txt": SHARED,
        "2605692/Mes documents/gros.bin": BIG,
        "2605692/" + unicodedata.normalize("NFD", "Élève/notes été.txt"): "déjà vu\n".encode(),
        "2605693/partage.txt": SHARED,
        "2605693/vide.txt": b"",
    }
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "2605693" / "Dossier vide").mkdir(parents=True)
    return files


@pytest.fixture
def servers(tmp_path):
    src, tgt = tmp_path / "ent-a", tmp_path / "ent-b"
    seed_source(src)
    with serve_wsgi(wsgidav_app(src)) as a, serve_wsgi(wsgidav_app(tgt)) as b:
        yield {"source": a + "/", "target": b + "/", "source_root": src, "target_root": tgt}


def peer(url: str):
    return open_peer("webdav", {"url": url, "workers": 4})


def files_on_disk(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_round_trip_loses_nothing_and_reruns_change_nothing(engine, tmp_path, servers):
    store = LocalStore(tmp_path / "vault", TENANT)
    source, target = peer(servers["source"]), peer(servers["target"])
    # the source also holds an item Relais wrote before, with vendor fields: it announces its sha256
    open_importer("webdav", {"url": servers["source"]}).import_items([Item.from_bytes(
        "2605693", "documents", "Projets/plan.odt", b"PK\x03\x04 plan", metadata={
            "media_type": "application/vnd.oasis.opendocument.text", "title": "Plan",
            "extra": {"enta:folderColor": "#ff0000", "enta:tags": ["6A", "maths"]}})], stop_on_error=True)

    r = export(engine, store, source, workers=4)
    assert (r.state, r.failures, r.persons) == ("completed", [], 2)
    # 6 files + plan.odt, and the folders: Mes documents, Cours, Élève, Dossier vide, Projets
    assert r.items == 12 and r.outcome("new") == 12
    assert r.bytes == sum(len(d) for d in seed_source(tmp_path / "again").values()) + len(b"PK\x03\x04 plan")
    # the shared file and the empty content are stored once
    assert r.this_run.uploaded == len(set(store.list_digests())) == 6
    assert r.this_run.deduplicated == 2  # the second copy, and the empty file (the folders' content)

    v = Vault(engine, store)
    nfc = {x.item_id: x for x in v.current("2605692")}
    assert "Élève/notes été.txt" in nfc and nfc["Élève"].metadata["kind"] == "folder"
    assert v.read(nfc["Mes documents/gros.bin"]) == BIG
    plan = next(x for x in v.current("2605693") if x.item_id == "Projets/plan.odt")
    assert plan.metadata["extra"] == {"enta:folderColor": "#ff0000", "enta:tags": ["6A", "maths"]}

    check = verify(engine, store, source=source)
    assert (check.ok, check.lost, check.comparison.findings) == (True, 0, [])
    assert check.downloaded["source"] == 7

    imported = import_(engine, store, target, workers=4)
    assert (imported.state, imported.outcome("created"), imported.failures) == ("completed", 12, [])
    on_target = files_on_disk(servers["target_root"])
    assert on_target["2605692/Mes documents/gros.bin"] == BIG
    assert (servers["target_root"] / "2605693" / "Dossier vide").is_dir()
    check = verify(engine, store, source=source, target=target)
    assert (check.ok, check.lost, check.comparison.extra) == (True, 0, 0), check.to_dict()["findings"]
    totals = check.comparison.totals()["documents"]
    assert totals["source"] == totals["vault"] == totals["target"] == {"items": 12, "bytes": r.bytes}

    # again: nothing created, nothing duplicated, no content read from the vault (the target
    # announces the sha256 Relais wrote)
    again = import_(engine, store, target, workers=4)
    assert (again.outcome("unchanged"), again.outcome("created"), again.outcome("updated")) == (12, 0, 0)
    assert files_on_disk(servers["target_root"]) == on_target
    with engine.connect() as conn:
        reads = conn.execute(text("SELECT count(*) FROM vault_access_log WHERE action = 'read' "
                                  "AND actor LIKE :a"), {"a": f"%{again.job}%"}).scalar_one()
    assert reads == 0

    re_export = export(engine, store, source, workers=4)
    assert (re_export.outcome("new"), re_export.outcome("unchanged")) == (0, 12)
    assert re_export.this_run.uploaded == 0 and re_export.this_run.fetched == 6  # every file but plan.odt
    assert v.status()["totals"]["versions"] == 12

    # the ENT changes a file: one new version; the target is now behind, and verify says so by name
    (servers["source_root"] / "2605692/Mes documents/Cours/maths.txt").write_bytes(b"Thales\n")
    changed = export(engine, store, source, workers=4)
    assert (changed.outcome("new"), changed.outcome("unchanged")) == (1, 11)
    behind = verify(engine, store, source=source, target=target)
    assert not behind.ok and behind.lost == 1
    (finding,) = behind.comparison.findings
    assert (finding.person, finding.vertical, finding.path, finding.where, finding.problem) == (
        "2605692", "documents", "Mes documents/Cours/maths.txt", "target", "altered")
    assert finding.detail.startswith("7 bytes in the vault, 24 in the target; sha256 ")
    caught_up = import_(engine, store, target, workers=4)
    assert (caught_up.outcome("updated"), caught_up.outcome("unchanged")) == (1, 11)
    assert verify(engine, store, source=source, target=target).ok


def test_partly_filled_target_gets_only_what_it_misses(sqlite_engine, tmp_path, servers):
    engine, store = sqlite_engine, LocalStore(tmp_path / "vault", TENANT)
    source, target = peer(servers["source"]), peer(servers["target"])
    assert export(engine, store, source).ok
    first = import_(engine, store, target, persons=["2605693"])
    assert first.ok and first.outcome("created") == 3
    # someone deletes a file and rewrites another at the target, behind Relais' back
    root = servers["target_root"]
    (root / "2605693/partage.txt").write_bytes(b"overwritten")
    (root / "2605693/vide.txt").unlink()
    check = verify(engine, store, target=target)
    found = {(f.person, f.path, f.problem) for f in check.comparison.findings}
    assert ("2605693", "vide.txt", "missing") in found and ("2605693", "partage.txt", "altered") in found
    assert all(f.verdict == "lost" for f in check.comparison.findings)
    # 2605692 is not at the target at all: every one of its items is missing, by name
    assert {f.path for f in check.comparison.findings if f.person == "2605692"} >= {
        "Mes documents/gros.bin", "Élève/notes été.txt"}
    assert check.lost == 2 + 7

    full = import_(engine, store, target)
    assert full.ok
    assert (full.outcome("created"), full.outcome("updated"), full.outcome("unchanged")) == (7 + 1, 1, 1)
    assert (root / "2605693/partage.txt").read_bytes() == SHARED
    assert verify(engine, store, source=source, target=target).ok


def test_a_corrupt_vault_blob_fails_its_item_and_verify_still_accounts_for_it(sqlite_engine, tmp_path, servers):
    engine, store = sqlite_engine, LocalStore(tmp_path / "vault", TENANT)
    assert export(engine, store, peer(servers["source"])).ok
    digest = hashlib.sha256(SHARED).hexdigest()
    blob = next((tmp_path / "vault" / TENANT).rglob(digest))
    blob.write_bytes(b"bit rot")
    report = import_(engine, store, peer(servers["target"]))
    assert report.state == "incomplete" and report.items == 8
    assert sorted((f.person, f.item) for f in report.failures) == [
        ("2605692", "Mes documents/Cours/partage.txt"), ("2605693", "partage.txt")]
    assert all("corrupt (sha256 mismatch)" in f.error for f in report.failures)
    check = verify(engine, store, target=peer(servers["target"]))
    assert sorted((f.person, f.path, f.problem) for f in check.comparison.findings) == [
        ("2605692", "Mes documents/Cours/partage.txt", "missing"), ("2605693", "partage.txt", "missing")]


def test_calendars_and_contacts_through_the_vault(sqlite_engine, tmp_path, monkeypatch):
    engine, store = sqlite_engine, LocalStore(tmp_path / "vault", TENANT)
    monkeypatch.setenv("DAV_PASSWORD", "s3cret")
    users = {"relais": "s3cret"}

    def cfg(url):
        return {"url": url, "auth": {"type": "basic", "username": "relais", "password_env": "DAV_PASSWORD"}}

    with serve_wsgi(radicale_app(tmp_path / "a", users)) as a, serve_wsgi(radicale_app(tmp_path / "b", users)) as b:
        a, b = cfg(a + "/"), cfg(b + "/")
        open_importer("caldav", a).import_items([
            Item.folder("2605692", "calendars", "perso",
                        metadata={"displayname": "Emploi du temps", "color": "#3366ffff"}),
            Item.from_bytes("2605692", "calendars", "perso/cours.ics", ICS, metadata={"media_type": "text/calendar"})],
            stop_on_error=True)
        open_importer("carddav", a).import_items([
            Item.folder("2605692", "contacts", "parents", metadata={"displayname": "Parents"}),
            Item.from_bytes("2605692", "contacts", "parents/elise.vcf", VCF, metadata={"media_type": "text/vcard"})],
            stop_on_error=True)
        for name in ("caldav", "carddav"):
            assert export(engine, store, open_peer(name, a)).ok
            assert import_(engine, store, open_peer(name, b)).ok
            check = verify(engine, store, source=open_peer(name, a), target=open_peer(name, b))
            assert check.ok, check.to_dict()["findings"]
            assert sum(t["target"]["items"] for t in check.comparison.totals().values()) == 2
        ics = next(i for i in open_exporter("caldav", b).export("2605692") if i.kind == "file")
        assert b"UID:cours-maths-6a@ent-a" in ics.content.read()


def test_commands_exit_codes_and_json(tmp_path, servers, monkeypatch):
    monkeypatch.setenv("RELAIS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.delenv("RELAIS_DATABASE_URL", raising=False)
    monkeypatch.delenv("RELAIS_VAULT_S3_ENDPOINT", raising=False)
    monkeypatch.setenv("RELAIS_TENANT", TENANT)
    (tmp_path / "var" / "connectors").mkdir(parents=True)
    (tmp_path / "var" / "connectors" / "webdav.yaml").write_text(yaml.safe_dump({"url": servers["source"]}))
    target_cfg = tmp_path / "ent-b.yaml"
    target_cfg.write_text(yaml.safe_dump({"url": servers["target"], "workers": 2}))
    run = CliRunner().invoke

    out = run(main, ["vault", "export", "--from", "webdav", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert (report["state"], report["persons"], report["items"], report["failed"]) == ("completed", 2, 10, 0)
    assert report["verticals"]["documents"]["new"] == 10

    out = run(main, ["vault", "verify", "--source", "webdav", "--target", "webdav", "--target-config",
                     str(target_cfg), "--json"])
    assert out.exit_code == 1  # nothing imported yet: every item missing at the target, by name
    found = json.loads(out.stdout)
    assert found["lost"] == 10 and {f["problem"] for f in found["findings"]} == {"missing"}
    assert {f["path"] for f in found["findings"] if f["person"] == "2605693"} == {
        "partage.txt", "vide.txt", "Dossier vide"}

    out = run(main, ["vault", "import", "--to", "webdav", "--config", str(target_cfg), "--person", "2605692"])
    assert out.exit_code == 0, out.output
    assert "created" in out.output
    out = run(main, ["vault", "import", "--to", "webdav", "--config", str(target_cfg), "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["created"] == 3

    out = run(main, ["vault", "verify", "--source", "webdav", "--target", "webdav", "--target-config",
                     str(target_cfg)])
    assert out.exit_code == 0, out.output
    assert "lost: 0, unverified: 0, extra: 0" in out.output

    out = run(main, ["vault", "export", "--from", "nosuch"])
    assert out.exit_code == 2 and "no connector named 'nosuch'" in out.output
    out = run(main, ["vault", "import", "--to", "caldav"])
    assert out.exit_code == 2 and "no configuration given (--config FILE)" in out.output
