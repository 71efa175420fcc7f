"""Vault rights: erasure (shared blobs kept, every S3 version removed, audit event), retention and
purge, the access log; the guard between blob deletion and writers; the 0011 migration."""
from __future__ import annotations

import hashlib
import io
import json
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from click.testing import CliRunner
from sqlalchemy import select, text

from app.cli import main
from relais.bus import contracts
from relais.bus.envelope import loads
from relais.bus.tables import outbox
from relais.config import Settings
from relais.db import alembic_config, make_engine, upgrade, writer
from services.vault import rights
from services.vault.adapters import index
from services.vault.adapters.blob_store import StoreError, blob_key
from services.vault.adapters.local_store import LocalStore
from services.vault.adapters.s3_store import S3Store
from services.vault.items import Vault

TENANT = "test"


def outbox_events(engine, type_: str) -> list[dict]:
    with engine.connect() as conn:
        return [loads(body) for body, in conn.execute(select(outbox.c.body).where(outbox.c.type == type_))]


def fill(vault: Vault) -> dict[str, str]:
    """J1 with unique, shared and deleted items, read once by an auditor; J2 sharing one file."""
    d = {}
    d["unique"] = vault.put("J1", "documents", "Cours/Lettre à Mme Dupont.pdf", b"unique to J1").content_sha256
    d["shared"] = vault.put("J1", "documents", "Cours/programme.pdf", b"school programme").content_sha256
    vault.put("J2", "documents", "programme.pdf", b"school programme")
    d["old"] = vault.put("J1", "calendars", "perso.ics", b"BEGIN:VCALENDAR v1").content_sha256
    d["new"] = vault.put("J1", "calendars", "perso.ics", b"BEGIN:VCALENDAR v2").content_sha256
    vault.put("J1", "contacts", "amis.vcf", b"BEGIN:VCARD")
    d["card"] = hashlib.sha256(b"BEGIN:VCARD").hexdigest()
    vault.delete("J1", "contacts", "amis.vcf")
    vault.read(vault.version("J1", "documents", "Cours/Lettre à Mme Dupont.pdf"))
    return d


def test_erasure_keeps_shared_blobs_and_publishes_an_audit_event(engine, tmp_path):
    store = LocalStore(tmp_path / "vault", TENANT)
    vault = Vault(engine, store, actor="auditor-7")
    d = fill(vault)
    report = rights.erase_person(vault, "J1", actor="dpo:ticket-42")
    assert (report.items, report.versions, report.blobs_deleted, report.blobs_kept) == (4, 6, 4, 1)
    assert report.bytes_deleted == sum(len(b) for b in (b"unique to J1", b"BEGIN:VCALENDAR v1",
                                                        b"BEGIN:VCALENDAR v2", b"BEGIN:VCARD"))
    for key in ("unique", "old", "new", "card"):
        assert not store.exists(d[key]), key
    assert store.exists(d["shared"])
    assert vault.read(vault.version("J2", "documents", "programme.pdf")) == b"school programme"
    with engine.connect() as conn:
        assert index.person_rows(conn, TENANT, "J1") == []
    (event,) = outbox_events(engine, "vault.person.erased")
    contracts.validate_event(event)
    assert event["payload"] == {"person": "J1", "actor": "dpo:ticket-42", "versions": 6, "items": 4,
                                "blobs_deleted": 4, "blobs_kept": 1, "bytes_deleted": report.bytes_deleted}
    assert event["id"] == report.event_id and "Dupont" not in json.dumps(event)
    # The access log still says who read J1's data and when, but no longer what (a file name).
    (entry,) = rights.access_log(vault, "J1")
    assert (entry["actor"], entry["action"], entry["vertical"], entry["item"]) == (
        "auditor-7", "read", "documents", None)
    again = rights.erase_person(vault, "J1", actor="dpo:ticket-42")
    assert (again.versions, again.blobs_deleted) == (0, 0)
    with pytest.raises(ValueError, match="say who orders"):
        rights.erase_person(vault, "J2", actor=" ")


class FailingDeletes(LocalStore):
    """A local store whose deletes fail after `allowed` of them: the object store going away mid-erasure."""

    allowed = 1

    def delete(self, digest: str) -> bool:
        if self.allowed <= 0:
            raise StoreError(f"object store unreachable while deleting blob {digest}")
        self.allowed -= 1
        return super().delete(digest)


