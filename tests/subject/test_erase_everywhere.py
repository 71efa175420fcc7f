"""Data-subject requests across every service: erase a person, then search every byte Relais keeps for them.

The person goes through every service for real: the directory imports them from AAF files, provisioning
grants them licences from the directory's events (its consumer, over the broker), the SSO opens a session
(its login event reaches the usage statistics' consumer), the vault keeps a document of theirs in an S3
server (moto) and logs a read. `relais subject erase` then sends the request over the bus; each service's
own erasure consumer erases and confirms; the command records the confirmations.

Afterwards nothing holds their jointure, names, INE or e-mail: the database (SQLite: the file's bytes
after VACUUM; PostgreSQL: every column of every table), every object (every version) in the S3 server,
and every message left on the broker's vhost. A second person, imported alongside, is still found by the
same search (the search can fail), and every needle was found before the erasure.
"""
from __future__ import annotations

import base64
import json
import sqlite3
import threading
import urllib.parse
import urllib.request
import zlib
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from minio import Minio
from sqlalchemy import Engine, inspect, select, text

from app.cli import main
from relais.bus.tables import outbox
from relais.commands import Context as CommandContext
from relais.commands import relay_now
from relais.config import Settings
from relais.db import writer
from relais.runtime.runner import event_consumer
from relais.subject.keys import subject_hash, subject_key
from relais.subject.tables import subject_request
from services.directory import subject as directory_subject
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from services.provisioning import subject as provisioning_subject
from services.provisioning.handlers.configuration import load_catalogue, load_rules
from services.provisioning.handlers.work import Context as Work
from services.provisioning.process import consumer as provisioning_consumer
from services.sso import subject as sso_subject
from services.sso.sessions import open_session
from services.usage import subject as usage_subject
from services.usage.process import consumer as usage_consumer
from services.usage.settings import UsageSettings
from services.vault import subject as vault_subject
from services.vault.adapters.s3_store import S3Store
from services.vault.items import Vault
from tests import aaf_builder as aaf
from tests.conftest import RABBIT_API

TENANT = "test"
UAI = "0750001A"
PUPIL, OTHER, PARENT = "7731905", "7731906", "7731907"
NEEDLES = {  # what must vanish with the pupil (searched case-insensitively, as UTF-8 and as JSON escapes)
    "jointure": PUPIL, "last name": "Quarzazate", "first name": "Ysoldine", "INE": f"INE{PUPIL}",
    "e-mail": "ysoldine.quarzazate@ac-test.fr",
}
CONTROL = {"jointure": OTHER, "last name": "Ombrelune"}  # the other pupil's: must still be found
CATALOGUE = {"resources": [{"id": "ark:/49591/maths6", "title": "Maths 6e", "publisher": "A", "licence": "per-user",
                            "quota": 5}]}
RULES = {"grace_days": 30, "rules": [{"id": "maths-6a", "resource": "ark:/49591/maths6", "structures": [UAI],
                                      "classes": ["6A"]}]}
BUCKET_PREFIX = "subject-"


def _files(folder: Path) -> list[Path]:
    pupil = aaf.pupil(PUPIL, structure="S1", klass="6A", relatives=[PARENT], sn=NEEDLES["last name"],
                      givenName=NEEDLES["first name"], mail=NEEDLES["e-mail"])
    other = aaf.pupil(OTHER, structure="S1", klass="6A", relatives=[PARENT], sn=CONTROL["last name"])
    return [aaf.write(folder, "P_Delta_20260901_EtabEducNat_0000.xml", aaf.school("S1", UAI)),
            aaf.write(folder, "P_Delta_20260901_PersRelEleve_0000.xml", aaf.relative(PARENT)),
            aaf.write(folder, "P_Delta_20260901_Eleve_0000.xml", pupil, other)]


