"""`relais vault bag` and `unbag`: per-person and per-structure bags from the vault, to a folder, zips and an
S3 prefix (moto's server), every bag validated by the Library of Congress's `bagit` as well as by us; a
changed byte, a missing file and an extra file caught by both, ours naming the file; resumable; streaming."""
from __future__ import annotations

import hashlib
import json
import shutil
import tracemalloc
import zipfile
from pathlib import Path

import bagit
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from minio import Minio

from app.cli import main
from connectors.sdk import check_index
from connectors.sdk.strategies import items_for
from relais.db import make_engine, upgrade, writer
from services.vault.adapters import index
from services.vault.adapters.local_store import LocalStore
from services.vault.adapters.s3_store import S3Store
from services.vault.adapters.tables import vault_item_version
from services.vault.bags.read import unbag
from services.vault.bags.records import fast_check
from services.vault.bags.targets import FolderTarget, S3Location, S3Target, ZipTarget
from services.vault.bags.write import bag
from services.vault.items import Vault

TENANT = "ac-bags"
UAI = "0690001A"
FOLDER_META = {"kind": "folder", "displayname": "Perso", "color": "#ff0000"}


def _fill(vault: Vault) -> None:
    vault.put("2605692", "documents", "Mes documents/Élève été.txt", b"bonjour " * 100, {"kind": "file"})
    vault.put("2605692", "documents", "Mes documents/notes.odt", bytes(range(256)) * 40, {"kind": "file"})
    vault.put("2605692", "calendars", "perso", b"", FOLDER_META, path="perso")
    vault.put("2605692", "calendars", "perso/e1.ics", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n",
              {"media_type": "text/calendar", "kind": "file"}, path="perso/e1.ics")
    vault.put("2605693", "documents", "partage.txt", b"shared bytes", {"sharing": ["x"]})  # continuous: verbatim
    vault.put("2605693", "documents", "gone.txt", b"x")
    vault.delete("2605693", "documents", "gone.txt")
    vault.put(f"structure:{UAI}", "documents", "classes/6A/cours.pdf", b"%PDF-1.4 cours", {"kind": "file"})
    vault.put(f"structure:{UAI}", "blogs", "blog-6A", b"", {"kind": "folder", "title": "Blog de la 6A"})


@pytest.fixture
def vault(engine, tmp_path) -> Vault:
    """On SQLite and PostgreSQL."""
    v = Vault(engine, LocalStore(tmp_path / "store", TENANT), actor="test")
    _fill(v)
    return v


@pytest.fixture
def svault(sqlite_engine, tmp_path) -> Vault:
    """On SQLite: for what the database changes nothing to."""
    v = Vault(sqlite_engine, LocalStore(tmp_path / "store", TENANT), actor="test")
    _fill(v)
    return v


def _snapshot(vault: Vault, owners=("2605692", "2605693", f"structure:{UAI}")) -> dict:
    return {(v.person, v.vertical, v.item_id): (v.content_sha256, v.size, v.path or v.item_id, v.metadata)
            for o in owners for v in vault.current(o)}


def _bagit_validates(path: Path) -> None:
    bagit.Bag(str(path)).validate()  # the Library of Congress's tool: raises BagValidationError


NAMES = ["person-2605692", "person-2605693", f"structure-{UAI}"]