def test_an_erasure_interrupted_by_the_store_is_finished_by_running_it_again(sqlite_engine, tmp_path):
    store = FailingDeletes(tmp_path / "vault", TENANT)
    vault = Vault(sqlite_engine, store)
    fill(vault)
    with pytest.raises(StoreError):
        rights.erase_person(vault, "J1", actor="dpo")
    with sqlite_engine.connect() as conn:
        assert len(index.person_rows(conn, TENANT, "J1")) == 6  # nothing of the index deleted
    assert outbox_events(sqlite_engine, "vault.person.erased") == []
    store.allowed = 100
    report = rights.erase_person(vault, "J1", actor="dpo")
    assert report.versions == 6 and report.blobs_deleted == 4  # the one already gone counts, missing or not
    assert sorted(store.list_digests()) == [hashlib.sha256(b"school programme").hexdigest()]


def test_erasure_removes_every_version_of_a_blob_on_a_versioned_bucket(moto_s3, sqlite_engine):
    store = S3Store(moto_s3.endpoint, "ak", "sk", TENANT, secure=False, bucket_prefix="erase-")
    vault = Vault(sqlite_engine, store)
    digest = vault.put("J1", "messages", "m1/message.json", b'{"subject": "rendez-vous"}').content_sha256
    key = blob_key(digest)
    # A second stored version of the same key (a re-upload): a plain DELETE would leave it behind.
    store._client.put_object(store.bucket, key, io.BytesIO(b'{"subject": "rendez-vous"}'), 26)
    assert len(list(store._client.list_objects(store.bucket, prefix=key, include_version=True))) == 2
    assert rights.erase_person(vault, "J1", actor="dpo").blobs_deleted == 1
    assert list(store._client.list_objects(store.bucket, prefix=key, include_version=True)) == []
    assert not store.exists(digest)


def test_retention_policy_and_purge(engine, tmp_path):
    store = LocalStore(tmp_path / "vault", TENANT)
    vault = Vault(engine, store, retention=timedelta(days=90))
    fill(vault)
    vault.put("J2", "homework", "hw1", b"devoir")
    vault.delete("J2", "homework", "hw1")
    vault.put("J2", "blogs", "b1/index.html", b"<p>school programme</p>")
    vault.delete("J2", "blogs", "b1/index.html")
    vault.restore("J2", "blogs", "b1/index.html")  # restored: its old tombstone must not purge it
    assert rights.retention_days(vault) == (90, False)
    now = datetime.now(UTC)
    assert rights.purge_expired(vault, now=now + timedelta(days=30)).items == 0
    assert rights.set_retention(vault, 20, by="admin") == 3  # every tombstone rescheduled
    assert rights.retention_days(vault) == (20, True)
    later = now + timedelta(days=21)
    assert vault.status()["totals"]["tombstones"] == 2
    dry = rights.purge_expired(vault, now=later, dry_run=True)
    assert (dry.items, dry.versions, dry.blobs_deleted) == (2, 4, 2)
    assert len(vault.versions("J1", "contacts", "amis.vcf")) == 2  # a dry run changes nothing
    seen = []
    done = rights.purge_expired(vault, now=later, batch=1, progress=seen.append)
    assert (done.items, done.versions, done.blobs_deleted) == (2, 4, 2) and len(seen) == 2
    assert vault.versions("J1", "contacts", "amis.vcf") == [] and vault.versions("J2", "homework", "hw1") == []
    assert not store.exists(hashlib.sha256(b"BEGIN:VCARD").hexdigest())
    assert vault.read(vault.version("J2", "blogs", "b1/index.html")) == b"<p>school programme</p>"
    status = vault.status()
    assert status["totals"]["tombstones"] == 0 and status["retention"] == {"days": 20, "policy": "tenant"}
    assert status["verticals"]["documents"] == {"items": 3, "tombstones": 0, "tombstones_expired": 0,
                                                "bytes": 12 + 16 + 16, "versions": 3}
    assert rights.purge_expired(vault, now=later).items == 0


def test_access_log_records_who_read_what(sqlite_engine, tmp_path):
    store = LocalStore(tmp_path / "vault", TENANT)
    writer_ = Vault(sqlite_engine, store, actor="connector")
    writer_.put("J1", "documents", "a.txt", b"a")
    auditor = Vault(sqlite_engine, store, actor="rpc:helpdesk-3")
    auditor.read(auditor.version("J1", "documents", "a.txt"))
    auditor.versions("J1", "documents", "a.txt")
    log = rights.access_log(auditor, "J1")
    assert [(r["actor"], r["action"], r["item"], r["version"]) for r in log] == [
        ("rpc:helpdesk-3", "versions", "a.txt", 1), ("rpc:helpdesk-3", "read", "a.txt", 1)]
    assert rights.access_log(auditor, "J2") == []
    other_tenant = Vault(sqlite_engine, LocalStore(tmp_path / "vault", "other"))
    with pytest.raises(PermissionError):
        other_tenant.read(auditor.version("J1", "documents", "a.txt"))


