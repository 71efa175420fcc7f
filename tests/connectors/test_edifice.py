"""The Edifice archive connector: the conformance kit, a realistic export built from the layout
Edifice's own code writes (entcore 6.15.4: FileSystemExportService, WorkspaceRepositoryEvents,
FolderExporter, SqlRepositoryEvents, ConversationRepositoryEvents), a full round trip that loses
nothing, and hostile archives.

We have no real Edifice export to test against (the only sample data the tests use is an AAF
directory export), so the sample is built here, entry by entry, from what that code writes;
each test says which rule it checks.
"""
from __future__ import annotations

import hashlib
import json
import stat
import unicodedata
import zipfile
from pathlib import Path

import pytest

from connectors.edifice import CONNECTOR, BadArchive, EdificeExporter, EdificeImporter, Limits
from connectors.sdk import ConnectorConfig, ConnectorError, Item, Outcome, check_record
from connectors.sdk.conformance import (
    ConformancePair,
    ConnectorConformance,
    assert_same_items,
    export_all,
    import_all,
    rehome,
)

TOP = "1725262800000_7b0a3f4e-1d2c-4f5a-9e8b-2c3d4e5f6a7b"
OWNER = "7b0a3f4e-1d2c-4f5a-9e8b-2c3d4e5f6a7b"
WS = "Espace documentaire"
READ = "org-entcore-workspace-controllers-WorkspaceController|getDocument"
SHARE = "org-entcore-workspace-controllers-WorkspaceController|shareJson"


# -- the conformance kit ---------------------------------------------------------------------
class TestEdificeConformance(ConnectorConformance):
    @pytest.fixture
    def conformance_pair(self, tmp_path):
        exp, imp = EdificeExporter(tmp_path), EdificeImporter(tmp_path)
        yield ConformancePair(exporter=exp, importer=imp)
        imp.close()
        exp.close()


# -- a realistic export ------------------------------------------------------------------------
def row(_id, etype, name, lap, parent=None, **kw):
    base = {"_id": _id, "eType": etype, "name": name, "eParent": parent, "owner": OWNER,
            "ownerName": "Léa Martin", "created": "2024-09-02 08:15.00.000", "modified": "2024-09-03 17:42.10.250",
            "application": "media-library", "ancestors": [], "inheritedShares": [], "isShared": False, "shared": [],
            "localArchivePath": lap, "nameSearch": name.lower()}
    base.update(kw)
    return base


FILES = {
    "Documents personnels/Mathématiques/Fractions/exercices été.pdf": b"%PDF-1.4 fractions\n",
    "Documents personnels/Mathématiques/Fractions/exercices été_1.pdf": b"%PDF-1.4 une autre version\n",
    "Documents personnels/Rédaction « ma rentrée ».odt": b"PK\x03\x04 odt bytes",
    "Documents partages/Sortie au musée.jpg": b"\xff\xd8\xff\xe0 jpeg",
    "Documents ajoutes dans les applis/image-blog.png": b"\x89PNG\r\n\x1a\n",
    "Corbeille/brouillon.txt": "à jeter\n".encode(),
}


