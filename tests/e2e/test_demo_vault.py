"""The demo's contract-end step (relais/demo_vault.py) on a small academy: a pupil's, a parent's and a teacher's
documents, calendars and contacts go from ENT A (wsgidav, Radicale) to ENT B through the real ``relais vault``
commands; verify finds nothing lost, and the handover pack's bags validate with bagit. Damaged at ENT B after the
import, verify and the pack name the damage and the step fails."""
from __future__ import annotations

import re

import requests

from tests.saml_peers import import_sample_directory
from tools.demo import vault as demo_vault

PUPIL, PARENT, TEACHER = "1001", "R1", "T1"  # tests/saml_peers.py: T1 works in 1001's school


def _sides(out: str, vertical: str) -> str:
    return re.search(r"^  verify: (.*)$", out.split(f"{vertical} (")[1], re.M).group(1)


def test_everything_reaches_ent_b_and_verify_finds_nothing_lost(sqlite_engine, tmp_path, capsys):
    import_sample_directory(sqlite_engine, tmp_path)
    seen = []
    assert demo_vault.run(sqlite_engine, "test", tmp_path, PUPIL, after_import=seen.append)
    out = capsys.readouterr().out
    assert f"of pupil {PUPIL}, parent {PARENT} and teacher {TEACHER}" in out
    assert out.count("lost: 0, altered: 0, unverified: 0, extra: 0 — nothing lost") == 3
    # every item at each of the three sides, same counts and bytes, for each vertical
    for vertical, items in (("documents", 23), ("calendars", 8), ("contacts", 5)):  # documents: 18 + the school's 5
        sides = _sides(out, vertical)
        counts = re.findall(r"(source|vault|target) (\d+) items ([\d,]+) bytes", sides)
        assert [c[0] for c in counts] == ["source", "vault", "target"], sides
        assert {(n, b) for _, n, b in counts} == {(str(items), counts[0][2])}, sides
    # the worksheet two persons hold was stored once
    assert "10 contents stored in the vault (1 already there: stored once)" in out
    # the handover pack: a bag per person, every one valid for the Library of Congress's bagit, lost = 0
    assert "  handover pack in " in out and "3 person(s), 1 structure(s), 36 items" in out and "lost: 0\n" in out
    assert "  bags validated by bagit (Library of Congress): 4 of 4\n" in out
    pack = tmp_path / "contract-end" / "handover"
    uai = re.search(r"and their school (\w+)'s shared space", out).group(1)
    assert {p.name for p in (pack / "bags").iterdir()} == {f"person-{j}" for j in (PUPIL, PARENT, TEACHER)} | {
        f"structure-{uai}"}
    rules = pack / "bags" / f"structure-{uai}" / "data/documents/files/Établissement/Règlement intérieur.txt"
    assert rules.read_bytes().startswith(b"Article 1 : le respect")
    assert (pack / "summary-fr.pdf").read_bytes().startswith(b"%PDF-")
    assert '<html lang="fr">' in (pack / "summary-fr.html").read_text()

    # ENT B really holds the bytes ENT A had, under the same names (NFC), and the empty folders
    (ent_b,) = seen
    people = demo_vault.People(*(_person(sqlite_engine, j) for j in (PUPIL, PARENT, TEACHER)))
    for owner, tree in demo_vault.documents(people).items():
        for rel, data in tree.items():
            path = ent_b.documents / owner / rel
            assert path.is_dir() if data is None else path.read_bytes() == data, rel
    event = ent_b.dav / "collections" / "collection-root" / PUPIL / "emploi-du-temps" / "sortie-musee.ics"
    assert b"UID:sortie-musee@ent-a" in event.read_bytes()  # Radicale's own storage at ENT B


def _person(engine, jointure):
    from services.directory.api import Directory

    return Directory(engine, "test").get_person(jointure)


def test_damage_at_ent_b_is_named_by_verify_and_fails_the_step(sqlite_engine, tmp_path, capsys):
    import_sample_directory(sqlite_engine, tmp_path)

    def damage(ent_b: demo_vault.Ent) -> None:
        (ent_b.documents / PUPIL / "Mes documents" / "notes.txt").unlink()
        (ent_b.documents / TEACHER / "Cours" / "Progression 2013-2014.txt").write_bytes(b"rewritten by ENT B\n")
        gone = requests.delete(f"{ent_b.urls['dav']}{PUPIL}/emploi-du-temps/francais.ics",
                               auth=(demo_vault.USER, ent_b.password), timeout=10)
        assert gone.status_code in (200, 204)

    assert not demo_vault.run(sqlite_engine, "test", tmp_path, PUPIL, after_import=damage)
    out = capsys.readouterr().out
    assert f"LOST {PUPIL} documents 'Mes documents/notes.txt': in the vault, not at the target" in out
    assert re.search(rf"LOST {TEACHER} documents 'Cours/Progression 2013-2014.txt': \d+ bytes in the vault, "
                     r"19 in the target; sha256 ", out)
    assert f"LOST {PUPIL} calendars 'emploi-du-temps/francais.ics': in the vault, not at the target" in out
    documents, calendars, contacts = (out.split(f"{v} (")[1] for v in ("documents", "calendars", "contacts"))
    assert "lost: 2, altered: 1, unverified: 0, extra: 0\n" in documents
    assert "lost: 1, altered: 0, unverified: 0, extra: 0\n" in calendars
    assert "lost: 0, altered: 0, unverified: 0, extra: 0 — nothing lost" in contacts  # untouched
    # the handover pack names the same losses, and its bags (what the vault holds) still validate
    assert "lost: 3\n" in out and f"  MISS verify-finding {PUPIL} verify " in out
    assert "  bags validated by bagit (Library of Congress): 4 of 4\n" in out
