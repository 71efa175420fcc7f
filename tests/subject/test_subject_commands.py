"""`relais subject export`, `erase` and `status`: the bag a person is given (read by the Library of Congress's
`bagit`), services that do not confirm in time named, late confirmations taken in, the directory's next import
saying that it brought an erased person back, and erasure requests consumed once, poison dead-lettered."""
from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import bagit
import pytest
from click.testing import CliRunner
from sqlalchemy import insert, select

from app.cli import main
from app.subject import README, README_FILE
from relais.bus.envelope import dumps
from relais.bus.outbox import read_events
from relais.db import writer
from relais.i18n import missing
from relais.runtime.runner import event_consumer
from relais.subject.events import CONFIRMED, REQUESTED, new_request, request_event
from services.directory import subject as directory_subject
from services.directory.adapters import tables as dt
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from tests.subject.world import NEEDLES, PARENT, PUPIL, TENANT, files, services_running

SQLITE = pytest.mark.parametrize("engine", ["sqlite"], indirect=True)  # what these test is the same on PostgreSQL


@SQLITE
def test_export_is_a_bag_bagit_validates_with_what_every_service_holds(world, tmp_path):
    out = tmp_path / "bag"
    result = CliRunner().invoke(main, ["subject", "export", PUPIL, "--out", str(out), "--json", "--actor", "dpo:t-7"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["found"] == {"directory": True, "provisioning": True, "sso": True, "usage": True, "vault": True}
    bag = bagit.Bag(str(out))
    bag.validate()  # raises on any fault: the Library of Congress's tool reads it as it is
    data = {name: json.loads((out / "data" / f"{name}.json").read_text(encoding="utf-8"))
            for name in ("directory", "provisioning", "sso", "usage", "vault")}
    record = data["directory"]["record"]
    assert (record["last_name"], record["first_name"], record["email"], record["ine"]) == (
        NEEDLES["last name"], NEEDLES["first name"], NEEDLES["e-mail"], NEEDLES["INE"])
    assert [p["jointure"] for p in data["directory"]["linked_persons"]] == [PARENT]
    assert [s["uai"] for s in data["directory"]["structures"]] == ["0750001A"]
    assert [(g["resource"], g["cause"]) for g in data["provisioning"]["grants"]] == [("ark:/49591/maths6",
                                                                                      "rule:maths-6a")]
    (session,) = data["sso"]["sessions"]
    assert session["attributes"]["sn"] == NEEDLES["last name"] and session["auth_source"] == "educonnect"
    assert data["sso"]["platform_pseudonyms"].startswith("not computed")
    assert data["usage"]["open_months_activity"] and "pseudonym" in data["usage"]["note"]
    (item,) = data["vault"]["items"]
    content = (out / "data" / "vault" / "items" / item["file"]).read_bytes()
    assert NEEDLES["last name"].encode() in content and item["sha256"] == hashlib.sha256(content).hexdigest()
    assert {e["actor"] for e in data["vault"]["access_log"]} >= {"test:teacher"}
    assert "plus rien ne peut vous être relié" in (out / "data" / "LISEZMOI.txt").read_text(encoding="utf-8")
    assert missing([*README, README_FILE], "fr") == missing([*README, README_FILE], "en") == []
    english = CliRunner().invoke(main, ["subject", "export", PUPIL, "--out", str(tmp_path / "en"), "--lang", "en"])
    assert english.exit_code == 0, english.output
    assert "nothing can be linked to you" in (tmp_path / "en" / "data" / "README.txt").read_text(encoding="utf-8")

    (out / "data" / "vault" / "items" / item["file"]).write_bytes(content.replace(b"Bulletin", b"Bulletin!"))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(out)).validate()  # a changed byte is caught

    nobody = CliRunner().invoke(main, ["subject", "export", "0000000", "--out", str(tmp_path / "none")])
    assert nobody.exit_code == 1 and "no service holds anything" in nobody.output
    taken = CliRunner().invoke(main, ["subject", "export", PUPIL, "--out", str(out)])
    assert taken.exit_code == 2 and "not empty" in taken.output


@SQLITE
def test_erase_names_the_services_that_did_not_confirm_and_status_takes_in_late_ones(world, tmp_path):
    with services_running(world, only=("directory",)):
        result = CliRunner().invoke(main, ["subject", "erase", PUPIL, "--json", "--timeout", "4"])
    assert result.exit_code == 1, result.output
    state = json.loads(result.stdout)
    assert list(state["confirmed"]) == ["directory"] and not state["completed"]
    assert state["waiting_for"] == ["provisioning", "sso", "usage", "vault"]
    assert "not confirmed within 4 s by: provisioning, sso, usage, vault" in result.stderr

    with services_running(world, only=("provisioning", "sso", "usage", "vault")):  # the request waits for them
        late = CliRunner().invoke(main, ["subject", "status", state["request_id"], "--wait", "30"])
    assert late.exit_code == 0, late.output
    assert "NOT CONFIRMED" not in late.output and "vault" in late.output and "import" in late.output

    # The AAF still lists the pupil: the next import adds them again, and its report says so, once.
    folder = tmp_path / "again"
    folder.mkdir()
    report = DirectoryImporter(world["engine"], TENANT, ImportOptions()).run(files(folder))
    back = [w for w in report.warnings if w.record_id == PUPIL]
    assert len(back) == 1 and state["request_id"] in back[0].message
    with world["engine"].connect() as conn:
        assert conn.execute(select(dt.erased.c.returned_import)).scalar_one() == report.import_id
    again = DirectoryImporter(world["engine"], TENANT, ImportOptions()).run(files(folder))
    assert not [w for w in again.warnings if w.record_id == PUPIL]


def test_an_erasure_request_is_handled_once_and_poison_is_dead_lettered(sqlite_engine):
    engine = sqlite_engine
    consumer = event_consumer(directory_subject.consumer(TENANT), engine)
    body = dumps(request_event(new_request(PUPIL, "ab" * 32, TENANT)).to_dict())
    assert consumer.handle(body).status == "handled"
    assert consumer.handle(body).status == "duplicate"  # redelivered: nothing done twice
    with engine.connect() as conn:
        confirmations = read_events(conn, CONFIRMED)
    assert len(confirmations) == 1 and PUPIL not in json.dumps(confirmations[0])

    bad = json.loads(body)
    bad["id"] = bad["id"][:-4] + "beef"
    del bad["payload"]["subject_hash"]
    outcome = consumer.handle(json.dumps(bad).encode())
    assert outcome.status == "dead" and "subject_hash" in (outcome.reason or "") and PUPIL not in (outcome.reason or "")
    other = json.loads(body)
    other["id"], other["tenant"] = other["id"][:-4] + "cafe", "elsewhere"
    refused = consumer.handle(json.dumps(other).encode())
    assert refused.status == "retry" and "elsewhere" in (refused.reason or "")


def test_erasure_takes_the_jointure_out_of_import_reports_and_leaves_longer_numbers(sqlite_engine):
    report = {"rejected": [{"record_id": "7731905", "reason": "person 7731905: bad date"}],
              "files": [{"records": 177319050, "path": "P_Delta_7731905_Eleve.xml"}], "id": "x7731905"}
    with writer(sqlite_engine).begin() as conn:
        conn.execute(insert(dt.import_run).values(id="r1", started_at=datetime.now(UTC), status="completed",
                                                  report=json.dumps(report)))
        erased = directory_subject.erase(conn, new_request("7731905", "cd" * 32, TENANT))
        left = json.loads(conn.execute(select(dt.import_run.c.report)).scalar_one())
    assert erased.counts["import_reports_scrubbed"] == 1 and erased.counts["person"] == 0
    assert left == {"rejected": [{"record_id": "(erased)", "reason": "person (erased): bad date"}],
                    "files": [{"records": 177319050, "path": "P_Delta_(erased)_Eleve.xml"}], "id": "x7731905"}


@pytest.mark.parametrize("service", ["directory", "provisioning", "usage", "vault"])
def test_each_service_process_runs_its_erasure_consumer(service, sqlite_engine, settings_env):
    """What `relais serve SERVICE` starts holds the consumer the contracts name for its erasure requests (the SSO's
    start needs its configuration: its process is declared the same way, services/sso/process.py)."""
    from app.bootstrap import PROCESSES, ports
    from relais.bus.contracts import consumers_of
    from relais.config import Settings
    from relais.runtime import Context

    assert f"{service}-subject" in consumers_of()[REQUESTED]
    settings = Settings.from_env()
    parts = PROCESSES[service].start(Context(settings, sqlite_engine, ports(service, settings, sqlite_engine)))
    assert f"{service}-subject" in [c.name for c in parts.consumers]


SP_METADATA = """<?xml version="1.0"?>
<md:EntityDescriptor xmlns:md="urn:oasis:names:tc:SAML:2.0:metadata" entityID="{entity}">
  <md:SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">
    <md:AssertionConsumerService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"
                                 Location="https://{host}/acs" index="0"/>
  </md:SPSSODescriptor>
</md:EntityDescriptor>
"""


@SQLITE
def test_export_gives_the_pseudonym_each_saml_platform_knows_the_person_by(world, tmp_path, monkeypatch):
    """With the SSO's configuration, the export computes each platform's NameID by the documented formula
    (services/sso/rules/pseudonyms.py), which the SSO never stores."""
    import base64
    import hmac

    import yaml

    from tests.saml_peers import key_pair

    key, cert = key_pair("relais-idp-subject").write(tmp_path / "keys", "idp")
    platforms = {"maths": "https://maths.example/sp", "atlas": "https://atlas.example/saml"}
    for name, entity in platforms.items():
        (tmp_path / f"{name}.xml").write_text(SP_METADATA.format(entity=entity, host=f"{name}.example"))
    config = {"base_url": "https://ent.example/sso", "secret_env": "SUBJECT_TEST_SSO_SECRET",
              "idp": {"keys": [{"id": "k1", "key_file": str(key), "cert_file": str(cert), "signing": True}],
                      "platforms": [{"id": name, "label": name, "metadata_file": str(tmp_path / f"{name}.xml")}
                                    for name in platforms]}}
    (tmp_path / "sso.yaml").write_text(yaml.safe_dump(config))
    secret = "territory-secret-for-the-subject-test-0123456789"
    monkeypatch.setenv("RELAIS_SSO_CONFIG", str(tmp_path / "sso.yaml"))
    monkeypatch.setenv("SUBJECT_TEST_SSO_SECRET", secret)
    result = CliRunner().invoke(main, ["subject", "export", PUPIL, "--out", str(tmp_path / "bag")])
    assert result.exit_code == 0, result.output
    sso = json.loads((tmp_path / "bag" / "data" / "sso.json").read_text(encoding="utf-8"))

    def documented(entity: str) -> str:
        mac = hmac.new(secret.encode(), b"relais:saml-nameid:v1\0" + entity.encode() + b"\0" + PUPIL.encode(),
                       hashlib.sha256).digest()
        return base64.b32encode(mac).decode().rstrip("=").lower()

    assert sso["platform_pseudonyms"] == {name: documented(entity) for name, entity in platforms.items()}
    bagit.Bag(str(tmp_path / "bag")).validate()
