"""Bag write/read/validate, tamper detection naming the file, unsafe paths refused; packing a person's
items into a bag and back (safe Unicode paths alone: tests/unit/vault/test_item_ids.py)."""
from __future__ import annotations

import json
import shutil

import pytest

from connectors.sdk import check_index
from services.vault.adapters.local_store import LocalStore
from services.vault.adapters.tables import vault_item_version
from services.vault.archive.bagit import BagError, read_bag, validate_bag, write_bag
from services.vault.archive.packing import VAULT_METADATA, pack_person, unpack_bag
from services.vault.items import Vault

PAYLOAD = {
    "documents/Mes Documents/Élève été.txt": b"bonjour",
    "documents/Classe 6ᵉ/notes.odt": b"\x00\x01binary",
    "documents/index.json": b'{"items": [], "extensions": {"vendor:x": 1}}',
}


def _bag(tmp_path):
    return write_bag(tmp_path / "bag", PAYLOAD, {"Source-Organization": "VendorX", "Relais-Tenant": "ac-test",
                                                  "Relais-Person-Jointure": "1234"})


def test_roundtrip_validates_and_keeps_unicode(tmp_path):
    _bag(tmp_path)
    bag = validate_bag(tmp_path / "bag")
    assert set(bag.manifest) == set(PAYLOAD)
    for rel, data in PAYLOAD.items():
        assert bag.payload_path(rel).read_bytes() == data
    assert bag.info["Payload-Oxum"] == [f"{sum(map(len, PAYLOAD.values()))}.{len(PAYLOAD)}"]
    assert bag.info["Relais-Format-Version"] == ["1.1"]
    assert bag.info["Source-Organization"] == ["VendorX"]


def test_tampered_payload_named(tmp_path):
    _bag(tmp_path)
    (tmp_path / "bag/data/documents/Classe 6ᵉ/notes.odt").write_bytes(b"\x00\x01binarX")
    with pytest.raises(BagError, match="data/documents/Classe 6ᵉ/notes.odt does not match"):
        validate_bag(tmp_path / "bag")


def test_tampered_tagfile_named(tmp_path):
    _bag(tmp_path)
    p = tmp_path / "bag/bag-info.txt"
    p.write_text(p.read_text().replace("VendorX", "VendorY"))
    with pytest.raises(BagError, match="tag file bag-info.txt does not match"):
        validate_bag(tmp_path / "bag")


def test_extra_and_missing_files_named(tmp_path):
    _bag(tmp_path)
    (tmp_path / "bag/data/intrus.txt").write_bytes(b"x")
    with pytest.raises(BagError, match="data/intrus.txt is not listed"):
        validate_bag(tmp_path / "bag")
    (tmp_path / "bag/data/intrus.txt").unlink()
    (tmp_path / "bag/data/documents/index.json").unlink()
    with pytest.raises(BagError, match="data/documents/index.json listed .* is missing"):
        validate_bag(tmp_path / "bag")


@pytest.mark.parametrize("bad", ["../etc/passwd", "/abs", "a/../b", "a//b", "a\\b", ""])
def test_unsafe_paths_rejected(tmp_path, bad):
    with pytest.raises(BagError, match="unsafe path"):
        write_bag(tmp_path / "b", {bad: b"x"}, {})


