"""Provisioning on the real sample academy: through RabbitMQ, then the GAR feed against the real XSD."""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from lxml import etree
from sqlalchemy import text

from app.cli import main
from relais.commands import Context
from services.provisioning.feeds.gar import MAX_RECORDS, RECORD_ELEMENTS, export, validate
from tests.conftest import AMQP_BASE, SHARED, _rabbit_api

GAR_XSD = SHARED / "schemas" / "gar" / "GAR-ENT.xsd"


def relais(*args: str) -> dict:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def academy(tmp_path_factory, aaf_sample):
    """The sample imported, its events delivered to provisioning over RabbitMQ, rules loaded."""
    tmp = tmp_path_factory.mktemp("prov")
    vhost = f"relais_test_{uuid.uuid4().hex[:12]}"
    _rabbit_api("PUT", f"/api/vhosts/{vhost}")
    _rabbit_api("PUT", f"/api/permissions/{vhost}/guest")
    env = {"RELAIS_DATA_DIR": str(tmp / "var"), "RELAIS_AMQP_URI": f"{AMQP_BASE}/{vhost}", "RELAIS_TENANT": "test"}
    saved = {k: os.environ.get(k) for k in [*env, "RELAIS_DATABASE_URL"]}
    os.environ.update(env)
    os.environ.pop("RELAIS_DATABASE_URL", None)
    try:
        # The directory publishes before provisioning ever ran: its queue, declared by the
        # publisher from the contracts, keeps the events for it.
        imported = relais("directory", "import", str(aaf_sample), "--json")
        consumed = relais("provisioning", "sync", "--idle", "1", "--json")["events_consumed"]
        assert consumed == imported["events_published"] - 1  # all but directory.import.completed
        engine = Context().engine
        with engine.connect() as conn:
            uais = [u for (u,) in conn.execute(text("SELECT uai FROM prov_structure ORDER BY uai"))]
        config = tmp / "provisioning.yaml"
        config.write_text(yaml.safe_dump({
            "resources": [
                {"id": "ark:/49591/dico", "title": "Dictionnaire", "publisher": "A", "licence": "unlimited"},
                {"id": "ark:/49591/manuel", "title": "Manuel", "publisher": "B", "licence": "per-user",
                 "profiles": ["National_ELV"], "attributes": ["id", "classes", "mef"]},
            ],
            "rules": [
                {"id": "dico-all", "resource": "ark:/49591/dico"},
                {"id": "manuel-pupils", "resource": "ark:/49591/manuel", "structures": uais[:1],
                 "profiles": ["National_ELV"]},
            ],
        }))
        loaded = relais("provisioning", "load", str(config), "--json")
        yield {"engine": engine, "uais": uais, "loaded": loaded, "tmp": tmp}
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
        _rabbit_api("DELETE", f"/api/vhosts/{vhost}")


def test_sample_grants_through_the_bus(academy):
    with academy["engine"].connect() as conn:
        persons = conn.execute(text("SELECT count(*) FROM prov_person")).scalar_one()
        dico = conn.execute(text("SELECT count(*) FROM prov_grant WHERE resource = 'ark:/49591/dico'")).scalar_one()
        pupil = conn.execute(text("SELECT person FROM prov_grant WHERE resource = 'ark:/49591/manuel' LIMIT 1")
                             ).scalar()
    assert persons == 701 + 642 + 9967
    # Everyone attached to a known structure holds the dictionary; relatives are attached to none.
    assert 0 < dico <= persons and academy["loaded"]["granted"] >= dico
    assert academy["loaded"]["events_published"] >= academy["loaded"]["granted"]
    why = relais("provisioning", "explain", pupil, "--json")
    assert {g["cause"] for g in why["grants"]} == {"rule:dico-all", "rule:manuel-pupils"}


def test_gar_feed_of_the_sample_is_valid_against_the_xsd(academy):
    out = academy["tmp"] / "gar"
    result = relais("provisioning", "gar-export", str(out), "--ent-id", "RELAIS", "--xsd", str(GAR_XSD), "--json")
    assert result["valid"] is True, result.get("problems")
    kinds = {Path(f).name.split("_")[-2] for f in result["files"]}
    assert kinds == {"Etab", "Eleve", "Enseignant", "Groupe", "RespAff"}
    # Records are pupils, staff, structures, groups and managers; elements, everything written.
    assert result["records"]["Eleve"] == 642 and result["records"]["Enseignant"] > 0
    tags: dict[str, dict[str, int]] = {}
    for f in result["files"]:
        name = Path(f).name
        assert name.startswith("RELAIS_GAR-ENT_Complet_") and name.endswith(".xml")
        root = etree.parse(f).getroot()
        assert root.tag.startswith("{http://data.education.fr/ns/gar}GAR-ENT-") and root.get("Version")
        assert len(root) <= MAX_RECORDS
        for el in root:
            kind = tags.setdefault(name.split("_")[-2], {})
            kind[etree.QName(el).localname] = kind.get(etree.QName(el).localname, 0) + 1
    assert tags["Eleve"] == {"GAREleve": 642, "GARPersonMEF": 642}  # what the report said as "Eleve 1284" before
    assert result["records"] == {kind: tags[kind][RECORD_ELEMENTS[kind]] for kind in tags}
    assert result["elements"] == {kind: sum(n.values()) for kind, n in tags.items()}
    # GARPersonAutresPrenoms: every first name, the usual one first (the sample's pupils have others).
    ns = "{http://data.education.fr/ns/gar}"
    names = {el.findtext(f"{ns}GARPersonIdentifiant"): [n.text for n in el.findall(f"{ns}GARPersonAutresPrenoms")]
             for f in result["files"] if "_Eleve_" in f for el in etree.parse(f).getroot() if el.tag == f"{ns}GAREleve"}
    usual = {el.findtext(f"{ns}GARPersonIdentifiant"): el.findtext(f"{ns}GARPersonPrenom")
             for f in result["files"] if "_Eleve_" in f for el in etree.parse(f).getroot() if el.tag == f"{ns}GAREleve"}
    assert all(names[j][0] == usual[j] for j in names) and all(len(n) > 1 for n in names.values())
    assert names["2605692"] == ["Kù", "Jetsmao", "Xzuzcosvo", "Pykewi"]  # givenName, ENTPersonAutresPrenoms


def test_gar_files_roll_over_at_the_record_limit(academy):
    out = academy["tmp"] / "gar-small"
    with academy["engine"].connect() as conn:
        report = export(conn, out, "RELAIS", datetime.now(UTC), limit=250)
    eleve_files = [f for f in report.files if "_Eleve_" in f]
    assert len(eleve_files) >= 3 and [Path(f).name[-8:] for f in eleve_files][:2] == ["0000.xml", "0001.xml"]
    assert all(len(etree.parse(f).getroot()) <= 250 for f in report.files)
    assert validate(report.files, GAR_XSD) == []
    # The validator does catch an invalid file.
    broken = Path(eleve_files[0])
    broken.write_bytes(broken.read_bytes().replace(b"GARPersonNom>", b"GARPersonNam>", 2))
    assert validate([str(broken)], GAR_XSD)
