"""Vault continuous mode: ent.item.* contracts, the handler behind the real bus consumer, restore,
settings (S3 with SSE on a moto server), the object store and the broker going away mid-stream."""
from __future__ import annotations

import copy
import hashlib
import json
import subprocess
import threading
import time
import urllib.parse
from datetime import UTC, datetime, timedelta

import amqp
import pytest
from click.testing import CliRunner
from sqlalchemy import func, select

from app.cli import main
from relais.bus import contracts
from relais.bus.consumer import EventConsumer
from relais.bus.publisher import ConfirmedPublisher, OutgoingMessage
from relais.bus.tables import processed_events
from relais.config import Settings, parse_amqp_uri
from relais.db import make_engine, upgrade
from services.vault import rights
from services.vault.adapters.blob_store import StoreError
from services.vault.adapters.local_store import LocalStore
from services.vault.adapters.s3_store import S3Store
from services.vault.adapters.tables import vault_item_version
from services.vault.continuous.events import INLINE_MAX, ItemEventError, item_changed, item_deleted, parse
from services.vault.continuous.handler import CONSUMER, ItemEvents
from services.vault.items import Vault
from services.vault.settings import VaultConfigError, VaultSettings
from tests.conftest import MotoServer
from tests.ops_helpers import RELAIS, Service, close_connections

TENANT = "test"
SECRET_NAME = "Lettre à Mme Dupont.pdf"  # an item id that is personal: never in an error message


def changed(data: bytes, item: str = "agenda/cours.ics", person: str = "J1", vertical: str = "calendars",
            store=None, **kw):
    return item_changed(tenant=TENANT, source="connector.test", person=person, vertical=vertical, item=item,
                        data=data, store=store, **kw)


def deleted(item: str = "agenda/cours.ics", person: str = "J1", vertical: str = "calendars", **kw):
    return item_deleted(tenant=TENANT, source="connector.test", person=person, vertical=vertical, item=item, **kw)


def consumer(engine, store) -> EventConsumer:
    return EventConsumer(CONSUMER, list(contracts.subscriptions()[CONSUMER]), ItemEvents(store), engine)


def rows(engine, **where):
    t = vault_item_version
    with engine.connect() as conn:
        return conn.execute(select(t).where(*(t.c[k] == v for k, v in where.items())).order_by(t.c.version)).all()


# -- contracts ---------------------------------------------------------------------------------


def test_the_vault_consumes_its_queue_as_the_contracts_say():
    assert contracts.subscriptions()[CONSUMER] == ("ent.item.changed", "ent.item.deleted")
    assert {"ent.item.changed", "ent.item.deleted", "vault.person.erased"} <= contracts.known_types()


def _schema_accepts(event) -> bool:
    try:
        contracts.validate_event(event)
        return True
    except contracts.ContractError:
        return False


def _parse_accepts(event) -> bool:
    try:
        parse(event)
        return True
    except ItemEventError:
        return False