def workspace_rows():
    p = "Documents personnels"
    return [
        row("a1", "folder", "Mathématiques", f"{p}/Mathématiques"),
        row("a2", "folder", "Fractions", f"{p}/Fractions", parent="a1"),
        row("a3", "folder", "Vide", f"{p}/Vide"),
        row("d1", "file", "exercices été.pdf", f"{p}/Mathématiques/Fractions/exercices été.pdf", parent="a2",
            file="s-d1", metadata={"content-type": "application/pdf", "size": 19, "filename": "exercices été.pdf"},
            shared=[{"userId": "u-prof", READ: True}, {"groupId": "g-4A", READ: True, SHARE: True}],
            thumbnails={"120x120": "t-1"}),
        row("d2", "file", "exercices été.pdf", f"{p}/Mathématiques/Fractions/exercices été_1.pdf", parent="a2",
            file="s-d2", metadata={"content-type": "application/pdf", "size": 27}),
        row("d3", "file", "Rédaction « ma rentrée ».odt", f"{p}/Rédaction « ma rentrée ».odt", file="s-d3",
            metadata={"content-type": "application/vnd.oasis.opendocument.text", "size": 14}),
        row("s1", "file", "Sortie au musée.jpg", "Documents partages/Sortie au musée.jpg", file="s-s1",
            owner="u-prof", ownerName="M. Dupont", isShared=True, metadata={"content-type": "image/jpeg", "size": 9},
            inheritedShares=[{"userId": OWNER, READ: True}]),
        row("p1", "file", "image-blog.png", "Documents ajoutes dans les applis/image-blog.png", file="s-p1",
            protected=True, metadata={"content-type": "image/png", "size": 8}),
        row("t1", "file", "brouillon.txt", "Corbeille/brouillon.txt", parent="a1", file="s-t1", deleted=True,
            trasher=OWNER, metadata={"content-type": "text/plain", "size": 9}),
    ]


CONVERSATION = {
    "conversation.messages": {"fields": ["id", "parent_id", "subject", "body", "from", "to", "state", "date"],
                              "results": [["m1", None, "Sortie", "<p>Rendez-vous à 8h</p>", "u-prof",
                                           json.dumps([OWNER]), "SENT", 1725264000000]]},
    "conversation.usermessages": {"fields": ["user_id", "message_id", "folder_id", "trashed", "unread"],
                                  "results": [[OWNER, "m1", None, False, False]]},
}


def manifest():
    return {"org.entcore.workspace": {"version": "6.15.4", "folder": WS},
            "org.entcore.conversation": {"version": "6.15.4", "folder": "Messagerie"},
            "net.atos.entng.blog": {"version": "1.30.2", "folder": "Blog"},
            "net.atos.entng.calendar": "1.25.0"}  # an old export: the version alone


def build_export(path: Path, *, top: str = TOP, rows=None, files=None, extra_entries=(), man=None) -> Path:
    rows = workspace_rows() if rows is None else rows
    files = FILES if files is None else files
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as z:
        z.writestr(f"{top}/", b"")
        z.writestr(f"{top}/Manifest.json", json.dumps(manifest() if man is None else man, indent=2))
        z.writestr(f"{top}/{WS}/{WS}", json.dumps(rows))
        z.writestr(f"{top}/{WS}/Documents personnels/Vide/", b"")
        for lap, data in files.items():
            z.writestr(f"{top}/{WS}/{lap}", data)
        for name, table in CONVERSATION.items():
            z.writestr(f"{top}/Messagerie/{name}", json.dumps(table))
        z.writestr(f"{top}/Messagerie/Attachments/plan_9f1c2d3e-aaaa-bbbb-cccc-123456789012.pdf", b"%PDF plan")
        z.writestr(f"{top}/Blog/Carnet de bord", json.dumps({"_id": "b1", "title": "Carnet de bord",
                                                             "author": {"userId": OWNER}}))
        z.writestr(f"{top}/Blog/Documents/photo_4b5c.jpg", b"\xff\xd8 photo")
        z.writestr(f"{top}/Agenda/Agenda de Léa", json.dumps({"_id": "c1", "title": "Agenda de Léa"}))
        z.writestr(f"{top}/Applis inconnues/donnees.bin", bytes(range(256)))  # a folder no manifest entry names
        z.writestr(f"{top}/archive.signature", json.dumps({WS: "c2lnbmF0dXJl"}))
        for name, data in extra_entries:
            z.writestr(name, data)
    return path


@pytest.fixture
def source(tmp_path):
    folder = tmp_path / "ent-a"
    folder.mkdir()
    build_export(folder / f"{TOP}.zip")
    return folder