def test_bags_per_person_and_structure_validate_with_bagit_and_read_back(vault, engine, tmp_path):
    run = bag(engine, vault.store, FolderTarget(tmp_path / "bags"), workers=2, source_org="ENT A")
    assert run.ok and [r.name for r in sorted(run.results, key=lambda r: r.name)] == NAMES
    assert {r.state for r in run.results} == {"written"}
    for name in NAMES:
        _bagit_validates(tmp_path / "bags" / name)
    info = bagit.Bag(str(tmp_path / "bags" / f"structure-{UAI}")).info
    assert info["Relais-Structure-UAI"] == UAI and "Relais-Person-Jointure" not in info
    assert info["Relais-Tenant"] == TENANT and info["Source-Organization"] == "ENT A"
    pupil = tmp_path / "bags" / "person-2605692"
    assert (pupil / "data/documents/files/Mes documents/Élève été.txt").read_bytes() == b"bonjour " * 100
    assert not (pupil / "data/calendars/files/perso").is_file()  # a folder: in index.json only
    doc = json.loads((pupil / "data/calendars/index.json").read_text())
    assert {r["id"]: r["kind"] for r in doc["items"]} == {"perso": "folder", "perso/e1.ics": "file"}
    assert not (tmp_path / "bags" / "person-2605693" / "data/documents/files/gone.txt").exists()
    by_name = {r.name: r for r in run.results}
    tagmanifest = (pupil / "tagmanifest-sha256.txt").read_bytes()
    assert by_name["person-2605692"].tagmanifest_sha256 == hashlib.sha256(tagmanifest).hexdigest()
    assert by_name["person-2605692"].verticals == {"documents": {"items": 2, "bytes": 11_040},
                                                   "calendars": {"items": 2, "bytes": 32}}
    with engine.connect() as conn:
        reads = index.access_log(conn, TENANT, "2605692")
    assert {r["item"] for r in reads if r["action"] == "read"} >= {"Mes documents/notes.odt", "perso/e1.ics"}

    other = Vault(engine, LocalStore(tmp_path / "store2", TENANT))
    with writer(engine).begin() as conn:  # the same tenant in another database: emptied
        conn.execute(vault_item_version.delete().where(vault_item_version.c.tenant == TENANT))
    back = unbag(engine, other.store, FolderTarget(tmp_path / "bags"))
    assert back.ok and back.count("read") == 3 and sum(r.new for r in back.results) == 7
    assert _snapshot(other) == _snapshot_of_fill(tmp_path)
    again = unbag(engine, other.store, FolderTarget(tmp_path / "bags"))
    assert again.ok and sum(r.new for r in again.results) == 0 and sum(r.unchanged for r in again.results) == 7


def _snapshot_of_fill(tmp_path: Path) -> dict:
    engine = make_engine(f"sqlite:///{tmp_path / 'fill.db'}")
    upgrade(engine)
    v = Vault(engine, LocalStore(tmp_path / "fill-store", TENANT))
    _fill(v)
    return _snapshot(v)


@pytest.mark.parametrize("damage", ["changed byte", "missing file", "extra file"])
def test_a_damaged_bag_is_caught_by_bagit_and_by_us_naming_the_file(svault, sqlite_engine, tmp_path, damage):
    bag(sqlite_engine, svault.store, FolderTarget(tmp_path / "bags"), owners_=["2605692"])
    root = tmp_path / "bags" / "person-2605692"
    victim = root / "data/documents/files/Mes documents/notes.odt"
    if damage == "changed byte":
        data = bytearray(victim.read_bytes())
        data[1000] ^= 1
        victim.write_bytes(bytes(data))
        ours = r"payload file data/documents/files/Mes documents/notes.odt does not match its sha256"
    elif damage == "missing file":
        victim.unlink()
        ours = r"payload file data/documents/files/Mes documents/notes.odt listed in manifest-sha256.txt is missing"
    else:
        (root / "data/documents/files/intrus.exe").write_bytes(b"MZ")
        ours = r"payload file data/documents/files/intrus.exe is not listed in manifest-sha256.txt"
    with pytest.raises(bagit.BagValidationError):
        _bagit_validates(root)
    other = Vault(sqlite_engine, LocalStore(tmp_path / "store2", "ac-other"))
    run = unbag(sqlite_engine, other.store, FolderTarget(tmp_path / "bags"))
    assert not run.ok and run.results[0].state == "failed"
    assert ours in run.results[0].error and str(root) in run.results[0].error
    assert other.current("2605692") == []  # nothing of a bad bag is stored


