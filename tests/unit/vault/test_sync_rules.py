"""Incremental sync's pure parts: the SDK's ETag comparison, the answer of a sync-collection REPORT, and
the completeness check after a sync."""
from __future__ import annotations

import pytest

from connectors.sdk import BadResponse, ItemRef
from connectors.sdk.sync import diff_listing
from connectors.webdav.sync import parse_sync
from services.vault.rules.completeness import CONTENT_MISSING, NOT_AT_SOURCE, NOT_IN_VAULT, misses


def ref(item_id, etag):
    return ItemRef("p", "documents", item_id, item_id, etag=etag)


def test_etags_compared_find_changed_new_deleted_and_items_without_etag():
    first = diff_listing([ref("a", "1"), ref("b", "1"), ref("c", None)], None)
    assert [r.id for r in first.changed] == ["a", "b", "c"] and first.full and first.deleted == []
    second = diff_listing([ref("a", "1"), ref("b", "2"), ref("c", None), ref("d", "1")], first.state)
    assert [r.id for r in second.changed] == ["b", "c", "d"]  # c has no ETag: always read
    assert not second.full and second.deleted == []
    third = diff_listing([ref("b", "2")], second.state)
    assert third.changed == [] and third.deleted == ["a", "c", "d"] and third.source_ids == {"b"}


def test_sync_answer_parsed_changed_removed_and_token():
    answer = parse_sync(b"""<?xml version="1.0"?><d:multistatus xmlns:d="DAV:">
      <d:response><d:href>/p/cal/a%20b.ics</d:href><d:propstat><d:prop><d:getetag>"7"</d:getetag></d:prop>
      <d:status>HTTP/1.1 200 OK</d:status></d:propstat></d:response>
      <d:response><d:href>/p/cal/gone.ics</d:href><d:status>HTTP/1.1 404 Not Found</d:status></d:response>
      <d:sync-token>tok-2</d:sync-token></d:multistatus>""", connector="caldav", url="http://x/")
    assert answer.token == "tok-2" and answer.removed == ["/p/cal/gone.ics"]
    assert [(r.path, r.text("DAV:", "getetag")) for r in answer.changed] == [("/p/cal/a b.ics", '"7"')]
    with pytest.raises(BadResponse, match="no sync-token"):
        parse_sync(b'<d:multistatus xmlns:d="DAV:"/>', connector="caldav", url="http://x/")


def test_completeness_names_each_miss():
    assert misses({"a", "b"}, {"a": "h1", "b": "h2"}, {"h1", "h2"}) == []
    assert misses({"a", "b", "c"}, {"a": "h1", "b": "h2", "z": "h3"}, {"h1"}) == [
        {"item": "c", "reason": NOT_IN_VAULT}, {"item": "z", "reason": NOT_AT_SOURCE},
        {"item": "b", "reason": CONTENT_MISSING}]