def test_realistic_export_reads_as_documents_with_their_tree_and_metadata(source):
    exp = EdificeExporter(source)
    assert list(exp.iter_owners()) == [OWNER]
    items = {i.id: i for i in export_all(exp, OWNER)}
    p = "Documents personnels"
    # the tree comes from eParent (FolderImporter rebuilds it that way), names are NFC
    assert items[f"{p}/Mathématiques/Fractions"].kind == "folder"
    assert items[f"{p}/Vide"].kind == "folder"
    pdf = items[f"{p}/Mathématiques/Fractions/exercices été.pdf"]
    assert pdf.content.read() == FILES[f"{p}/Mathématiques/Fractions/exercices été.pdf"]
    assert pdf.metadata["media_type"] == "application/pdf"
    assert pdf.metadata["owner"] == {"id": OWNER, "name": "Léa Martin"}
    assert pdf.metadata["modified"] == "2024-09-03T17:42:10.250+02:00"  # Europe/Paris, summer time
    assert pdf.metadata["sharing"] == [{"principal": {"type": "person", "id": "u-prof"}, "rights": ["read"]},
                                       {"principal": {"type": "group", "id": "g-4A"}, "rights": ["read", "manage"]}]
    assert pdf.metadata["extra"]["edifice"]["row"]["thumbnails"] == {"120x120": "t-1"}  # kept verbatim
    # two files of the same name in one folder: one path, two ids, both with their bytes
    twin = items[f"{p}/Mathématiques/Fractions/exercices été [d2].pdf"]
    assert twin.path == pdf.path and twin.content.read() == b"%PDF-1.4 une autre version\n"
    # every category of the export, each under its folder; trash is flat, as Edifice exports it
    assert items["Documents partages/Sortie au musée.jpg"].metadata["owner"]["name"] == "M. Dupont"
    assert "Documents ajoutes dans les applis/image-blog.png" in items
    assert items["Corbeille/brouillon.txt"].content.read() == "à jeter\n".encode()
    # apps not mapped are kept whole, opaque, with their manifest entries
    assert items["edifice-archive/Blog/Carnet de bord"].content.read().startswith(b'{"_id": "b1"')
    assert items["edifice-archive/Messagerie/conversation.messages"].kind == "file"
    assert items["edifice-archive/Agenda"].metadata["extra"]["edifice"]["manifest"] == {
        "net.atos.entng.calendar": "1.25.0"}
    assert items["edifice-archive/Applis inconnues"].metadata["extra"]["edifice"] == {"unlisted": True}
    assert items["edifice-archive/Applis inconnues/donnees.bin"].content.read() == bytes(range(256))
    assert items["edifice-archive/archive.signature"].kind == "file"
    for item in items.values():
        check_record("documents", item.record())
        assert unicodedata.is_normalized("NFC", item.id)
    # nothing of the archive is left out: every file entry is an item or a listing file
    with zipfile.ZipFile(source / f"{TOP}.zip") as z:
        payload = {n[len(TOP) + 1:] for n in z.namelist() if not n.endswith("/")}
    listed = {f"{WS}/{lap}" for lap in FILES} | {i.id[len("edifice-archive/"):] for i in items.values()
                                                if i.id.startswith("edifice-archive/") and i.kind == "file"}
    assert payload - listed == {"Manifest.json", f"{WS}/{WS}"}


