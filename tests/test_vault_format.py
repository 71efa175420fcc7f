"""Bag write/read/validate, tamper detection naming the file, safe Unicode paths."""
from __future__ import annotations

import unicodedata

import pytest

from services.vault.bagit import BagError, safe_path, validate_bag, write_bag

PAYLOAD = {
    "documents/Mes Documents/Élève été.txt": "bonjour".encode(),
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
    assert bag.info["Relais-Format-Version"] == ["1.0"]
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


def test_unicode_normalised_nfc():
    nfd = unicodedata.normalize("NFD", "Élève/été.txt")
    assert safe_path(nfd) == unicodedata.normalize("NFC", "Élève/été.txt")


def test_pack_unpack_person_keeps_unicode_and_extensions(sqlite_engine, tmp_path):
    from services.vault.model import Vault
    from services.vault.packing import pack_person, unpack_bag
    from services.vault.store import LocalStore

    src = Vault(sqlite_engine, LocalStore(tmp_path / "a", "ac-a"))
    meta = {"owner": "J1", "sharing": ["classe-6A"], "extensions": {"vendor:x": {"couleur": "bleu"}}}
    src.put("J1", "documents", "Dossier été/Élève ①.txt", b"contenu", meta)
    src.put("J1", "calendars", "perso.ics", b"BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n", {})
    src.put("J1", "documents", "supprimé.txt", b"x")
    src.delete("J1", "documents", "supprimé.txt")
    bag_dir = pack_person(src, "J1", tmp_path / "bag")
    validate_bag(bag_dir)
    from services.vault.tables import vault_item_version

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