def test_rights_from_the_command_line(settings_env, tmp_path):
    engine = make_engine(Settings.from_env().database_url)
    upgrade(engine)
    store = LocalStore(tmp_path / "var" / "vault", TENANT)
    vault = Vault(engine, store, actor="connector")
    vault.put("J1", "documents", "note.txt", b"note")
    vault.put("J1", "contacts", "c.vcf", b"BEGIN:VCARD")
    vault.delete("J1", "contacts", "c.vcf")
    runner = CliRunner()

    res = runner.invoke(main, ["vault", "get", "--person", "J1", "--vertical", "documents", "--item", "note.txt",
                               "--actor", "helpdesk-1"])
    assert res.exit_code == 0 and res.output == "note"
    res = runner.invoke(main, ["vault", "access-log", "--person", "J1", "--json"])
    assert [(r["actor"], r["action"], r["item"]) for r in json.loads(res.stdout)] == [
        ("helpdesk-1", "read", "note.txt")]
    res = runner.invoke(main, ["vault", "access-log", "--person", "J1"])
    assert "helpdesk-1  read  documents note.txt v1" in res.output

    res = runner.invoke(main, ["vault", "retention", "--days", "0"])
    assert res.exit_code == 2 and "--days needs --by" in res.output
    res = runner.invoke(main, ["vault", "retention", "--days", "0", "--by", "admin", "--json"])
    assert json.loads(res.stdout) == {"tenant": TENANT, "days": 0, "policy": "tenant", "tombstones_rescheduled": 1}
    res = runner.invoke(main, ["vault", "purge", "--dry-run", "--json"])
    assert json.loads(res.stdout) == {"items": 1, "versions": 2, "blobs_deleted": 1, "bytes_deleted": 11,
                                      "dry_run": True}
    res = runner.invoke(main, ["vault", "purge"])
    assert res.exit_code == 0 and "purged 1 item(s) past retention: 2 version(s), 1 blob(s)" in res.output

    res = runner.invoke(main, ["vault", "erase", "--person", "J1", "--by", "dpo"])
    assert res.exit_code == 2 and "add --yes" in res.output and vault.current("J1")
    res = runner.invoke(main, ["vault", "erase", "--person", "J1", "--by", "dpo", "--yes", "--json"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert (result["versions"], result["blobs_deleted"], result["events_published"]) == (1, 1, 1)
    assert vault.current("J1") == [] and store.list_digests() == []


def test_a_blob_deleted_between_a_put_and_its_row_is_stored_again(sqlite_engine, tmp_path):
    """Vault.put uploads outside its transaction; an erasure in between removes the blob it relies on
    (the only other reference was the erased person's); the blob epoch makes the put store it again."""
    class EraseDuringUpload(LocalStore):
        hook = None

        def put(self, data: bytes) -> str:
            digest = super().put(data)
            if self.hook:
                hook, self.hook = self.hook, None
                hook()
            return digest

    store = EraseDuringUpload(tmp_path / "vault", TENANT)
    vault = Vault(sqlite_engine, store)
    vault.put("J2", "documents", "shared.pdf", b"same file")
    store.hook = lambda: rights.erase_person(vault, "J2", actor="dpo")
    v = vault.put("J1", "documents", "shared.pdf", b"same file")
    assert vault.read(v) == b"same file"


@pytest.mark.postgres
def test_erasure_waits_for_a_writer_holding_the_blob_guard(pg_engine, tmp_path):
    store = LocalStore(tmp_path / "vault", TENANT)
    vault = Vault(pg_engine, store)
    vault.put("J2", "documents", "x", b"x")
    done = threading.Event()
    with writer(pg_engine).begin() as conn:
        index.guard_blobs(conn, TENANT)  # a handler between storing a blob and committing its row
        eraser = threading.Thread(target=lambda: (rights.erase_person(vault, "J2", actor="dpo"), done.set()))
        eraser.start()
        time.sleep(0.5)
        assert not done.is_set()
    eraser.join(10)
    assert done.is_set() and vault.current("J2") == []


def test_migration_keeps_vault_rows(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    cfg = alembic_config(engine.url.render_as_string(hide_password=False))
    with writer(engine).begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007_vault")
        conn.execute(text("INSERT INTO vault_item_version (tenant, person, vertical, item_id, version, content_sha256, "
                          "metadata, created_at) VALUES ('test', 'J1', 'documents', 'a.txt', 1, :d, '{}', "
                          "'2025-01-01 00:00:00')"), {"d": hashlib.sha256(b"a").hexdigest()})
    upgrade(engine)
    store = LocalStore(tmp_path / "vault", TENANT)
    store.put(b"a")
    vault = Vault(engine, store)
    (old,) = vault.versions("J1", "documents", "a.txt")
    assert (old.version, old.size, old.path, old.changed_at) == (1, None, None, None)
    assert vault.put("J1", "documents", "a.txt", b"b").version == 2
    assert vault.status()["verticals"]["documents"]["versions"] == 2