def test_pack_unpack_person_keeps_unicode_and_extensions(sqlite_engine, tmp_path):
    src = Vault(sqlite_engine, LocalStore(tmp_path / "a", "ac-a"))
    meta = {"owner": "J1", "sharing": ["classe-6A"], "extensions": {"vendor:x": {"couleur": "bleu"}}}
    src.put("J1", "documents", "Dossier été/Élève ①.txt", b"contenu", meta)
    src.put("J1", "calendars", "perso.ics", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", {"media_type": "text/calendar"})
    src.put("J1", "documents", "supprimé.txt", b"x")
    src.delete("J1", "documents", "supprimé.txt")
    bag_dir = pack_person(src, "J1", tmp_path / "bag")
    validate_bag(bag_dir)
    with sqlite_engine.begin() as conn:  # start from an empty index: everything must come from the bag
        conn.execute(vault_item_version.delete())
    dst = Vault(sqlite_engine, LocalStore(tmp_path / "b", "ac-a"))
    assert unpack_bag(dst, bag_dir) == 2
    got = {(v.vertical, v.item_id): (dst.read(v), v.metadata) for v in dst.current("J1")}
    assert got[("documents", "Dossier été/Élève ①.txt")] == (b"contenu", meta)
    assert ("documents", "supprimé.txt") not in got
    (bag_dir / "data/calendars/files/perso.ics").write_bytes(b"tampered")
    with pytest.raises(BagError, match="data/calendars/files/perso.ics does not match"):
        unpack_bag(dst, bag_dir)


def _vault(engine, root, tenant="ac-a"):
    return Vault(engine, LocalStore(root, tenant))


def test_pack_writes_format_1_1_with_index_json_folders_and_vendor_fields(sqlite_engine, tmp_path):
    src = _vault(sqlite_engine, tmp_path / "a")
    doc_meta = {"media_type": "application/pdf", "title": "Fiche", "kind": "file",
                "sharing": [{"principal": {"type": "class", "id": "S1$6A"}, "rights": ["read"]}],
                "extra": {"enta:color": "#ff0000"}}
    src.put("J1", "documents", "Cours/fiche.pdf", b"%PDF-1.4 fiche", doc_meta, path="Cours/fiche.pdf")
    src.put("J1", "documents", "Vide", b"", {"kind": "folder"}, path="Vide")
    src.put("J1", "contacts", "carnet/a.vcf", b"BEGIN:VCARD\r\nVERSION:4.0\r\nFN:A\r\nEND:VCARD\r\n",
            {"media_type": "text/vcard", "vcard_version": "4.0", "kind": "file"})
    bag_dir = pack_person(src, "J1", tmp_path / "bag")
    bag = validate_bag(bag_dir)
    assert bag.info["Relais-Format-Version"] == ["1.1"]
    assert set(bag.manifest) == {"documents/index.json", "documents/files/Cours/fiche.pdf", "contacts/index.json",
                                 "contacts/files/carnet/a.vcf"}  # the empty folder has no file
    index = json.loads((bag_dir / "data/documents/index.json").read_text(encoding="utf-8"))
    check_index("documents", index)  # what any reader of the format checks
    assert index["format_version"] == "1.1" and index["vertical"] == "documents"
    fiche, vide = index["items"]
    assert fiche == {**doc_meta, "id": "Cours/fiche.pdf", "path": "Cours/fiche.pdf", "size": 14,
                     "sha256": bag.manifest["documents/files/Cours/fiche.pdf"]}
    assert (vide["kind"], vide["size"], vide["id"]) == ("folder", 0, "Vide")

    with sqlite_engine.begin() as conn:
        conn.execute(vault_item_version.delete())
    dst = _vault(sqlite_engine, tmp_path / "b")
    assert unpack_bag(dst, bag_dir) == 3
    got = {(v.vertical, v.item_id): (dst.read(v), v.metadata, v.path) for v in dst.current("J1")}
    assert got[("documents", "Cours/fiche.pdf")] == (b"%PDF-1.4 fiche", doc_meta, "Cours/fiche.pdf")
    assert got[("documents", "Vide")] == (b"", {"kind": "folder"}, "Vide")


def test_continuous_metadata_outside_the_schema_travels_verbatim_and_a_missing_required_field_is_named(
        sqlite_engine, tmp_path):
    src = _vault(sqlite_engine, tmp_path / "a")
    odd = {"owner": "J1", "sharing": ["classe-6A"], "vendorField": 3}  # as an ENT reported it: not the schema's shapes
    src.put("J1", "documents", "a.txt", b"a", odd)
    index = json.loads((pack_person(src, "J1", tmp_path / "bag") / "data/documents/index.json").read_text("utf-8"))
    (record,) = index["items"]
    assert record["extra"] == {VAULT_METADATA: odd} and "sharing" not in record

    src.put("J2", "homework", "devoir.html", b"<p>exercice 3</p>", {"subject": "maths"})
    with pytest.raises(BagError, match=r"person J2, homework item 'devoir.html' cannot be written in format 1.1: "
                                       r".*'entry_type' is a required property"):
        pack_person(src, "J2", tmp_path / "bag2")


def test_format_1_0_bags_are_still_read(sqlite_engine, tmp_path):
    meta = {"owner": "J1", "extensions": {"vendor:x": {"couleur": "bleu"}}}
    write_bag(tmp_path / "old", {
        "documents/relais-items.json": json.dumps({"format_version": "1.0", "items": {
            "Dossier été/Élève.txt": meta}}, ensure_ascii=False).encode(),
        "documents/files/Dossier été/Élève.txt": b"contenu"},
        {"Source-Organization": "Relais", "Relais-Tenant": "ac-a", "Relais-Person-Jointure": "J1",
         "Relais-Format-Version": "1.0"})
    dst = _vault(sqlite_engine, tmp_path / "b")
    assert unpack_bag(dst, tmp_path / "old") == 1
    (v,) = dst.current("J1")
    assert (v.item_id, dst.read(v), v.metadata) == ("Dossier été/Élève.txt", b"contenu", meta)


def test_a_1_1_bag_whose_index_and_files_disagree_is_refused_naming_the_file(sqlite_engine, tmp_path):
    src = _vault(sqlite_engine, tmp_path / "a")
    src.put("J1", "documents", "a.txt", b"a", {"kind": "file"})
    bag_dir = pack_person(src, "J1", tmp_path / "bag")
    index_path = bag_dir / "data/documents/index.json"
    doc = json.loads(index_path.read_text(encoding="utf-8"))
    doc["items"] = []  # a file the index does not list: it would be lost on unpack
    index_path.write_text(json.dumps(doc), encoding="utf-8")
    _rebag(bag_dir)
    with pytest.raises(BagError, match=r"data/documents/files/a.txt is in the bag but data/documents/index.json "
                                       r"has no file item 'a.txt'"):
        unpack_bag(_vault(sqlite_engine, tmp_path / "b"), bag_dir)
    doc["items"] = [{"id": "a.txt", "path": "a.txt", "kind": "file", "sha256": "0" * 64, "size": 1}]
    index_path.write_text(json.dumps(doc), encoding="utf-8")
    _rebag(bag_dir)
    with pytest.raises(BagError, match=r"data/documents/files/a.txt does not match the sha256 "
                                       r"data/documents/index.json gives it"):
        unpack_bag(_vault(sqlite_engine, tmp_path / "b"), bag_dir)


def _rebag(bag_dir):
    """Rewrite a bag's manifests after editing its payload (what a careless tool would do)."""

    bag = read_bag(bag_dir)
    payload = {rel: bag.payload_path(rel).read_bytes() for rel in bag.manifest}
    info = {k: v[0] for k, v in bag.info.items() if k != "Payload-Oxum"}
    shutil.rmtree(bag_dir)
    write_bag(bag_dir, payload, info)
