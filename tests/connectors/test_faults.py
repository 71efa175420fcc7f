"""Faults between a connector and its peer, against wsgidav behind a fault-injecting middleware:
timeouts, garbage or hostile XML, bodies that do not match their announced checksum, cut-off
bodies, 5xx, a server that is down. Each ends with a retry that gets the right bytes or a clear
error naming the connector, the URL and the item; never a silently wrong item."""
from __future__ import annotations

import base64
import hashlib
import os
import socket
import threading
import time

import pytest

from connectors.sdk import (
    BadResponse,
    ChecksumMismatch,
    ConnectorConfig,
    Item,
    Outcome,
    RetriesExhausted,
    TransientError,
)
from connectors.testing import serve_wsgi, wsgidav_app
from connectors.webdav import WebDavExporter, WebDavImporter

FAST = {"attempts": 3, "base_delay": 0.01, "max_delay": 0.05}


class Faults:
    """WSGI middleware: the next ``times`` requests matching (method, path suffix) get ``action``."""

    def __init__(self, app):
        self.app = app
        self.rules: list[list] = []
        self.hits: dict[str, int] = {}
        self.lock = threading.Lock()

    def add(self, method, suffix, action, times=-1):
        self.rules.append([method, suffix, action, times])

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        with self.lock:
            key = f"{environ['REQUEST_METHOD']} {path}"
            self.hits[key] = self.hits.get(key, 0) + 1
            for rule in self.rules:
                method, suffix, action, times = rule
                if environ["REQUEST_METHOD"] == method and path.endswith(suffix) and times != 0:
                    rule[3] = times - 1
                    break
            else:
                action = None
        if action is None:
            return self.app(environ, start_response)
        return action(self.app, environ, start_response)


def slow(app, environ, start_response):
    time.sleep(1.0)
    return app(environ, start_response)


def garbage(app, environ, start_response):
    start_response("207 Multi-Status", [("Content-Type", "application/xml")])
    return [b"<?xml version='1.0'?>\n<multistatus xmlns='DAV:'>\n<response><href>/x</href>\n<oops"]


def laughs(app, environ, start_response):
    start_response("207 Multi-Status", [("Content-Type", "application/xml")])
    return [b'<?xml version="1.0"?><!DOCTYPE m [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;">]>'
            b'<multistatus xmlns="DAV:"><response><href>/&b;</href></response></multistatus>']


def status(code, headers=()):
    def action(app, environ, start_response):
        start_response(code, [("Content-Length", "0"), *headers])
        return [b""]
    return action


def _body(app, environ):
    captured = {}

    def sr(status_, headers, exc_info=None):
        captured["status"], captured["headers"] = status_, headers

    data = b"".join(app(environ, sr))
    return captured["status"], [(k, v) for k, v in captured["headers"] if k.lower() != "content-length"], data


def corrupt(app, environ, start_response):
    """Announce the true sha256 (Repr-Digest) but flip a byte of what is sent."""
    st, headers, data = _body(app, environ)
    digest = base64.b64encode(hashlib.sha256(data).digest()).decode()
    bad = bytes([data[0] ^ 0xFF]) + data[1:]
    start_response(st, headers + [("Repr-Digest", f"sha-256=:{digest}:"), ("Content-Length", str(len(bad)))])
    return [bad]


