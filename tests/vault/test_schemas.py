"""The archive format's JSON Schemas per vertical (contracts/vault/schemas/): valid samples pass,
invalid ones fail with the field named, vendor fields are kept in `extra`, SPEC.md names each."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from connectors.sdk import VERTICALS, BadItem, Item, check_index, check_record, index_document
from connectors.sdk.items import EMPTY_SHA256
from services.vault.rules.item_ids import VERTICALS as VAULT_VERTICALS

ROOT = Path(__file__).resolve().parents[2]
SCHEMAS = ROOT / "contracts" / "vault" / "schemas"
SHA = "a" * 64

FOLDER = {"id": "Mes documents", "path": "Mes documents", "kind": "folder", "sha256": EMPTY_SHA256, "size": 0}

VALID: dict[str, list[dict]] = {
    "documents": [
        FOLDER,
        {"id": "Mes documents/Élèves 6ᵉA/cours #1.pdf", "path": "Mes documents/Élèves 6ᵉA/cours #1.pdf",
         "kind": "file", "sha256": SHA, "size": 1234, "media_type": "application/pdf",
         "owner": {"id": "2605692", "name": "Mme Martin"}, "created": "2019-09-02T08:00:00Z",
         "modified": "2024-06-30T17:45:12+02:00", "description": "Chapitre 1",
         "sharing": [{"principal": {"type": "class", "id": "0750001A$6A"}, "rights": ["read"]},
                     {"principal": {"type": "public"}, "rights": ["read"], "expires": "2025-01-01T00:00:00Z"}],
         "extra": {"edifice:folderId": "6f1c", "protected": False}},
    ],
    "calendars": [
        {"id": "cours", "path": "cours", "kind": "folder", "sha256": EMPTY_SHA256, "size": 0,
         "displayname": "Cours", "color": "#ff0000", "timezone": "Europe/Paris"},
        {"id": "cours/abc.ics", "path": "cours/abc.ics", "kind": "file", "sha256": SHA, "size": 300,
         "media_type": "text/calendar", "uid": "abc@ent", "component": "VEVENT"},
    ],
    "contacts": [
        {"id": "carnet/x.vcf", "path": "carnet/x.vcf", "kind": "file", "sha256": SHA, "size": 120,
         "media_type": "text/vcard", "uid": "x", "vcard_version": "4.0"},
    ],
    "messages": [
        {"id": "m1", "path": "inbox/m1", "kind": "file", "sha256": SHA, "size": 10, "media_type": "text/html",
         "role": "message", "subject": "Sortie", "from": {"id": "123", "name": "Vie scolaire"},
         "to": [{"id": "456"}], "sent": "2024-05-01T10:00:00Z", "folder": "inbox", "read": True},
        {"id": "m1/attachments/autorisation.pdf", "path": "inbox/m1/autorisation.pdf", "kind": "file",
         "sha256": SHA, "size": 5, "role": "attachment", "parent": "m1"},
    ],
    "blogs": [
        {"id": "blog-6a/post-1/index.html", "path": "Blog 6A/Sortie", "kind": "file", "sha256": SHA, "size": 9,
         "media_type": "text/html", "role": "post", "state": "published", "published": "2024-05-02T09:00:00Z"},
        {"id": "blog-6a/post-1/assets/photo.jpg", "path": "Blog 6A/Sortie/photo.jpg", "kind": "file",
         "sha256": SHA, "size": 9, "role": "asset", "parent": "blog-6a/post-1/index.html"},
    ],
    "homework": [
        {"id": "2024/hw-17", "path": "6A/Maths/2024-09-10", "kind": "file", "sha256": SHA, "size": 42,
         "media_type": "text/html", "entry_type": "homework", "structure": "0750001A", "classes": ["6A"],
         "subject": "MATHS", "teacher": {"id": "789"}, "date": "2024-09-10", "due": "2024-09-12"},
        {"id": "2024/lesson-3", "path": "6A/Maths/2024-09-10 cours", "kind": "file", "sha256": SHA, "size": 42,
         "entry_type": "lesson", "date": "2024-09-10", "duration_minutes": 55},
    ],
}

# (vertical, change applied to the first valid record, word the error names)
INVALID = [
    ("documents", {"bogus": 1}, "bogus"),  # unknown field outside `extra`
    ("documents", {"extra": []}, "extra"),
    ("documents", {"id": "../etc/passwd"}, "id"),
    ("documents", {"id": "/abs"}, "id"),
    ("documents", {"sha256": "ABC"}, "sha256"),
    ("documents", {"size": -1}, "size"),
    ("documents", {"kind": "symlink"}, "kind"),
    ("documents", {"size": 3}, "size"),  # a folder has no content
    ("documents", {"modified": "hier"}, "modified"),
    ("calendars", {"kind": "file", "media_type": "text/plain", "sha256": SHA, "size": 1}, "media_type"),
    ("contacts", {"media_type": "text/calendar"}, "media_type"),
    ("contacts", {"vcard_version": "5.0"}, "vcard_version"),
    ("messages", {"to": "everyone"}, "to"),
    ("messages", {"role": "attachment"}, "parent"),
    ("blogs", {"state": "lost"}, "state"),
    ("homework", {"due": None}, "due"),
    ("homework", {"structure": "075"}, "structure"),
]


def test_every_vertical_has_a_valid_schema_named_in_the_spec():
    spec = (ROOT / "contracts" / "vault" / "SPEC.md").read_text(encoding="utf-8")
    for vertical in VERTICALS:
        path = SCHEMAS / f"{vertical}.json"
        doc = json.loads(path.read_text(encoding="utf-8"))
        Draft202012Validator.check_schema(doc)
        assert doc["properties"]["vertical"] == {"const": vertical}
        assert f"schemas/{vertical}.json" in spec, f"SPEC.md does not reference {vertical}.json"
    Draft202012Validator.check_schema(json.loads((SCHEMAS / "common.json").read_text(encoding="utf-8")))


@pytest.mark.parametrize("vertical", VERTICALS)
def test_valid_records_and_index_pass(vertical):
    for record in VALID[vertical]:
        check_record(vertical, record)
    check_index(vertical, {"format_version": "1.1", "vertical": vertical, "items": VALID[vertical],
                           "extensions": {"vendor:edifice": {"exportId": "e-42", "apps": ["workspace"]}}})


@pytest.mark.parametrize("vertical,change,word", INVALID)
def test_invalid_records_fail_naming_the_field(vertical, change, word):
    record = {**copy.deepcopy(VALID[vertical][0]), **change}
    record = {k: v for k, v in record.items() if v is not None}
    with pytest.raises(BadItem, match=word):
        check_record(vertical, record)


def test_vendor_fields_are_kept_in_extra_verbatim():
    record = copy.deepcopy(VALID["documents"][1])
    record["extra"] = {"deeply": {"nested": [1, {"x": None}]}, "ünïcode": "✓"}
    check_record("documents", record)
    assert json.loads(json.dumps(record))["extra"] == record["extra"]


@pytest.mark.parametrize("doc,word", [
    ({"vertical": "documents", "items": []}, "format_version"),
    ({"format_version": "2.0", "vertical": "documents", "items": []}, "format_version"),
    ({"format_version": "1.1", "vertical": "calendars", "items": []}, "vertical"),
    ({"format_version": "1.1", "vertical": "documents", "items": [], "extensions": {"edifice": {}}}, "extensions"),
    ({"format_version": "1.1", "vertical": "documents", "items": [], "extra_top": 1}, "extra_top"),
])
def test_invalid_index_files_fail(doc, word):
    with pytest.raises(BadItem, match=word):
        check_index("documents", doc)


def test_index_documents_are_built_sorted_and_checked():
    items = [Item.from_bytes("p", "documents", "b.txt", b"b"), Item.folder("p", "documents", "a")]
    doc = index_document("documents", [i.record() for i in items], {"vendor:x": {"k": 1}})
    assert [r["id"] for r in doc["items"]] == ["a", "b.txt"] and doc["format_version"] == "1.1"
    with pytest.raises(BadItem, match="extensions"):
        index_document("documents", [], {"x": 1})


def test_the_sdk_verticals_are_the_vaults():
    assert VERTICALS == VAULT_VERTICALS