def test_round_trip_archive_items_archive_loses_nothing(source, tmp_path):
    e1 = export_all(EdificeExporter(source), OWNER)
    target = tmp_path / "ent-b"
    imp = EdificeImporter(target)
    report = imp.import_items(rehome(e1, OWNER), stop_on_error=True)
    assert report.created == len(e1) and report.failed == 0
    again = imp.import_items(rehome(e1, OWNER), stop_on_error=True)
    assert again.unchanged == len(e1)
    imp.close()
    [written] = list(target.iterdir())
    assert written.suffix == ".zip" and written.name.endswith(f"_{OWNER}.zip")
    e2 = export_all(EdificeExporter(target), OWNER)
    assert_same_items(e1, e2)
    with zipfile.ZipFile(source / f"{TOP}.zip") as z1, zipfile.ZipFile(written) as z2:
        top2 = z2.namelist()[0].rstrip("/")
        names2 = z2.namelist()
        # Edifice's import: one top folder holding Manifest.json (DefaultImportService.analyzeArchive)
        assert {n.split("/", 1)[0] for n in names2} == {top2}
        assert json.loads(z2.read(f"{top2}/Manifest.json")) == manifest()
        # the workspace index: the same rows, and every file where its localArchivePath says
        by_id = lambda data: {r["_id"]: r for r in json.loads(data)}  # noqa: E731 - order is not meaningful
        assert by_id(z2.read(f"{top2}/{WS}/{WS}")) == by_id(z1.read(f"{TOP}/{WS}/{WS}"))
        for lap, data in FILES.items():
            assert z2.read(f"{top2}/{WS}/{lap}") == data
        for name in z1.namelist():
            if name.endswith(("/", "archive.signature", "Manifest.json")) or f"/{WS}/" in name:
                continue
            assert z2.read(top2 + name[len(TOP):]) == z1.read(name), name
        # the signature no longer matches rewritten folders: held aside, not at the top
        assert f"{top2}/archive.signature" not in names2
        assert z2.read(f"{top2}/relais-held/archive.signature") == z1.read(f"{TOP}/archive.signature")


def test_documents_from_another_ent_become_an_archive_edifice_can_read(tmp_path):
    """Items that never saw Edifice (ids are paths, as from WebDAV) get rows with the fields
    FolderImporter reads: _id, eType, name, eParent, file, metadata, localArchivePath."""
    owner = "u-webdav"
    items = [Item.folder(owner, "documents", "Cours"),
             Item.folder(owner, "documents", "Cours/Histoire-géo"),
             Item.from_bytes(owner, "documents", "Cours/Histoire-géo/carte.svg", b"<svg/>",
                             metadata={"media_type": "image/svg+xml", "modified": "2025-01-10T09:00:00Z",
                                       "description": "carte de l'Europe", "extra": {"webdav:etag": "\"x1\""}}),
             Item.from_bytes(owner, "documents", "notes.txt", b"bonjour", metadata={"media_type": "text/plain"})]
    imp = EdificeImporter(tmp_path)
    assert set(import_all(imp, items).values()) == {Outcome.CREATED}
    zpath = imp.pack(owner)
    with zipfile.ZipFile(zpath) as z:
        top = z.namelist()[0].rstrip("/")
        assert top.endswith("_" + owner) and top.split("_")[0].isdigit()
        rows = {r["name"]: r for r in json.loads(z.read(f"{top}/{WS}/{WS}"))}
        assert rows["Cours"]["eType"] == "folder" and rows["Cours"]["eParent"] is None
        assert rows["Histoire-géo"]["eParent"] == rows["Cours"]["_id"]
        carte = rows["carte.svg"]
        assert carte["eParent"] == rows["Histoire-géo"]["_id"] and carte["eType"] == "file"
        assert carte["metadata"]["content-type"] == "image/svg+xml" and carte["metadata"]["size"] == 6
        assert carte["modified"] == "2025-01-10 10:00.00.000"  # Paris time, Edifice's format
        assert z.read(f"{top}/{WS}/{carte['localArchivePath']}") == b"<svg/>"
        assert json.loads(z.read(f"{top}/Manifest.json")) == {
            "org.entcore.workspace": {"version": "6.15.4", "folder": WS}}
    back = {i.id: i for i in export_all(EdificeExporter(tmp_path), owner)}
    assert_same_items(items, list(back.values()))  # description and vendor extra came back too


