"""What a handover pack says and the misses it names (services/vault/rules/handover.py)."""
from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest

from services.vault.rules.handover import Handover, check_verify_report, misses


def _bag(name, kind, owner, state="written", items=1, nbytes=10, vertical="documents"):
    return {"name": name, "kind": kind, "owner": owner, "state": state, "items": items, "bytes": nbytes,
            "verticals": {vertical: {"items": items, "bytes": nbytes}}, "tagmanifest_sha256": "ab" * 32,
            "error": None if state != "failed" else "blob damaged"}


def test_a_pack_counts_what_its_bags_hold_and_seals_them():
    h = Handover("ac-x", "C. Martin", "root@vm", datetime(2026, 12, 7, tzinfo=UTC), bags=[
        _bag("person-1", "person", "1", items=2, nbytes=5), _bag("structure-0690001A", "structure", "0690001A",
                                                                  vertical="blogs"),
        _bag("person-2", "person", "2", state="failed")])
    assert (h.persons, h.structures, h.items, h.bytes) == (1, 1, 3, 15)
    assert h.verticals() == {"blogs": {"items": 1, "bytes": 10}, "documents": {"items": 2, "bytes": 5}}
    assert h.bag_hashes() == f"{'ab' * 32}  person-1\n{'ab' * 32}  structure-0690001A\n"
    assert h.seal() == hashlib.sha256(h.bag_hashes().encode()).hexdigest()
    d = h.to_dict()
    assert d["lost"] == 1 and d["misses"] == [{"kind": "bag", "owner": "2", "what": "person-2", "why": "blob damaged"}]
    assert d["at"] == "2026-12-07T00:00:00Z"


def test_every_miss_is_named_and_nothing_else_is_one():
    export = {"kind": "export", "job": "j1", "connector": "webdav", "state": "incomplete", "error": None,
              "failures": [{"person": "1", "vertical": "documents", "item": "a.txt", "error": "timeout"},
                           {"person": "2", "vertical": "documents", "item": None, "error": "PROPFIND garbage"}]}
    clean = {"kind": "export", "job": "j2", "connector": "caldav", "state": "completed", "failures": []}
    verify = {"sides": {"vault": "vault", "target": "webdav"}, "errors": [
        {"side": "target", "person": None, "vertical": "contacts", "error": "refused"}], "findings": [
        {"person": "1", "vertical": "documents", "item": "b", "path": "b.txt", "verdict": "lost", "detail": "missing"},
        {"person": "1", "vertical": "documents", "item": "c", "path": "c.txt", "verdict": "extra", "detail": "x"}]}
    found = misses([_bag("structure-0690001A", "structure", "0690001A", state="failed")], [export, clean], [verify])
    assert [(m.kind, m.owner) for m in found] == [
        ("bag", "structure:0690001A"), ("export-job", None), ("export-item", "1"), ("export-item", "2"),
        ("verify-side", None), ("verify-finding", "1")]
    assert found[3].what == "export job j1 (webdav): documents (listing)" and found[3].why == "PROPFIND garbage"
    assert found[5].what == "verify target (webdav), vault (vault): documents 'b.txt'"
    assert misses([], [clean], [{"sides": {}, "findings": [], "errors": []}]) == []


def test_a_verify_report_is_checked_naming_the_file():
    good = {"tenant": "t", "ok": True, "lost": 0, "unverified": 0, "findings": [], "sides": {}}
    assert check_verify_report(good, "v.json") is good
    with pytest.raises(ValueError, match="v.json: expected the JSON object"):
        check_verify_report([], "v.json")
    with pytest.raises(ValueError, match="v.json: field 'lost' missing or not a int"):
        check_verify_report({**good, "lost": "0"}, "v.json")
