"""`relais vault handover`: the contract-end pack of a tenant. Its bags validate with `bagit`; handover.json, the
HTML page and the PDF (parsed by pypdf, a reader we did not write) hold the same figures, the hashes, and
lost = 0 or every miss named; French by default, English on request."""
from __future__ import annotations

import hashlib
import json
from html.parser import HTMLParser
from io import BytesIO

import bagit
import pytest
from click.testing import CliRunner
from pypdf import PdfReader

from app.cli import main
from relais.db import writer
from relais.i18n import missing
from services.vault.adapters.local_store import LocalStore
from services.vault.handover.pack import HandoverError, handover
from services.vault.handover.summary import MSGIDS
from services.vault.items import Vault
from services.vault.transfer.checkpoint import INCOMPLETE, ItemRow, Scope, open_job
from services.vault.transfer.report import DONE, FAILED

from .test_bags import NAMES, TENANT, UAI, _fill


def _flat(text: str) -> str:
    return "".join(text.split())  # PDF text comes back cut in lines, numbers with narrow spaces


def _pdf_text(path) -> str:
    reader = PdfReader(BytesIO(path.read_bytes()))
    return _flat("".join(page.extract_text() for page in reader.pages))


def _an_export_with_a_failure(engine) -> None:
    cp = open_job(engine, tenant=TENANT, kind="export", connector="webdav", scope=Scope(None, ("documents",)))
    with writer(engine).begin() as conn:
        cp.record(conn, [ItemRow("2605692", "documents", "Mes documents/notes.odt", DONE, "new", "ab" * 32, 10240),
                         ItemRow("2605692", "documents", "lent.mp4", FAILED,
                                 error="webdav: GET got no answer within 30 s (read timeout)")])
    cp.finish(INCOMPLETE)


def _verify_report(tmp_path, *, lost: bool):
    findings = [{"person": "2605693", "vertical": "documents", "item": "perdu.txt", "path": "perdu.txt",
                 "verdict": "lost", "where": "target", "problem": "missing",
                 "detail": "in the vault, not at the target"}]
    doc = {"tenant": TENANT, "sides": {"vault": "vault", "target": "webdav"}, "ok": not lost, "lost": int(lost),
           "unverified": 0, "extra": 0, "findings": findings if lost else [], "errors": []}
    path = tmp_path / f"verify-{lost}.json"
    path.write_text(json.dumps(doc))
    return path


class _Html(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data):
        self.text.append(data)


def test_a_handover_pack_names_every_miss_in_json_html_and_pdf(sqlite_engine, tmp_path):
    vault = Vault(sqlite_engine, LocalStore(tmp_path / "store", TENANT))
    _fill(vault)
    _an_export_with_a_failure(sqlite_engine)
    pack = handover(sqlite_engine, vault.store, tmp_path / "pack", ran_by="Claire Martin, DSI de la Métropole",
                    verify_reports=[_verify_report(tmp_path, lost=True)])
    assert not pack.ok
    folder = tmp_path / "pack"
    assert sorted(p.name for p in folder.iterdir()) == ["bags", "bags-sha256.txt", "handover.json",
                                                       "summary-fr.html", "summary-fr.pdf"]
    for name in NAMES:
        bagit.Bag(str(folder / "bags" / name)).validate()
    facts = json.loads((folder / "handover.json").read_text())
    assert (facts["persons"], facts["structures"], facts["items"], facts["lost"]) == (2, 1, 7, 3)
    assert facts["verticals"]["documents"] == {"items": 4, "bytes": 800 + 10240 + 12 + 14}
    assert [(m["kind"], m["owner"]) for m in facts["misses"]] == [
        ("export-job", None), ("export-item", "2605692"), ("verify-finding", "2605693")]
    assert "lent.mp4" in facts["misses"][1]["what"] and "read timeout" in facts["misses"][1]["why"]
    hashes = (folder / "bags-sha256.txt").read_text()
    for name in NAMES:
        tagmanifest = (folder / "bags" / name / "tagmanifest-sha256.txt").read_bytes()
        assert f"{hashlib.sha256(tagmanifest).hexdigest()}  {name}\n" in hashes
    seal = hashlib.sha256(hashes.encode()).hexdigest()
    assert facts["bags_seal_sha256"] == seal
    json_sha = hashlib.sha256((folder / "handover.json").read_bytes()).hexdigest()

    page = _Html()
    page.feed((folder / "summary-fr.html").read_text())
    assert ("html", {"lang": "fr"}) in page.tags and [t for t, _ in page.tags].count("h1") == 1
    assert [t for t, _ in page.tags].count("table") == [t for t, _ in page.tags].count("caption")
    assert all(a.get("scope") == "col" for t, a in page.tags if t == "th")
    html = _flat(" ".join(page.text))
    pdf = _pdf_text(folder / "summary-fr.pdf")
    for text in (html, pdf):
        for expected in ("Restitution de fin de contrat du locataire ac-bags", "Claire Martin, DSI de la Métropole",
                         "Personnes2", "Structures1", "Éléments7", "Perdus=3", "lent.mp4", "perdu.txt",
                         "readtimeout", "Exportnonterminé", seal, json_sha, "Pourlacollectivité", "Signature:",
                         f"structure-{UAI}", "Agendas"):
            assert _flat(expected) in text, (expected, text[:400])
    assert PdfReader(folder / "summary-fr.pdf").metadata.title == "Restitution de fin de contrat du locataire ac-bags"