def test_importing_into_an_existing_export_keeps_it_and_adds(source, tmp_path):
    imp = EdificeImporter(source)
    new = Item.from_bytes(OWNER, "documents", "Documents personnels/Mathématiques/nouveau.txt", b"neuf",
                          metadata={"media_type": "text/plain"})
    assert imp.put(new) == Outcome.CREATED
    imp.close()
    items = {i.id: i for i in export_all(EdificeExporter(source), OWNER)}
    assert items[new.id].content.read() == b"neuf"
    assert items["edifice-archive/Blog/Carnet de bord"].kind == "file"
    assert len(list(source.iterdir())) == 1
    with zipfile.ZipFile(next(source.iterdir())) as z:
        rows = {r["_id"]: r for r in json.loads(z.read(f"{TOP}/{WS}/{WS}"))}
    mine = next(r for r in rows.values() if r["name"] == "nouveau.txt")
    assert mine["eParent"] == "a1"  # placed in its Edifice folder, by _id


def test_registry_entry_builds_both_halves(tmp_path):
    config = ConnectorConfig(url="http://unused.invalid/", options={"path": str(tmp_path)})
    assert isinstance(CONNECTOR.exporter(config, "documents"), EdificeExporter)
    assert isinstance(CONNECTOR.importer(config, "documents"), EdificeImporter)
    with pytest.raises(ConnectorError, match="options.path"):
        CONNECTOR.exporter(ConnectorConfig(url="http://unused.invalid/"), "documents")


# -- hostile archives --------------------------------------------------------------------------
def raw_zip(path: Path, entries: list[tuple[str | zipfile.ZipInfo, bytes]], **kw) -> Path:
    with zipfile.ZipFile(path, "w", **kw) as z:
        for name, data in entries:
            z.writestr(name, data)
    return path


def minimal(top: str = TOP) -> list[tuple[str, bytes]]:
    return [(f"{top}/Manifest.json", json.dumps({"org.entcore.workspace": {"version": "6.15.4", "folder": WS}})),
            (f"{top}/{WS}/{WS}", b"[]")]


def refused(folder: Path, *words: str) -> str:
    before = sorted(p for p in folder.parent.rglob("*"))
    with pytest.raises(BadArchive) as info:
        export_all(EdificeExporter(folder), OWNER)
    message = str(info.value)
    for word in words:
        assert word in message, message
    assert sorted(p for p in folder.parent.rglob("*")) == before, "reading wrote something"
    return message


@pytest.fixture
def hostile(tmp_path):
    folder = tmp_path / "hostile"
    folder.mkdir()
    return folder


@pytest.mark.parametrize("evil", ["../../etc/passwd", f"{TOP}/../../escape.txt", "/etc/cron.d/x",
                                  f"{TOP}/a\\..\\..\\b", "C:/Windows/x"])
def test_entries_escaping_the_archive_are_refused(hostile, evil):
    path = raw_zip(hostile / f"{TOP}.zip", minimal() + [(evil, b"pwned")])
    refused(hostile, str(path), "entry")


def test_a_symbolic_link_entry_is_refused(hostile):
    link = zipfile.ZipInfo(f"{TOP}/{WS}/lien")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    raw_zip(hostile / f"{TOP}.zip", minimal() + [(link, b"/etc/passwd")])
    refused(hostile, "lien", "symbolic link")


def test_a_zip_bomb_is_refused_before_it_is_inflated(hostile):
    raw_zip(hostile / f"{TOP}.zip", minimal() + [(f"{TOP}/Blog/bomb", b"\0" * (64 << 20))],
            compression=zipfile.ZIP_DEFLATED)
    refused(hostile, "Blog/bomb", "zip bomb")


def test_a_bomb_spread_over_many_small_entries_is_refused(hostile):
    raw_zip(hostile / f"{TOP}.zip", minimal() + [(f"{TOP}/Blog/b{n}", b"\0" * (512 << 10)) for n in range(8)],
            compression=zipfile.ZIP_DEFLATED)
    refused(hostile, "across its entries", "zip bomb")