def test_zip_bags_serialized_per_rfc_8493_validate_and_read_back(svault, sqlite_engine, tmp_path):
    run = bag(sqlite_engine, svault.store, ZipTarget(tmp_path / "zips"))
    assert run.ok and sorted(p.name for p in (tmp_path / "zips").iterdir()) == [f"{n}.zip" for n in NAMES]
    for name in NAMES:
        with zipfile.ZipFile(tmp_path / "zips" / f"{name}.zip") as z:
            assert {n.split("/")[0] for n in z.namelist()} == {name}  # one top-level folder, the bag's name
            z.extractall(tmp_path / "unzipped")
        _bagit_validates(tmp_path / "unzipped" / name)
    again = bag(sqlite_engine, svault.store, ZipTarget(tmp_path / "zips"))
    assert again.ok and again.count("skipped") == 3
    # a changed byte inside a zip: caught, named, nothing stored
    path = tmp_path / "zips" / "person-2605693.zip"
    raw = path.read_bytes()
    path.write_bytes(raw.replace(b"shared bytes", b"shared bytez"))
    with writer(sqlite_engine).begin() as conn:
        conn.execute(vault_item_version.delete().where(vault_item_version.c.tenant == TENANT))
    back = unbag(sqlite_engine, svault.store, ZipTarget(tmp_path / "zips"))
    failed = [r for r in back.results if r.state == "failed"]
    assert [r.name for r in failed] == ["person-2605693"]
    assert "person-2605693.zip: file data/documents/files/partage.txt is damaged in the zip" in failed[0].error
    assert back.count("read") == 2 and svault.current("2605693") == []


def test_bags_to_and_from_an_s3_prefix_with_the_vault_on_s3(sqlite_engine, tmp_path, moto_s3):
    store = S3Store(moto_s3.endpoint, "ak", "sk", TENANT, secure=False, bucket_prefix="bags-src-")
    vault = Vault(sqlite_engine, store)
    _fill(vault)
    loc = S3Location("handover", f"{tmp_path.name}/2026/", f"http://{moto_s3.endpoint}", "ak", "sk")
    run = bag(sqlite_engine, store, S3Target(loc))
    assert run.ok and run.count("written") == 3
    client = Minio(moto_s3.endpoint, "ak", "sk", secure=False)
    for o in client.list_objects("handover", prefix=f"{tmp_path.name}/2026/", recursive=True):
        dest = tmp_path / "dl" / o.object_name
        dest.parent.mkdir(parents=True, exist_ok=True)
        client.fget_object("handover", o.object_name, str(dest))
    for name in NAMES:
        _bagit_validates(tmp_path / "dl" / tmp_path.name / "2026" / name)
    assert bag(sqlite_engine, store, S3Target(loc)).count("skipped") == 3
    # a partial bag (killed before its tag manifest) is redone; a whole one with an extra object is redone too
    client.remove_object("handover", f"{tmp_path.name}/2026/person-2605692/tagmanifest-sha256.txt")
    client.put_object("handover", f"{tmp_path.name}/2026/person-2605693/data/documents/files/intrus", _bytes(b"x"), 1)
    redo = bag(sqlite_engine, store, S3Target(loc))
    assert {r.name: r.state for r in redo.results} == {"person-2605692": "written", "person-2605693": "written",
                                                       f"structure-{UAI}": "skipped"}
    assert "data/documents/files/intrus is not listed" in {r.name: r for r in redo.results}["person-2605693"].redone
    assert "intrus" not in [o.object_name.rsplit("/", 1)[1] for o in client.list_objects(
        "handover", prefix=f"{tmp_path.name}/2026/person-2605693/", recursive=True)]

    target_store = LocalStore(tmp_path / "incoming", TENANT)
    with writer(sqlite_engine).begin() as conn:
        conn.execute(vault_item_version.delete().where(vault_item_version.c.tenant == TENANT))
    back = unbag(sqlite_engine, target_store, S3Target(loc))
    assert back.ok and sum(r.new for r in back.results) == 7
    assert _snapshot(Vault(sqlite_engine, target_store)) == _snapshot_of_fill(tmp_path)
    client.put_object("handover", f"{tmp_path.name}/2026/person-2605692/data/documents/files/intrus", _bytes(b"x"), 1)
    bad = unbag(sqlite_engine, target_store, S3Target(loc), names=["person-2605692"])
    assert "payload file data/documents/files/intrus is not listed in manifest-sha256.txt" in bad.results[0].error


def _bytes(data: bytes):
    import io

    return io.BytesIO(data)


def test_resume_skips_whole_bags_redoes_partial_and_stale_ones(vault, engine, tmp_path):
    target = FolderTarget(tmp_path / "bags")
    bag(engine, vault.store, target)
    shutil.copytree(tmp_path / "bags" / "person-2605693", tmp_path / "bags" / ".partial-person-2605693")
    (tmp_path / "bags" / f"structure-{UAI}" / "tagmanifest-sha256.txt").unlink()  # as if killed before the end
    vault.put("2605692", "documents", "nouveau.txt", b"new since the first run")
    run = bag(engine, vault.store, target)
    states = {r.name: (r.state, r.redone) for r in run.results}
    assert states["person-2605693"] == ("skipped", None)
    assert states[f"structure-{UAI}"] == ("written", None)
    assert states["person-2605692"] == ("written", "the vault's items changed since it was written")
    assert FolderTarget(tmp_path / "bags").names() == NAMES  # a partial folder is no bag
    for name in NAMES:
        _bagit_validates(tmp_path / "bags" / name)
    assert (tmp_path / "bags/person-2605692/data/documents/files/nouveau.txt").is_file()