@pytest.fixture
def world(engine, amqp_uri, moto_s3, tmp_path, monkeypatch):
    """Settings in the environment (as `relais` reads them), and the person in every service."""
    url = engine.url.render_as_string(hide_password=False)
    env = {"RELAIS_DATA_DIR": str(tmp_path / "var"), "RELAIS_DATABASE_URL": url, "RELAIS_AMQP_URI": amqp_uri,
           "RELAIS_TENANT": TENANT, "RELAIS_VAULT_S3_ENDPOINT": f"http://{moto_s3.endpoint}",
           "RELAIS_VAULT_S3_ACCESS_KEY": "ak", "RELAIS_VAULT_S3_SECRET_KEY": "sk",
           "RELAIS_VAULT_S3_BUCKET_PREFIX": BUCKET_PREFIX + engine.dialect.name[:2] + "-"}
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("RELAIS_SSO_CONFIG", raising=False)
    settings = Settings.from_env()
    store = S3Store(moto_s3.endpoint, "ak", "sk", TENANT, secure=False,
                    bucket_prefix=env["RELAIS_VAULT_S3_BUCKET_PREFIX"])

    folder = tmp_path / "aaf"
    folder.mkdir()
    report = DirectoryImporter(engine, TENANT, ImportOptions(validate_events=True)).run(_files(folder))
    assert report.ok, report.to_dict()
    ctx = CommandContext(settings)
    _relay(ctx)
    event_consumer(provisioning_consumer(TENANT), engine).run(amqp_uri, idle_timeout=1.0)
    with writer(engine).begin() as conn:
        work = Work(TENANT)
        load_catalogue(conn, CATALOGUE, work)
        load_rules(conn, RULES, work)
        for person in (PUPIL, OTHER):
            open_session(conn, person_jointure=person, auth_source="educonnect", national_id=f"fr-{person}",
                         attributes={"sn": NEEDLES["last name"] if person == PUPIL else CONTROL["last name"],
                                     "mail": NEEDLES["e-mail"] if person == PUPIL else "x@example.org"},
                         now=datetime.now(UTC), tenant=TENANT)
    _relay(ctx)
    for consumer in (provisioning_consumer(TENANT), usage_consumer(TENANT, UsageSettings.from_env())):
        event_consumer(consumer, engine).run(amqp_uri, idle_timeout=1.0)
    vault = Vault(engine, store, actor="test:teacher")
    for person, name in ((PUPIL, NEEDLES["last name"]), (OTHER, CONTROL["last name"])):
        content = f"Bulletin de {name}, {person}, INE{person}, {NEEDLES['e-mail'] if person == PUPIL else ''}"
        v = vault.put(person, "documents", f"bulletin-{name}.txt", content.encode(), {"title": f"Bulletin {name}"},
                      path=f"/Mes documents/{name}")
        vault.read(v)  # in the access log
    yield {"engine": engine, "settings": settings, "ctx": ctx, "store": store, "moto": moto_s3, "amqp_uri": amqp_uri,
           "tmp": tmp_path}


def _relay(ctx: CommandContext) -> None:
    _sent, pending, error = relay_now(ctx)
    assert error is None and pending == 0, error


def test_erase_leaves_no_byte_of_the_person_anywhere(world):
    engine, ctx = world["engine"], world["ctx"]
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM prov_grant WHERE person = :p"), {"p": PUPIL}).scalar_one() == 1
        assert conn.execute(text("SELECT count(*) FROM usage_activity")).scalar_one() >= 2  # both logins, pseudonymous
    before = _everything(world)
    for what, needle in {**NEEDLES, **CONTROL}.items():
        assert _found(before, needle), f"the search does not find the {what} before the erasure: it proves nothing"

    result = _erase_with_services_running(world)
    assert result.exit_code == 0, result.output
    state = json.loads(result.stdout)
    assert state["completed"] and state["waiting_for"] == []
    assert sorted(state["confirmed"]) == ["directory", "provisioning", "sso", "usage", "vault"]
    erased = {s: c["erased"] for s, c in state["confirmed"].items()}
    assert erased["directory"]["person"] == 1 and erased["directory"]["linked_records_scrubbed"] == 1  # the parent
    assert erased["provisioning"]["grants"] == 1 and erased["sso"]["sessions"] == 1
    assert erased["usage"]["open_months_activity"] >= 1 and erased["vault"]["blobs_deleted"] == 1
    assert "directory" in state["directory_note"]
    key = subject_key(world["settings"])
    with engine.connect() as conn:  # the audit trail names the person by keyed hash only
        row = conn.execute(select(subject_request)).one()
        assert row.subject_hash == subject_hash(key, TENANT, PUPIL) and row.completed_at is not None

    after = _everything(world)
    for what, needle in NEEDLES.items():
        where = _found(after, needle)
        assert not where, f"the {what} is still in {where}"
    for what, needle in CONTROL.items():
        assert _found(after, needle), f"the other pupil's {what} is gone too: the erasure took too much"
    assert _found(after, PARENT), "the parent was erased with the child"