def truncate(app, environ, start_response):
    """Announce the full length, send half and hang up."""
    st, headers, data = _body(app, environ)
    start_response(st, headers + [("Content-Length", str(len(data)))])
    return [data[: len(data) // 2]]


@pytest.fixture
def faulty(tmp_path):
    faults = Faults(wsgidav_app(tmp_path / "dav"))
    with serve_wsgi(faults, timeout=2) as url:
        cfg = ConnectorConfig.from_mapping({"url": url + "/", "timeout": 0.3, "connect_timeout": 0.5, "retries": FAST})
        importer, exporter = WebDavImporter(cfg), WebDavExporter(cfg)
        items = [Item.from_bytes("p1", "documents", f"Cours/fiche {n}.txt", f"contenu {n} — é".encode() * 50,
                                 metadata={"media_type": "text/plain"}) for n in range(3)]
        importer.import_items(items, stop_on_error=True)
        yield faults, exporter, importer, items, url
        exporter.close()
        importer.close()


def _ref(exporter, item_id):
    return next(r for r in exporter.iter_refs("p1") if r.id == item_id)


def _fetched_on_second_try(faulty, n: int, fault) -> None:
    """``fault`` on the first GET of fiche ``n``: the fetch retries once and gets the right bytes."""
    faults, exp, _, items, _ = faulty
    faults.add("GET", f"fiche {n}.txt", fault, times=1)
    assert exp.fetch(_ref(exp, f"Cours/fiche {n}.txt")).content.read() == items[n].content.read()
    assert faults.hits[f"GET /p1/Cours/fiche {n}.txt"] == 2


def test_a_timeout_is_retried_and_the_right_bytes_come(faulty):
    _fetched_on_second_try(faulty, 0, slow)


def test_a_server_that_always_times_out_ends_in_a_clear_bounded_error(faulty):
    faults, exp, _, _, url = faulty
    ref = _ref(exp, "Cours/fiche 1.txt")
    faults.add("GET", "fiche 1.txt", slow)
    t0 = time.monotonic()
    with pytest.raises(RetriesExhausted) as info:
        exp.fetch(ref)
    elapsed = time.monotonic() - t0
    msg = str(info.value)
    assert msg.startswith("webdav: ") and "p1:documents/Cours/fiche 1.txt" in msg and url in msg
    assert "3 attempts" in msg and "read timeout" in msg
    assert isinstance(info.value.last, TransientError)
    assert elapsed < 3, f"retries took {elapsed:.1f} s"


def test_garbage_xml_is_a_clear_error(faulty):
    faults, exp, _, _, url = faulty
    faults.add("PROPFIND", "/p1/", garbage)
    with pytest.raises(BadResponse) as info:
        list(exp.iter_refs("p1"))
    assert faults.hits["PROPFIND /p1/"] == 1  # a malformed answer is not asked again
    msg = str(info.value)
    assert "webdav" in msg and "not well-formed XML at line" in msg and f"{url}/p1/" in msg


def test_xml_declaring_entities_is_refused_unread(faulty):
    faults, exp, _, _, _ = faulty
    faults.add("PROPFIND", "/p1/", laughs)
    with pytest.raises(BadResponse, match="declares a DTD or an entity"):
        list(exp.iter_refs("p1"))


def test_a_body_that_does_not_match_its_checksum_is_never_taken(faulty):
    faults, exp, _, items, url = faulty
    ref = _ref(exp, "Cours/fiche 2.txt")
    faults.add("GET", "fiche 2.txt", corrupt)
    with pytest.raises(RetriesExhausted) as info:
        exp.fetch(ref)
    last = info.value.last
    assert isinstance(last, ChecksumMismatch)
    assert last.expected == items[2].sha256 and last.actual != items[2].sha256
    msg = str(info.value)
    assert "announced sha256" in msg and "p1:documents/Cours/fiche 2.txt" in msg and url in msg


def test_a_corrupt_body_once_is_downloaded_again(faulty):
    faults, exp, _, items, _ = faulty
    ref = _ref(exp, "Cours/fiche 2.txt")
    faults.add("GET", "fiche 2.txt", corrupt, times=1)
    item = exp.fetch(ref)
    assert item.content.read() == items[2].content.read() and item.sha256 == items[2].sha256
    assert faults.hits["GET /p1/Cours/fiche 2.txt"] == 2


def test_a_checksum_recorded_at_import_catches_a_file_changed_behind_its_back(faulty, tmp_path):
    """Relais recorded the sha256 with the ETag; a byte flipped on disk (same size, same second)
    keeps the ETag of some servers: the export sees the mismatch rather than a wrong item."""
    faults, exp, _, items, _ = faulty
    path = tmp_path / "dav" / "p1" / "Cours" / "fiche 0.txt"
    stat = path.stat()
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    ref = _ref(exp, "Cours/fiche 0.txt")
    assert ref.sha256 == items[0].sha256  # the ETag did not move, so the recorded sha256 is announced
    with pytest.raises(RetriesExhausted) as info:
        exp.fetch(ref)
    assert isinstance(info.value.last, ChecksumMismatch)


def test_a_cut_off_body_is_retried(faulty):
    _fetched_on_second_try(faulty, 1, truncate)


def test_5xx_is_retried_then_reported(faulty):
    faults, exp, _, items, _ = faulty
    ref = _ref(exp, "Cours/fiche 0.txt")
    faults.add("GET", "fiche 0.txt", status("503 Service Unavailable", [("Retry-After", "0")]), times=2)
    assert exp.fetch(ref).sha256 == items[0].sha256
    faults.add("GET", "fiche 0.txt", status("500 Internal Server Error"))
    with pytest.raises(RetriesExhausted, match="HTTP 500"):
        exp.fetch(ref)
    assert faults.hits["GET /p1/Cours/fiche 0.txt"] == 3 + 3


def test_one_failing_item_does_not_stop_the_others(faulty):
    faults, exp, _, items, _ = faulty
    faults.add("GET", "fiche 1.txt", status("500 Internal Server Error"))
    results = {r.ref.id: r for r in exp.fetch_many(exp.iter_refs("p1"), workers=3)}
    assert results["Cours/fiche 1.txt"].item is None and "HTTP 500" in str(results["Cours/fiche 1.txt"].error)
    for n in (0, 2):
        assert results[f"Cours/fiche {n}.txt"].item.sha256 == items[n].sha256


def test_import_failures_are_reported_and_the_rest_goes_in(faulty):
    faults, _, imp, _, _ = faulty
    faults.add("PUT", "refus.txt", status("507 Insufficient Storage"))
    batch = [Item.from_bytes("p2", "documents", "refus.txt", b"x"), Item.from_bytes("p2", "documents", "ok.txt", b"y")]
    report = imp.import_items(batch)
    assert (report.created, report.failed) == (1, 1)
    assert report.failures[0]["item"] == "p2:documents/refus.txt" and "HTTP 507" in report.failures[0]["error"]
    assert imp.put(batch[1]) == Outcome.UNCHANGED


def test_a_server_that_is_down_is_named():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = ConnectorConfig.from_mapping({"url": f"http://127.0.0.1:{port}/dav/", "connect_timeout": 0.3,
                                        "retries": FAST})
    with pytest.raises(RetriesExhausted) as info:
        list(WebDavExporter(cfg).iter_owners())
    msg = str(info.value)
    assert f"127.0.0.1:{port}/dav/" in msg and "connection failed" in msg and "3 attempts" in msg