def test_a_damaged_blob_fails_its_bag_naming_the_item_and_the_others_are_written(svault, sqlite_engine, tmp_path):
    digest = hashlib.sha256(b"shared bytes").hexdigest()
    blob = svault.store.root / f"blobs/sha256/{digest[:2]}/{digest}"
    blob.write_bytes(b"shared bytez")
    run = bag(sqlite_engine, svault.store, FolderTarget(tmp_path / "bags"))
    assert run.state == "incomplete"
    failed = {r.name: r.error for r in run.results if r.state == "failed"}
    assert list(failed) == ["person-2605693"]
    assert f"documents item 'partage.txt': blob {digest}" in failed["person-2605693"]
    assert not (tmp_path / "bags" / "person-2605693").exists()
    assert not (tmp_path / "bags" / ".partial-person-2605693").exists()


def test_a_large_item_is_streamed_not_held_in_memory(sqlite_engine, tmp_path):
    store = LocalStore(tmp_path / "store", TENANT)
    size, block = 96 << 20, bytes(range(256)) * 4096  # 96 MiB from a 1 MiB block
    h = hashlib.sha256()
    for _ in range(size // len(block)):
        h.update(block)
    digest = h.hexdigest()

    def stream():
        import io

        from services.vault.bags.streams import ChunkStream
        return io.BufferedReader(ChunkStream(block for _ in range(size // len(block))))

    store.upload(digest, size, stream)
    with writer(sqlite_engine).begin() as conn:
        index.append(conn, TENANT, "2605692", "documents", "video.mp4", digest=digest, metadata={"kind": "file"},
                     path="video.mp4", size=size, changed_at=None, check_order=False)
    tracemalloc.start()
    try:
        run = bag(sqlite_engine, store, ZipTarget(tmp_path / "zips"))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert run.ok and run.results[0].bytes > size
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB while bagging a {size >> 20} MiB item"
    tracemalloc.start()
    try:
        back = unbag(sqlite_engine, LocalStore(tmp_path / "incoming", TENANT), ZipTarget(tmp_path / "zips"))
        _current, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert back.ok, back.to_dict()
    assert peak < 12 << 20, f"peak {peak / 2**20:.1f} MiB while reading back a {size >> 20} MiB item"


def test_bag_and_unbag_from_the_command_line(cli_vault, tmp_path):
    vault = cli_vault
    vault.put("J1", "documents", "note.txt", b"note")
    vault.put(f"structure:{UAI}", "documents", "école.txt", b"commun")
    run = CliRunner().invoke
    out = run(main, ["vault", "bag", "--to", str(tmp_path / "out"), "--zip", "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert (report["state"], report["written"], report["items"]) == ("completed", 2, 2)
    out = run(main, ["vault", "bag", "--to", str(tmp_path / "out"), "--zip", "--structure", UAI])
    assert out.exit_code == 0 and "1 already there and up to date" in out.output
    out = run(main, ["vault", "bag", "--to", str(tmp_path / "out"), "--structure", "lycée"])
    assert out.exit_code == 2 and "not a UAI" in out.output
    out = run(main, ["vault", "bag", "--to", "s3://bucket/p", "--json"])
    assert out.exit_code == 2 and "RELAIS_BAGS_S3_ENDPOINT" in out.output
    out = run(main, ["vault", "unbag", "--from", str(tmp_path / "out"), "--zip", "--json"])
    assert out.exit_code == 0 and json.loads(out.stdout)["read"] == 2
    (tmp_path / "out" / "person-J1.zip").write_bytes(b"not a zip")
    out = run(main, ["vault", "unbag", "--from", str(tmp_path / "out"), "--zip", "--bag", "person-J1"])
    assert out.exit_code == 1 and "person-J1.zip: not a readable zip" in out.output


def test_bag_error_names_an_item_the_format_cannot_hold(sqlite_engine, tmp_path):
    vault = Vault(sqlite_engine, LocalStore(tmp_path / "store", TENANT))
    vault.put("J1", "calendars", "x.ics", b"BEGIN:VCALENDAR", {"kind": "file"})  # no media_type: required
    run = bag(sqlite_engine, vault.store, FolderTarget(tmp_path / "bags"))
    assert run.state == "incomplete" and "calendars item 'x.ics'" in run.results[0].error


_ANY_JSON = st.recursive(st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=8),
                         lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                                      max_size=3), max_leaves=6)
_FIELDS = ["id", "path", "kind", "sha256", "size", "media_type", "created", "modified", "title", "parent", "sharing",
           "extra", "uid", "component", "role", "entry_type", "date", "due", "read", "flags", "from", "x-vendor"]


@pytest.mark.parametrize("vertical", ["documents", "calendars", "contacts", "messages", "blogs", "homework"])
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_the_fast_index_check_is_never_more_lenient_than_the_json_schema(vertical, data):
    """records.py's compiled check against the SDK's exact one, on generated records, whole and damaged: what the
    fast check accepts the exact one accepts, and the records the kit makes pass the fast check too."""
    items = data.draw(items_for(vertical, "2605692"))
    records = [item.record() for item in items]
    fast = fast_check(vertical)
    assert fast is not None and fast({"format_version": "1.1", "vertical": vertical, "items": records})
    damaged = [dict(r) for r in records]
    for r in damaged:
        if data.draw(st.booleans()):
            r[data.draw(st.sampled_from(_FIELDS))] = data.draw(_ANY_JSON)
    doc = {"format_version": "1.1", "vertical": vertical, "items": damaged}
    if fast(doc):
        check_index(vertical, doc)  # raises if the fast check let through what the schema refuses


def test_an_owner_whose_items_are_all_deleted_gets_no_bag(sqlite_engine, tmp_path):
    vault = Vault(sqlite_engine, LocalStore(tmp_path / "store", TENANT))
    vault.put("J1", "documents", "a.txt", b"a")
    vault.put("J2", "documents", "b.txt", b"b")
    vault.delete("J2", "documents", "b.txt")
    run = bag(sqlite_engine, vault.store, FolderTarget(tmp_path / "bags"))
    assert run.ok and {r.name: r.state for r in run.results} == {"person-J1": "written", "person-J2": "empty"}
    assert run.to_dict()["empty"] == 1 and FolderTarget(tmp_path / "bags").names() == ["person-J1"]


def test_a_bag_made_by_the_library_of_congress_tool_is_read_back(sqlite_engine, tmp_path):
    """The other way round: a vendor's bag made by stock `bagit` (sha256 and sha512 manifests, its own tag
    fields) with the archive format's payload, read into the vault."""
    from connectors.sdk import index_document

    folder = tmp_path / "vendor-bag"
    (folder / "documents" / "files" / "Classe").mkdir(parents=True)
    content = b"Compte rendu du conseil de classe\n"
    (folder / "documents" / "files" / "Classe" / "compte-rendu.txt").write_bytes(content)
    record = {"id": "Classe/compte-rendu.txt", "path": "Classe/compte-rendu.txt", "kind": "file",
              "sha256": hashlib.sha256(content).hexdigest(), "size": len(content), "media_type": "text/plain"}
    (folder / "documents" / "index.json").write_text(json.dumps(index_document("documents", [record])))
    bagit.make_bag(str(folder), {"Source-Organization": "ENT du fournisseur B", "Relais-Format-Version": "1.1",
                                 "Relais-Tenant": TENANT, "Relais-Structure-UAI": UAI},
                   checksums=["sha256", "sha512"])
    vault = Vault(sqlite_engine, LocalStore(tmp_path / "store", TENANT))
    run = unbag(sqlite_engine, vault.store, FolderTarget(tmp_path), names=["vendor-bag"])
    assert run.ok, run.to_dict()
    (item,) = vault.current(f"structure:{UAI}")
    assert (item.item_id, item.size, item.metadata) == ("Classe/compte-rendu.txt", len(content),
                                                        {"kind": "file", "media_type": "text/plain"})
    assert b"".join(vault.store.read_chunks(item.content_sha256)) == content