def test_a_clean_pack_says_lost_0_in_english_and_the_command_line_exit_codes(cli_vault, tmp_path):
    vault = cli_vault
    vault.put("J1", "documents", "note.txt", b"note")
    run = CliRunner().invoke
    out = run(main, ["vault", "handover", "--to", str(tmp_path / "pack"), "--by", "A. Admin", "--lang", "en",
                     "--zip", "--verify-report", str(_verify_report(tmp_path, lost=False)), "--json"])
    assert out.exit_code == 2 and "not 'test'" in out.output  # a verification of another tenant
    good = tmp_path / "ok.json"
    good.write_text(json.dumps({**json.loads(_verify_report(tmp_path, lost=False).read_text()), "tenant": "test"}))
    out = run(main, ["vault", "handover", "--to", str(tmp_path / "pack"), "--by", "A. Admin", "--lang", "en",
                     "--zip", "--verify-report", str(good), "--json"])
    assert out.exit_code == 0, out.output
    report = json.loads(out.stdout)
    assert (report["lost"], report["persons"], report["items"], report["bags"]["written"]) == (0, 1, 1, 1)
    assert (tmp_path / "pack/bags/person-J1.zip").is_file()
    pdf = _pdf_text(tmp_path / "pack" / "summary-en.pdf")
    assert _flat("Nothing was lost: lost = 0.") in pdf and _flat("For the local authority") in pdf
    out = run(main, ["vault", "handover", "--to", str(tmp_path / "pack"), "--by", "A. Admin"])
    assert out.exit_code == 0 and "lost: 0" in out.output
    assert (tmp_path / "pack" / "summary-fr.pdf").is_file()
    out = run(main, ["vault", "handover", "--to", str(tmp_path / "pack"), "--by", "A. Admin", "--lang", "de"])
    assert out.exit_code == 2 and "available languages are en, fr" in out.output


def test_a_verify_report_that_is_not_one_is_refused_naming_the_file(sqlite_engine, tmp_path):
    bad = tmp_path / "rapport.json"
    bad.write_text('{"lost": "none"}')
    with pytest.raises(HandoverError, match="rapport.json: field 'tenant' missing"):
        handover(sqlite_engine, LocalStore(tmp_path / "s", TENANT), tmp_path / "p", ran_by="x",
                 verify_reports=[bad])
    assert not (tmp_path / "p").exists()


def test_every_word_of_the_summary_is_in_both_catalogues():
    assert missing(MSGIDS, "fr") == [] and missing(MSGIDS, "en") == []