def test_limits_on_entries_and_bytes(hostile):
    raw_zip(hostile / f"{TOP}.zip", minimal() + [(f"{TOP}/Blog/f{n}", b"x") for n in range(20)])
    with pytest.raises(BadArchive, match="entries, more than the 10 allowed"):
        export_all(EdificeExporter(hostile, limits=Limits(max_entries=10)), OWNER)
    with pytest.raises(BadArchive, match="more than 30 bytes uncompressed"):
        export_all(EdificeExporter(hostile, limits=Limits(max_total_bytes=30)), OWNER)


def test_a_truncated_zip_is_refused(hostile, tmp_path):
    whole = build_export(tmp_path / "whole.zip")
    data = whole.read_bytes()
    (hostile / f"{TOP}.zip").write_bytes(data[: len(data) * 2 // 3])
    refused(hostile, f"{TOP}.zip", "truncated")


def test_a_damaged_entry_is_refused_naming_it(hostile, tmp_path):
    whole = build_export(tmp_path / "whole.zip", files={**FILES, "Corbeille/brouillon.txt": b"A" * 4000})
    data = bytearray(whole.read_bytes())
    at = data.find(b"A" * 4000)
    data[at + 100] ^= 0xFF  # one byte of stored content flipped: the CRC no longer matches
    (hostile / f"{TOP}.zip").write_bytes(bytes(data))
    exp = EdificeExporter(hostile)
    ref = next(r for r in exp.iter_refs(OWNER) if r.id == "Corbeille/brouillon.txt")
    with pytest.raises(ConnectorError) as info:
        exp.fetch(ref)
    assert "brouillon.txt" in str(info.value) and "edifice" in str(info.value)


def test_not_a_zip(hostile):
    (hostile / f"{TOP}.zip").write_bytes(b"%PDF-1.4 this is not a zip")
    refused(hostile, "not a readable zip")


@pytest.mark.parametrize("man, words", [
    ({"org.entcore.workspace": {"version": "6.15.4", "folder": WS},
      "net.atos.entng.blog": {"version": "1.0", "folder": "Blog"}}, ["net.atos.entng.blog", "'Blog'", "does not hold"]),
    ({"org.entcore.workspace": {"version": "6.15.4", "folder": "../Espace"}}, ["org.entcore.workspace", "../Espace"]),
    ({"org.entcore.workspace": {"version": 6, "folder": WS}}, ["org.entcore.workspace", "must be strings"]),
    ([WS], ["Manifest.json", "JSON object"]),
    ({"org.entcore.workspace": {"version": "6.15.4", "folder": WS},
      "org.entcore.rack": {"version": "6.15.4", "folder": WS}}, ["org.entcore.rack", "already the folder"]),
])
def test_a_lying_manifest_is_refused(hostile, man, words):
    raw_zip(hostile / f"{TOP}.zip", [(f"{TOP}/Manifest.json", json.dumps(man)), (f"{TOP}/{WS}/{WS}", b"[]")])
    refused(hostile, "Manifest.json", *words)


def test_manifest_not_json(hostile):
    raw_zip(hostile / f"{TOP}.zip", [(f"{TOP}/Manifest.json", b"{'workspace': 1"), (f"{TOP}/{WS}/{WS}", b"[]")])
    refused(hostile, "Manifest.json", "not JSON")


def test_a_workspace_row_pointing_at_a_missing_file_is_refused(hostile):
    rows = [row("d9", "file", "perdu.pdf", "Documents personnels/perdu.pdf", file="s", metadata={})]
    build_export(hostile / f"{TOP}.zip", rows=rows, files={})
    refused(hostile, "d9", "perdu.pdf", "not in the archive")


def test_an_export_without_its_files_is_refused(hostile):
    build_export(hostile / f"{TOP}.zip", extra_entries=[(f"{TOP}/{WS}/skipDocs", b"{}")])
    refused(hostile, "skipDocs", "without its files")


def test_files_outside_the_one_top_folder_are_refused(hostile):
    raw_zip(hostile / f"{TOP}.zip", minimal() + [("1725262800001_other/Manifest.json", b"{}")])
    refused(hostile, "outside the top folder")


def test_the_same_name_twice_in_two_unicode_forms_is_refused(hostile):
    nfc, nfd = "Élève.txt", unicodedata.normalize("NFD", "Élève.txt")
    raw_zip(hostile / f"{TOP}.zip", minimal() + [(f"{TOP}/Blog/{nfc}", b"1"), (f"{TOP}/Blog/{nfd}", b"2")])
    refused(hostile, "another Unicode form")


def test_a_lying_sidecar_is_refused(hostile):
    raw_zip(hostile / f"{TOP}.zip", minimal() + [(f"{TOP}/relais.json", json.dumps(
        {"relais": 1, "items": {"documents": {"x": {"id": "../../etc"}}}}))])
    refused(hostile, "relais.json", "unsafe id")


def test_an_owner_with_two_exports_is_an_error_not_a_guess(hostile):
    raw_zip(hostile / f"{TOP}.zip", minimal())
    other = "1725262899999_" + OWNER
    raw_zip(hostile / f"{other}.zip", minimal(other))
    refused(hostile, "several exports", TOP, other)


def test_the_importer_refuses_to_overwrite_what_it_keeps_itself(tmp_path):
    imp = EdificeImporter(tmp_path)
    for bad_id in ("edifice-archive/Manifest.json", "edifice-archive/relais.json",
                   "edifice-archive/relais-held/x"):
        with pytest.raises(ConnectorError, match="keeps itself"):
            imp.put(Item.from_bytes("u1", "documents", bad_id, b"{}"))
    imp.close()


def test_items_other_apps_keep_their_bytes_through_the_vault_format(source):
    """Opaque items are ordinary documents: sha256 of what the archive held, unchanged."""
    with zipfile.ZipFile(source / f"{TOP}.zip") as z:
        want = hashlib.sha256(z.read(f"{TOP}/Applis inconnues/donnees.bin")).hexdigest()
    items = {i.id: i for i in export_all(EdificeExporter(source), OWNER)}
    assert items["edifice-archive/Applis inconnues/donnees.bin"].sha256 == want


def test_an_english_export_comes_back_under_its_own_folder_names(tmp_path):
    """The app folder and index are named in the user's language (here English, from
    workspace/src/main/resources/i18n/en.json); rows arrive before the app's folder item, so
    the writer first uses its French default, then renames to what the archive said."""
    src = tmp_path / "en"
    src.mkdir()
    rows = [row("e1", "folder", "Homework", "My documents/Homework"),
            row("e2", "file", "essay.txt", "My documents/Homework/essay.txt", parent="e1", file="s",
                metadata={"content-type": "text/plain", "size": 5})]
    raw_zip(src / f"{TOP}.zip", [(f"{TOP}/Manifest.json", json.dumps(
        {"org.entcore.workspace": {"version": "6.15.4", "folder": "Workspace"}})),
        (f"{TOP}/Workspace/Workspace", json.dumps(rows)),
        (f"{TOP}/Workspace/My documents/Homework/essay.txt", b"essay")])
    e1 = export_all(EdificeExporter(src), OWNER)
    assert [i.id for i in e1] == ["My documents/Homework", "edifice-archive/Workspace",
                                  "My documents/Homework/essay.txt"]
    out = tmp_path / "out"
    imp = EdificeImporter(out)
    import_all(imp, e1)
    zpath = imp.pack(OWNER)
    with zipfile.ZipFile(zpath) as z:
        top = z.namelist()[0].rstrip("/")
        names = set(z.namelist())
        assert f"{top}/Workspace/Workspace" in names and f"{top}/Workspace/My documents/Homework/essay.txt" in names
        assert not any("Espace documentaire" in n for n in names)
    assert_same_items(e1, export_all(EdificeExporter(out), OWNER))