def test_parse_accepts_what_the_schemas_accept_and_names_fields_not_values():
    good = changed(b"BEGIN:VCALENDAR", item=SECRET_NAME, path="Mes documents/" + SECRET_NAME,
                   metadata={"owner": "J1", "extensions": {"vendor:x": [1]}}).to_dict()
    stored = copy.deepcopy(good)
    stored["payload"]["content"] = {"mode": "stored"}
    gone = deleted(item=SECRET_NAME).to_dict()
    cases = [good, stored, gone, {**gone, "payload": {**gone["payload"], "path": None}}]

    def variant(base, path, value):
        ev = copy.deepcopy(base)
        node = ev
        for key in path[:-1]:
            node = node[key]
        if value is KeyError:
            del node[path[-1]]
        else:
            node[path[-1]] = value
        return ev

    for base in (good, gone):
        for key in ("person", "vertical", "item"):
            cases += [variant(base, ("payload", key), KeyError), variant(base, ("payload", key), ""),
                      variant(base, ("payload", key), 7)]
        cases += [variant(base, ("payload", "extra"), 1), variant(base, ("payload", "vertical"), "photos"),
                  variant(base, ("payload", "path"), 3), variant(base, ("payload", "path"), "x" * 1025),
                  variant(base, ("payload", "person"), "p" * 65), variant(base, ("version",), 2)]
    cases += [variant(good, ("payload", k), KeyError) for k in ("metadata", "sha256", "size", "content")]
    cases += [variant(good, ("payload", "sha256"), "ABC"), variant(good, ("payload", "sha256"), "0" * 63),
              variant(good, ("payload", "size"), -1), variant(good, ("payload", "size"), 1.5),
              variant(good, ("payload", "size"), True), variant(good, ("payload", "metadata"), []),
              variant(good, ("payload", "content"), {"mode": "url", "url": "http://x"}),
              variant(good, ("payload", "content"), {"mode": "stored", "data": "AA=="}),
              variant(good, ("payload", "content"), {"mode": "inline"}),
              variant(good, ("payload", "content", "data"), "not base64!"),
              variant(good, ("payload", "content", "data"), "A" * (4 * ((INLINE_MAX + 2) // 3) + 4))]
    for case in cases:
        assert _schema_accepts(case) == _parse_accepts(case), json.dumps(case)[:300]
    assert sum(map(_schema_accepts, cases)) == 4

    # What a schema cannot check, parse refuses: content that does not match, unsafe ids.
    mismatch = variant(good, ("payload", "sha256"), "0" * 64)
    short = variant(good, ("payload", "size"), 3)
    unsafe = [variant(base, ("payload", "item"), bad) for base in (good, gone) for bad in ("../etc", "/abs", "a//b")]
    padding = variant(good, ("payload", "content", "data"), "QUJD=")
    for case in [mismatch, short, padding, *unsafe]:
        assert _schema_accepts(case), json.dumps(case)[:300]
        with pytest.raises(ItemEventError) as err:
            parse(case)
        assert SECRET_NAME not in str(err.value) and "Mes documents" not in str(err.value)
    with pytest.raises(ItemEventError, match="payload/sha256"):
        parse(mismatch)
    with pytest.raises(ItemEventError, match="holds 15 bytes, payload/size says 3"):
        parse(short)


def test_events_are_built_inline_or_stored_by_size(tmp_path):
    store = LocalStore(tmp_path / "vault", TENANT)
    small = changed(b"x" * INLINE_MAX)
    assert small.payload["content"]["mode"] == "inline" and parse(small.to_dict()).data == b"x" * INLINE_MAX
    big = b"y" * (INLINE_MAX + 1)
    ev = changed(big, vertical="documents", item="Cours/big.pdf", store=store)
    assert ev.payload["content"] == {"mode": "stored"} and ev.payload["size"] == len(big)
    assert store.get(ev.payload["sha256"]) == big
    with pytest.raises(ValueError, match="give the tenant's vault store"):
        changed(big, vertical="documents")
    with pytest.raises(ValueError, match="tenant 'other'"):
        changed(big, vertical="documents", store=LocalStore(tmp_path / "vault", "other"))
    with pytest.raises(ValueError, match="unsafe item id"):
        changed(b"x", item="../x")
    when = datetime(2026, 3, 1, 8, 0, tzinfo=UTC)
    assert deleted(changed_at=when).occurred_at == "2026-03-01T08:00:00.000000Z"


# -- the handler behind the bus consumer, on SQLite and PostgreSQL -----------------------------


def test_changes_versions_tombstones_and_restore(engine, tmp_path):
    store = LocalStore(tmp_path / "vault", TENANT)
    c = consumer(engine, store)
    t0 = datetime.now(UTC) - timedelta(hours=1)
    first = changed(b"v1", metadata={"owner": "J1"}, changed_at=t0)
    assert c.handle(first.to_json()).status == "handled"
    assert c.handle(first.to_json()).status == "duplicate"  # the bus redelivers: the consumer skips it
    # The same change again under another event id (a connector re-sending): no new version.
    assert c.handle(changed(b"v1", metadata={"owner": "J1"}, changed_at=t0).to_json()).status == "handled"
    assert [r.version for r in rows(engine)] == [1]
    c.handle(changed(b"v2", metadata={"owner": "J1"}, changed_at=t0 + timedelta(minutes=1)).to_json())
    c.handle(changed(b"v2", metadata={"owner": "J1", "shared": ["J2"]}, changed_at=t0 + timedelta(minutes=2)).to_json())
    c.handle(changed(b"v2", metadata={"owner": "J1", "shared": ["J2"]}, path="Agenda/Cours.ics",
                     changed_at=t0 + timedelta(minutes=3)).to_json())
    # An older change arriving late (a retry overtaken by newer ones) does not bring old content back.
    c.handle(changed(b"v0", changed_at=t0 - timedelta(minutes=5)).to_json())
    history = rows(engine)
    assert [r.version for r in history] == [1, 2, 3, 4]
    assert history[-1].path == "Agenda/Cours.ics" and history[-1].size == 2
    assert history[-1].content_sha256 == hashlib.sha256(b"v2").hexdigest()

    vault = Vault(engine, store, actor="test")
    rights.set_retention(vault, 30, by="test")
    c.handle(deleted(changed_at=t0 + timedelta(minutes=10)).to_json())
    c.handle(deleted(changed_at=t0 + timedelta(minutes=11)).to_json())  # deleted again: nothing new
    history = vault.versions("J1", "calendars", "agenda/cours.ics")
    assert [v.version for v in history] == [1, 2, 3, 4, 5] and history[-1].deleted
    assert history[-1].path == "Agenda/Cours.ics"  # the tombstone says what was deleted
    expected = datetime.now(UTC) + timedelta(days=30)
    assert abs((history[-1].purge_after - expected).total_seconds()) < 60
    assert vault.current("J1") == []

    restored = vault.restore("J1", "calendars", "agenda/cours.ics")
    assert restored.version == 6 and vault.read(restored) == b"v2" and restored.metadata["shared"] == ["J2"]
    assert vault.restore("J1", "calendars", "agenda/cours.ics").version == 6  # live already: nothing to do
    # After a restore, the ENT's next change still applies; an old one replayed does not.
    c.handle(changed(b"v0", changed_at=t0).to_json())
    assert vault.version("J1", "calendars", "agenda/cours.ics").version == 6
    c.handle(changed(b"v3", changed_at=datetime.now(UTC)).to_json())
    assert vault.read(vault.version("J1", "calendars", "agenda/cours.ics")) == b"v3"
    assert vault.read(vault.restore("J1", "calendars", "agenda/cours.ics", version=1)) == b"v1"  # roll back


def test_a_deletion_overtaking_its_change_keeps_the_item_deleted(engine, tmp_path):
    c = consumer(engine, LocalStore(tmp_path / "vault", TENANT))
    t0 = datetime.now(UTC)
    c.handle(deleted(item="c1", vertical="contacts", changed_at=t0).to_json())
    c.handle(changed(b"BEGIN:VCARD", item="c1", vertical="contacts", changed_at=t0 - timedelta(seconds=1)).to_json())
    assert [r.content_sha256 for r in rows(engine)] == [None]


def test_stored_content_must_be_in_the_store_with_its_size(engine, tmp_path):
    store = LocalStore(tmp_path / "vault", TENANT)
    c = consumer(engine, store)
    big = b"%PDF" + b"z" * INLINE_MAX
    ev = changed(big, vertical="documents", item=SECRET_NAME, store=store)
    store.delete(ev.payload["sha256"])  # the connector's upload did not happen
    outcome = c.handle(ev.to_json())
    assert outcome.status == "retry"
    assert "is not in tenant test's vault store" in outcome.reason and SECRET_NAME not in outcome.reason
    assert rows(engine) == []
    with engine.connect() as conn:  # the event is not marked handled: its retry will be applied
        assert conn.execute(select(func.count()).select_from(processed_events)).scalar_one() == 0
    store.put(big)
    assert c.handle(ev.to_json(), attempts_so_far=1).status == "handled"
    assert rows(engine)[0].size == len(big)

    lying = changed(big + b"!", vertical="documents", item="x.pdf", store=store).to_dict()
    lying["payload"]["size"] = len(big)
    outcome = c.handle(json.dumps(lying).encode())
    assert outcome.status == "retry" and "in the store is" in outcome.reason


def test_bad_events_are_retried_then_dead_lettered_naming_the_field(engine, tmp_path):
    c = consumer(engine, LocalStore(tmp_path / "vault", TENANT))
    bad = changed(b"hello", item=SECRET_NAME).to_dict()
    bad["payload"]["sha256"] = hashlib.sha256(b"other").hexdigest()
    body = json.dumps(bad).encode()
    outcomes = [c.handle(body, attempts) for attempts in range(4)]
    assert [o.status for o in outcomes] == ["retry", "retry", "retry", "dead"]
    assert "payload/sha256" in outcomes[-1].reason and SECRET_NAME not in outcomes[-1].reason
    foreign = item_changed(tenant="elsewhere", source="c", person="J1", vertical="contacts", item="c", data=b"x")
    assert "this vault serves 'test'" in c.handle(foreign.to_json()).reason
    assert c.handle(b"not json").status == "dead"
    assert rows(engine) == []


def test_restore_and_versions_from_the_command_line(settings_env, tmp_path):
    runner = CliRunner()
    settings = Settings.from_env()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    store = VaultSettings.from_env().open_store(TENANT)
    c = consumer(engine, store)
    t0 = datetime.now(UTC) - timedelta(minutes=5)
    c.handle(changed(b"devoir v1", vertical="homework", item="hw-1", changed_at=t0).to_json())
    c.handle(deleted(vertical="homework", item="hw-1", changed_at=t0 + timedelta(minutes=1)).to_json())
    args = ["--person", "J1", "--vertical", "homework", "--item", "hw-1"]

    res = runner.invoke(main, ["vault", "get", *args])
    assert res.exit_code == 1 and "no live homework item" in res.output
    res = runner.invoke(main, ["vault", "versions", *args, "--json", "--actor", "dpo-1"])
    assert res.exit_code == 0, res.output
    assert [(v["version"], v["deleted"]) for v in json.loads(res.stdout)] == [(1, False), (2, True)]
    res = runner.invoke(main, ["vault", "restore", *args, "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["restored"] is True and json.loads(res.stdout)["version"]["version"] == 3
    res = runner.invoke(main, ["vault", "restore", *args])
    assert res.exit_code == 0 and "already live at version 3" in res.output
    out = tmp_path / "hw.txt"
    res = runner.invoke(main, ["vault", "get", *args, "--out", str(out), "--actor", "dpo-1"])
    assert res.exit_code == 0 and out.read_bytes() == b"devoir v1"
    res = runner.invoke(main, ["vault", "restore", "--person", "J1", "--vertical", "homework", "--item", "nope"])
    assert res.exit_code == 1 and "nothing to restore" in res.output
    res = runner.invoke(main, ["vault", "status", "--json"])
    report = json.loads(res.stdout)
    assert report["verticals"]["homework"] == {"items": 1, "tombstones": 0, "tombstones_expired": 0,
                                               "bytes": 9, "versions": 3}
    assert report["store"] == {"kind": "local", "root": str(tmp_path / "var" / "vault")}
    res = runner.invoke(main, ["vault", "status"])
    assert res.exit_code == 0 and "homework" in res.output and "retention of tombstones: 90 day(s)" in res.output


# -- settings -------------------------------------------------------------------------------------


def test_settings_from_the_environment(tmp_path):
    env = {"RELAIS_DATA_DIR": str(tmp_path)}
    assert VaultSettings.from_env(env).store_target == str(tmp_path / "vault")
    s3 = {**env, "RELAIS_VAULT_S3_ENDPOINT": "https://minio.example:9000", "RELAIS_VAULT_S3_ACCESS_KEY": "ak",
          "RELAIS_VAULT_S3_SECRET_KEY": "very-secret", "RELAIS_VAULT_S3_SSE": "on"}
    settings = VaultSettings.from_env(s3)
    assert (settings.s3.endpoint, settings.s3.secure, settings.s3.sse) == ("minio.example:9000", True, True)
    assert "very-secret" not in repr(settings) and "very-secret" not in json.dumps(settings.describe())
    for change, message in [({"RELAIS_VAULT_S3_SECRET_KEY": ""}, "RELAIS_VAULT_S3_SECRET_KEY is not"),
                            ({"RELAIS_VAULT_S3_ENDPOINT": "minio:9000"}, "expected an http:// or https:// URL"),
                            ({"RELAIS_VAULT_S3_SSE": "aes"}, "expected on or off"),
                            ({"RELAIS_VAULT_RETENTION_DAYS": "-1"}, "at least 0"),
                            ({"RELAIS_VAULT_PURGE_INTERVAL": "hourly"}, "whole number")]:
        with pytest.raises(VaultConfigError, match=message):
            VaultSettings.from_env({**s3, **change})
    res = CliRunner().invoke(main, ["config"], env={**s3, "RELAIS_VAULT_S3_SSE": "off"})
    assert json.loads(res.stdout)["vault"]["store"] == {
        "kind": "s3", "endpoint": "https://minio.example:9000", "access_key": "ak", "sse": "off",
        "bucket_prefix": "relais-vault-"}
    assert "very-secret" not in res.output


def test_s3_store_with_sse_from_settings(moto_s3, tmp_path):
    env = {"RELAIS_DATA_DIR": str(tmp_path), "RELAIS_VAULT_S3_ENDPOINT": f"http://{moto_s3.endpoint}",
           "RELAIS_VAULT_S3_ACCESS_KEY": "ak", "RELAIS_VAULT_S3_SECRET_KEY": "sk", "RELAIS_VAULT_S3_SSE": "on",
           "RELAIS_VAULT_S3_BUCKET_PREFIX": "sse-"}
    store = VaultSettings.from_env(env).open_store(TENANT)
    digest = store.put(b"agenda chiffr\xc3\xa9")
    client = store._client
    assert client.stat_object(store.bucket, f"blobs/sha256/{digest[:2]}/{digest}").metadata[
        "x-amz-server-side-encryption"] == "AES256"
    assert client.get_bucket_encryption(store.bucket).rule.sse_algorithm == "AES256"
    assert store.get(digest) == b"agenda chiffr\xc3\xa9"
    plain = VaultSettings.from_env({**env, "RELAIS_VAULT_S3_SSE": "off",
                                    "RELAIS_VAULT_S3_BUCKET_PREFIX": "plain-"}).open_store(TENANT)
    d2 = plain.put(b"clair")
    assert "x-amz-server-side-encryption" not in plain._client.stat_object(
        plain.bucket, f"blobs/sha256/{d2[:2]}/{d2}").metadata
    with pytest.raises(StoreError, match="not a valid S3 bucket name"):
        VaultSettings.from_env({**env, "RELAIS_VAULT_S3_BUCKET_PREFIX": "x" * 60 + "-"}).open_store(TENANT)


# -- faults ---------------------------------------------------------------------------------------


def test_object_store_restarting_mid_stream(sqlite_engine):
    """moto killed mid-upload and while an event is handled: clear errors, nothing indexed;
    restarted: the retry succeeds."""
    server = MotoServer().start()
    try:
        store = S3Store(server.endpoint, "ak", "sk", TENANT, secure=False, bucket_prefix="restart-")
        c = consumer(sqlite_engine, store)
        vault = Vault(sqlite_engine, store)
        assert c.handle(changed(b"before", item="c0", vertical="contacts").to_json()).status == "handled"
        # Killed while a 40 MB upload is under way (it takes about a second to moto here).
        failures = []

        def upload():
            try:
                vault.put("J1", "documents", "big.bin", b"b" * (40 << 20))
            except StoreError as exc:
                failures.append(str(exc))

        uploading = threading.Thread(target=upload)
        uploading.start()
        time.sleep(0.3)
        server.stop()
        uploading.join(30)
        assert len(failures) == 1 and f"object store {server.endpoint} unreachable while" in failures[0]
        ev = changed(b"BEGIN:VCARD during", item="c1", vertical="contacts")
        started = time.monotonic()
        outcome = c.handle(ev.to_json())
        assert outcome.status == "retry" and time.monotonic() - started < 15
        assert f"object store {server.endpoint} unreachable while" in outcome.reason
        assert [r.item_id for r in rows(sqlite_engine)] == ["c0"]  # no row without its blob

        server.start()
        # moto keeps nothing across a restart; MinIO keeps its buckets: make it so, as MinIO would be.
        S3Store(server.endpoint, "ak", "sk", TENANT, secure=False, bucket_prefix="restart-")
        assert c.handle(ev.to_json(), attempts_so_far=1).status == "handled"
        v = vault.version("J1", "contacts", "c1")
        assert vault.read(v) == b"BEGIN:VCARD during"
    finally:
        server.stop()


def _depth(amqp_uri: str, queue: str) -> int:
    conn = amqp.Connection(**parse_amqp_uri(amqp_uri).connection_kwargs())
    conn.connect()
    try:
        return conn.channel().queue_declare(queue, passive=True).message_count
    finally:
        conn.close()


def _wait(predicate, timeout: float, what: str, service=None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"{what} after {timeout:.0f}s" + (f"\n{service.logs()[-4000:]}" if service else ""))


def test_the_service_consumes_through_a_broker_connection_loss(settings_env, amqp_uri, moto_s3, tmp_path):
    """`relais serve vault` with an S3 store: events published before, during and after its broker
    connections are closed (as a broker restart does) are all stored, each once; a poison message
    is dead-lettered, a change whose content is not stored yet is retried; RPC; the periodic purge."""
    s3_env = {"RELAIS_VAULT_S3_ENDPOINT": f"http://{moto_s3.endpoint}", "RELAIS_VAULT_S3_ACCESS_KEY": "ak",
              "RELAIS_VAULT_S3_SECRET_KEY": "sk", "RELAIS_VAULT_S3_BUCKET_PREFIX": "svc-",
              # tombstones go at the service's next purge, every second
              "RELAIS_VAULT_RETENTION_DAYS": "0", "RELAIS_VAULT_PURGE_INTERVAL": "1"}
    store = VaultSettings.from_env({**settings_env, **s3_env}).open_store(TENANT)
    total = 120
    events = [changed(f"BEGIN:VCARD {i}".encode(), item=f"c{i}", vertical="contacts", person=f"P{i % 7}")
              for i in range(total - 6)]
    events += [changed(b"%PDF" + bytes([i]) * (INLINE_MAX + 10), item=f"d{i}.pdf", vertical="documents",
                       person=f"P{i}", store=store) for i in range(6)]

    def publish(batch, extra=()):
        with ConfirmedPublisher(amqp_uri, subscribers=(CONSUMER,)) as pub:
            pub.publish([OutgoingMessage(e.type, e.to_json(), e.id, e.type) for e in batch] + list(extra))

    publish(events[:60])  # waiting in relais.q.vault before the service starts
    service = Service("vault", {**settings_env, **s3_env}, tmp_path / "vault.log")
    try:
        service.wait_alive()
        engine = make_engine(f"sqlite:///{tmp_path / 'var' / 'relais.db'}")

        def stored() -> int:
            try:
                with engine.connect() as conn:
                    return conn.execute(select(func.count()).select_from(vault_item_version)).scalar_one()
            except Exception:  # noqa: BLE001 - the service may still be migrating the database
                return 0

        _wait(lambda: stored() >= 10, 40, "the service stored nothing", service)
        publish(events[60:90])
        vhost = urllib.parse.urlsplit(amqp_uri).path[1:]
        assert close_connections(vhost, at_least=2, timeout=20) >= 2  # the consumer's and the RPC's at least
        publish(events[90:], extra=[OutgoingMessage("ent.item.changed", b"{not json", "poison", "ent.item.changed")])
        _wait(lambda: stored() >= total, 60, f"not every event stored ({stored()}/{total})", service)
        time.sleep(1)  # anything handled twice would show now
        assert stored() == total  # one version each: nothing lost, nothing doubled
        with engine.connect() as conn:
            handled = conn.execute(select(func.count()).select_from(processed_events).where(
                processed_events.c.consumer == CONSUMER)).scalar_one()
        assert handled == total
        _wait(lambda: _depth(amqp_uri, "relais.q.vault.dlq") == 1, 15,
              "the poison message is not (alone) in the dead-letter queue", service)
        vault = Vault(engine, store)
        assert vault.read(vault.version("P3", "documents", "d3.pdf")) == b"%PDF" + bytes([3]) * (INLINE_MAX + 10)
        assert service.metric("relais_messages_total", consumer=CONSUMER, outcome="handled") == total
        assert service.metric("relais_messages_total", consumer=CONSUMER, outcome="dead") == 1
        assert service.wait_ready()["status"] == "ready"  # broker, database and the S3 store answer
        env = {**service.env, **settings_env}
        rpc = subprocess.run([RELAIS, "rpc", "vault", "versions", "P3", "documents", "d3.pdf", "operator:helpdesk"],
                             env=env, capture_output=True, text=True, timeout=60)
        assert rpc.returncode == 0, rpc.stderr
        assert [v["size"] for v in json.loads(rpc.stdout)] == [INLINE_MAX + 14]
        # One broker user for everything (guest): the vault takes the caller for the operator, as `actor` narrows it.
        assert rights.access_log(vault, "P3")[0]["actor"] == "rpc:operator:helpdesk"

        # A "stored" change published before its upload is there: retried from the delay queue, then stored.
        late_content = b"%PDF late" + b"l" * INLINE_MAX
        late = changed(late_content, item="late.pdf", vertical="documents", person="P1", store=store)
        store.delete(late.payload["sha256"])
        publish([late])
        _wait(lambda: service.metric("relais_messages_total", consumer=CONSUMER, outcome="retry") >= 1, 15,
              "the change without its content was not sent to retry", service)
        store.put(late_content)
        _wait(lambda: stored() == total + 1, 15, "the retried change was not stored", service)

        # The periodic purge: a deletion past retention (0 days here) goes, with its blob.
        gone = events[5].payload
        publish([deleted(item=gone["item"], vertical="contacts", person=gone["person"])])
        _wait(lambda: stored() == total, 15, "the deleted item was not purged", service)
        assert not store.exists(gone["sha256"])
    finally:
        assert service.stop() == 0
