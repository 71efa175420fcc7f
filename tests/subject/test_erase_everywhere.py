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
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from click.testing import CliRunner
from minio import Minio
from sqlalchemy import Engine, inspect, select, text

from app.cli import main
from relais.bus.tables import outbox
from relais.subject.keys import subject_hash, subject_key
from relais.subject.tables import subject_request
from tests.conftest import RABBIT_API
from tests.subject.world import CONTROL, NEEDLES, PARENT, PUPIL, TENANT, services_running


def test_erase_leaves_no_byte_of_the_person_anywhere(world):
    engine = world["engine"]
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
    with services_running(world):
        return CliRunner().invoke(main, ["subject", "erase", PUPIL, "--actor", "dpo:ticket-42", "--json",
                                         "--timeout", "60"])


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




def test_erasing_a_parent_takes_them_out_of_their_children_s_records(world):
    """The pupils' records name their relatives (memberships and raw AAF values): erasing the parent scrubs both,
    in the directory and in provisioning's view, and marks the children for a full re-read at the next import."""
    from relais.db import writer
    from relais.subject.events import new_request
    from services.directory import subject as directory_subject
    from services.provisioning import subject as provisioning_subject

    engine = world["engine"]
    request = new_request(PARENT, "ef" * 32, TENANT)
    with writer(engine).begin() as conn:
        d = directory_subject.erase(conn, request)
        p = provisioning_subject.erase(conn, request)
    assert (d.counts["person"], d.counts["linked_records_scrubbed"]) == (1, 2)  # the parent; both pupils
    assert (p.counts["person"], p.counts["records_scrubbed"]) == (1, 2)
    with engine.connect() as conn:
        for table in ("dir_person", "prov_person"):
            rows = conn.execute(text(f"SELECT data FROM {table}")).scalars().all()
            assert len(rows) == 2 and not any(PARENT.encode() in bytes(r) for r in rows), table
        assert conn.execute(text("SELECT count(*) FROM dir_membership WHERE other = :p"), {"p": PARENT}).scalar() == 0
        assert conn.execute(text("SELECT count(*) FROM dir_person WHERE raw_hash IS NULL")).scalar() == 2
    # The AAF still lists the parent: the next import brings them back, and the children's links with them.
    from services.directory.adapters.queries import children
    from services.directory.importing.options import ImportOptions
    from services.directory.importing.run import DirectoryImporter
    from tests.subject.world import files

    folder = world["tmp"] / "again"
    folder.mkdir()
    assert DirectoryImporter(engine, TENANT, ImportOptions()).run(files(folder)).ok
    with engine.connect() as conn:
        assert sorted(c["jointure"] for c in children(conn, PARENT)) == sorted([PUPIL, "7731906"])