def _erase_with_services_running(world):
    """`relais subject erase` while each service's erasure consumer and a relay run, as their processes would."""
    engine, store, uri = world["engine"], world["store"], world["amqp_uri"]
    stop = threading.Event()
    consumers = [directory_subject.consumer(TENANT), provisioning_subject.consumer(TENANT),
                 sso_subject.consumer(TENANT), usage_subject.consumer(TENANT), vault_subject.consumer(TENANT, store)]
    failures: list[BaseException] = []

    def run(target) -> None:
        try:
            target()
        except BaseException as exc:  # noqa: BLE001 - said by the test
            failures.append(exc)

    def relay() -> None:
        while not stop.wait(0.2):
            relay_now(world["ctx"])

    threads = [threading.Thread(target=run, args=(lambda c=c: event_consumer(c, engine).run(uri, stop=stop),))
               for c in consumers] + [threading.Thread(target=run, args=(relay,))]
    for t in threads:
        t.start()
    try:
        result = CliRunner().invoke(main, ["subject", "erase", PUPIL, "--actor", "dpo:ticket-42", "--json",
                                           "--timeout", "60"])
    finally:
        stop.set()
        for t in threads:
            t.join(30)
    assert not failures, failures
    _relay(world["ctx"])
    return result


# -- the search ---------------------------------------------------------------------------------------------

def _everything(world) -> dict[str, list[bytes]]:
    """Every byte Relais keeps, by place: the database, the S3 server, the broker's queues."""
    return {"database": _database(world["engine"], world["tmp"]), "s3": _s3(world["moto"].endpoint),
            "bus": _bus(world["amqp_uri"])}


def _found(places: dict[str, list[bytes]], needle: str) -> list[str]:
    forms = {needle.lower().encode(), json.dumps(needle.lower())[1:-1].encode()}
    return [place for place, blobs in places.items() if any(f in b.lower() for b in blobs for f in forms)]


def _database(engine: Engine, tmp: Path) -> list[bytes]:
    """SQLite: the file's bytes after VACUUM (the WAL folded in); PostgreSQL: every column of every row.
    Both: the outbox's compressed bodies inflated."""
    blobs = []
    with engine.connect() as conn:
        for (body,) in conn.execute(select(outbox.c.body)):
            blobs.append(_inflated(bytes(body)))
    if engine.dialect.name == "sqlite":
        path = engine.url.database
        engine.dispose()
        with sqlite3.connect(path) as db:
            db.execute("VACUUM")
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        blobs.append(Path(path).read_bytes())
        wal = Path(f"{path}-wal")
        if wal.exists():
            blobs.append(wal.read_bytes())
        return blobs
    with engine.connect() as conn:
        for table in inspect(conn).get_table_names():
            for row in conn.execute(text(f'SELECT * FROM "{table}"')):
                blobs += [bytes(v) if isinstance(v, (bytes, memoryview)) else str(v).encode() for v in row]
    return blobs


def _inflated(body: bytes) -> bytes:
    try:
        return zlib.decompress(body)
    except zlib.error:
        return body


def _s3(endpoint: str) -> list[bytes]:
    client = Minio(endpoint, "ak", "sk", secure=False)
    blobs = []
    for bucket in client.list_buckets():
        for obj in client.list_objects(bucket.name, recursive=True, include_version=True):
            blobs.append(obj.object_name.encode())
            if not obj.is_delete_marker:
                response = client.get_object(bucket.name, obj.object_name, version_id=obj.version_id)
                try:
                    blobs.append(response.read())
                finally:
                    response.close()
                    response.release_conn()
    return blobs


def _bus(amqp_uri: str) -> list[bytes]:
    """Every message in every queue of the test's vhost (read and put back), through the management API."""
    vhost = urllib.parse.quote(urllib.parse.urlsplit(amqp_uri).path.lstrip("/"), safe="")
    blobs = []
    for queue in _api("GET", f"/api/queues/{vhost}"):
        if queue.get("messages", 0) or queue.get("messages_ready", 0):
            got = _api("POST", f"/api/queues/{vhost}/{urllib.parse.quote(queue['name'], safe='')}/get",
                       {"count": 10000, "ackmode": "ack_requeue_true", "encoding": "auto"})
            blobs += [(m["payload"] if m["payload_encoding"] == "string" else "").encode()
                      + (base64.b64decode(m["payload"]) if m["payload_encoding"] == "base64" else b"")
                      + json.dumps(m.get("properties", {})).encode() for m in got]
    return blobs


def _api(method: str, path: str, body: dict | None = None):
    parts = urllib.parse.urlsplit(RABBIT_API)
    req = urllib.request.Request(f"{parts.scheme}://{parts.hostname}:{parts.port}{path}", method=method,
                                 data=json.dumps(body).encode() if body is not None else None)
    token = base64.b64encode(f"{parts.username}:{parts.password}".encode()).decode()
    req.add_header("Authorization", f"Basic {token}")
    req.add_header("content-type", "application/json")
    with urllib.request.urlopen(req, timeout=10) as response:
        return json.loads(response.read())


