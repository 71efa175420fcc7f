"""Vault blob stores (local + S3 on a real moto server): dedup, tenant isolation, atomic writes."""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time

import pytest
from prometheus_client import REGISTRY

from services.vault.adapters.blob_store import StoreError, blob_key
from services.vault.adapters.local_store import LocalStore
from services.vault.adapters.metered_store import MeteredBlobStore
from services.vault.adapters.s3_store import S3Store
from services.vault.items import Vault


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def moto_endpoint():
    """A real moto S3 server over HTTP on a free port."""
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 20
    while time.time() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.1)
    else:
        proc.kill()
        pytest.fail("moto server did not start")
    yield f"127.0.0.1:{port}"
    proc.terminate()
    proc.wait(10)


def _make(kind, tmp_path, tenant, request):
    if kind == "local":
        return LocalStore(tmp_path / "vault", tenant)
    endpoint = request.getfixturevalue("moto_endpoint")
    # moto accepts any credentials (a wrong secret works): isolation is asserted on OUR layer.
    return S3Store(endpoint, f"key-{tenant}", f"secret-{tenant}", tenant, secure=False,
                   bucket_prefix=f"t{id(tmp_path) % 100000}-")


@pytest.fixture(params=["local", "s3"])
def kind(request):
    return request.param


@pytest.fixture
def store(kind, tmp_path, request):
    return _make(kind, tmp_path, "ac-a", request)


def test_put_get_dedup(store):
    d1 = store.put(b"cahier de textes")
    d2 = store.put(b"cahier de textes")
    assert d1 == d2 == hashlib.sha256(b"cahier de textes").hexdigest()
    assert store.list_digests() == [d1]
    assert store.get(d1) == b"cahier de textes"


def test_tenant_isolation(kind, tmp_path, request):
    a = _make(kind, tmp_path, "ac-a", request)
    b = _make(kind, tmp_path, "ac-b", request)
    d = a.put(b"secret de A")
    assert not b.exists(d)
    with pytest.raises(StoreError, match="not found for tenant ac-b"):
        b.get(d)


@pytest.mark.parametrize("bad", ["../x", "A", "a/b", ""])
def test_bad_tenant(tmp_path, bad):
    with pytest.raises(StoreError, match="invalid tenant"):
        LocalStore(tmp_path, bad)


def test_s3_bucket_per_tenant_versioned(moto_endpoint, tmp_path, request):
    s = _make("s3", tmp_path, "ac-v", request)
    assert s.bucket.endswith("ac-v")
    assert s._client.get_bucket_versioning(s.bucket).status == "Enabled"


def test_bad_digest_rejected(store):
    with pytest.raises(StoreError, match="invalid sha256"):
        store.get("../../etc/passwd")


def test_partial_write_never_visible(tmp_path, monkeypatch):
    store = LocalStore(tmp_path / "vault", "ac-a")
    data = b"x" * 1000
    digest = hashlib.sha256(data).hexdigest()

    def crash(*a, **k):
        raise OSError("simulated crash before rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        store.put(data)
    monkeypatch.undo()
    assert not store.exists(digest)
    assert not list((store.root / "blobs").rglob(".tmp-*"))
    assert store.put(data) == digest and store.get(digest) == data


def test_corruption_detected(tmp_path):
    store = LocalStore(tmp_path / "vault", "ac-a")
    d = store.put(b"abc")
    (store.root / blob_key(d)).write_bytes(b"abd")
    with pytest.raises(StoreError, match="corrupt"):
        store.get(d)


def test_versions_tombstone_restore(engine, tmp_path):
    v = Vault(engine, LocalStore(tmp_path / "vault", "ac-a"))
    p, item = "J1", "Mes Documents/Élève.txt"
    assert v.put(p, "documents", item, b"v1", {"owner": p, "extensions": {"vendor:x": [1]}}).version == 1
    assert v.put(p, "documents", item, b"v1", {"owner": p, "extensions": {"vendor:x": [1]}}).version == 1
    assert v.put(p, "documents", item, b"v2", {"owner": p}).version == 2
    v.delete(p, "documents", item)
    assert v.current(p) == []
    hist = v.versions(p, "documents", item)
    assert [h.version for h in hist] == [1, 2, 3] and hist[-1].deleted and hist[-1].purge_after
    r = v.restore(p, "documents", item)
    assert r.version == 4 and v.read(r) == b"v2"
    assert [c.item_id for c in v.current(p)] == [item]
    assert hist[0].metadata["extensions"] == {"vendor:x": [1]}
    other = Vault(engine, LocalStore(tmp_path / "vault", "ac-b"))
    assert other.current(p) == [] and other.versions(p, "documents", item) == []


def test_vault_bytes_count_new_content_only(tmp_path):
    store = MeteredBlobStore(LocalStore(tmp_path, "tenant-a"))
    before = REGISTRY.get_sample_value("relais_vault_bytes_stored_total") or 0.0
    digest = store.put(b"x" * 1000)
    store.put(b"x" * 1000)  # the same content again: stored once
    store.put(b"y" * 24)
    assert (REGISTRY.get_sample_value("relais_vault_bytes_stored_total") or 0.0) - before == 1024
    assert store.get(digest) == b"x" * 1000 and store.tenant == "tenant-a"
