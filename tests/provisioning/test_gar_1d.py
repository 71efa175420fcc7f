"""The écoles' GAR feed (GAR-ENT-1D) beside the second-degree one, on the generated mixed academy."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from app.cli import main
from relais.db import writer
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from services.provisioning.api import apps
from services.provisioning.api.oneroster_view import AppView
from services.provisioning.feeds.oneroster_csv import write_bundle
from tests import aaf_builder as aaf
from tests.conftest import SHARED
from tests.provisioning.test_grants import World
from tests.provisioning.test_oneroster import read_csv
from tools.synthetic_academy import generate_academy

GAR = SHARED / "schemas" / "gar"
NS1 = "{http://data.education.fr/ns/gar/1d}"
NS2 = "{http://data.education.fr/ns/gar}"


@pytest.fixture
def mixed_world(sqlite_engine, tmp_path, monkeypatch):
    """The generated mixed academy through the directory into provisioning's view (SQLite only: the feed reads
    the view the same way on both, and handing thousands of events over one by one takes 25 s on PostgreSQL)."""
    engine = sqlite_engine
    monkeypatch.setenv("RELAIS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RELAIS_DATABASE_URL", engine.url.render_as_string(hide_password=False))
    summary = generate_academy(tmp_path / "academy", 700, seed=3, first_degree_share=0.5)
    world = World(engine, tmp_path)
    report = DirectoryImporter(engine, "test", ImportOptions()).run([tmp_path / "academy"])
    assert report.ok and not report.rejected
    world.deliver()
    return world, summary


def gar_export(tmp_path: Path, name: str, *args: str) -> dict:
    out = tmp_path / name
    result = CliRunner().invoke(main, ["provisioning", "gar-export", str(out), "--ent-id", "ENT1", "--xsd",
                                       str(GAR / "GAR-ENT.xsd"), "--xsd-1d", str(GAR / "GAR-ENT-1D.xsd"), "--json",
                                       *args])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True and report["first_degree"]["valid"] is True, report
    files = report["files"] + report["first_degree"]["files"]
    assert sorted(p.name for p in out.iterdir()) == sorted(Path(f).name for f in files)
    return report


def elements(files: list[str], kind: str) -> list[etree._Element]:
    return [el for f in files if f"_{kind}_" in f for el in etree.parse(f).getroot()]


def test_a_territory_with_both_degrees_gets_both_feeds(mixed_world, tmp_path):
    world, summary = mixed_world
    one = summary["first_degree"]
    report = gar_export(tmp_path, "feed")
    first = report["first_degree"]
    assert all("_GAR-ENT_Complet_" in f and "_1D_" in f for f in first["files"])
    assert not any("_1D_" in f for f in report["files"])
    # every école and its pupils in the first-degree feed, none of them in the other
    assert first["records"]["Etab"] == one["ecoles"] and first["records"]["Eleve"] == one["counts"]["Eleve"]
    assert report["records"]["Eleve"] == summary["counts"]["Eleve"] - one["counts"]["Eleve"]
    assert report["records"]["Etab"] == summary["counts"]["EtabEducNat"] - one["ecoles"]
    assert not report["skipped"] and not first["skipped"]

    eleves = elements(first["files"], "Eleve")
    pupils = {el.findtext(f"{NS1}GARPersonIdentifiant") for el in eleves if el.tag == f"{NS1}GAREleve"}
    levels = [el for el in eleves if el.tag == f"{NS1}GARPersonMEFSTAT4"]
    assert {el.findtext(f"{NS1}GARPersonIdentifiant") for el in levels} == pupils  # each pupil's level
    assert sum(Counter(el.findtext(f"{NS1}GARMEFSTAT4Code") for el in levels).values()) == len(pupils)
    second = {el.findtext(f"{NS2}GARPersonIdentifiant") for el in elements(report["files"], "Eleve")}
    assert not pupils & second

    staff = elements(first["files"], "Enseignant")
    taught: dict[str, set[str]] = {}
    for el in staff:
        if el.tag == f"{NS1}GARPersonMEFSTAT4":
            code = el.findtext(f"{NS1}GARMEFSTAT4Code")
            taught.setdefault(el.findtext(f"{NS1}GARPersonIdentifiant"), set()).add(code)
    assert taught and any(len(codes) == 2 for codes in taught.values())  # a multi-level class's teacher

    groups = elements(first["files"], "Groupe")
    labels = {el.findtext(f"{NS1}GARGroupeLibelle") for el in groups if el.tag == f"{NS1}GARGroupe"}
    assert "CHORALE" in labels and any("-" in label for label in labels)  # groups and multi-level classes, named
    managers = elements(first["files"], "RespAff")
    assert len(managers) == one["ecoles"]  # each école's director
    assert all(el.findtext(f"{NS1}GARPersonMail") for el in managers)


def test_the_ecoles_feed_has_its_deltas(mixed_world, tmp_path):
    world, _summary = mixed_world
    first = gar_export(tmp_path, "feed0", "--delta")["first_degree"]
    assert first["mode"] == "Complet" and "no earlier first-degree feed" in first["reason"]
    same = gar_export(tmp_path, "feed1", "--delta")
    assert same["mode"] == same["first_degree"]["mode"] == "Delta"
    assert same["first_degree"]["files"] == [] and same["first_degree"]["unchanged"] == sum(first["elements"].values())

    pupil = next(el.findtext(f"{NS1}GARPersonIdentifiant") for el in elements(first["files"], "Eleve"))
    world.directory(aaf.modify("Eleve", pupil, ENTPersonNom="Nouveau-Nom"))
    delta = gar_export(tmp_path, "feed2", "--delta")
    assert delta["files"] == [] and delta["first_degree"]["mode"] == "Delta"
    changed = elements(delta["first_degree"]["files"], "Eleve")
    assert [el.findtext(f"{NS1}GARPersonNom") for el in changed] == ["Nouveau-Nom"]


def test_every_cm2_pupil_of_the_generated_ecoles_gets_the_resource(mixed_world):
    world, summary = mixed_world
    world.load({"resources": [{"id": "ark:/49591/cm2", "title": "Lecture CM2", "publisher": "Éditions A",
                               "licence": "unlimited"},
                              {"id": "ark:/49591/c2", "title": "Maths cycle 2", "publisher": "Éditions B",
                               "licence": "unlimited"}]},
               {"rules": [{"id": "cm2", "resource": "ark:/49591/cm2", "levels": ["CM2"]},
                          {"id": "cycle-2", "resource": "ark:/49591/c2", "profiles": ["National_ELV"],
                           "cycles": ["Cycle 2"]}]})
    grants = world.grants()
    by_level = summary["first_degree"]["pupils_by_level"]
    assert sum(r == "ark:/49591/cm2" for _p, r in grants) == by_level["CM2"] > 0
    assert sum(r == "ark:/49591/c2" for _p, r in grants) == by_level["CP"] + by_level["CE1"] + by_level["CE2"]
    assert all(c == "rule:cm2" for (_p, r), c in grants.items() if r == "ark:/49591/cm2")


def test_oneroster_carries_the_ecoles_classes_and_levels(mixed_world, tmp_path):
    world, _summary = mixed_world
    with world.engine.connect() as conn:
        uai = conn.exec_driver_sql("SELECT uai FROM prov_structure WHERE jointure = '70000'").scalar_one()
    world.load({"resources": [{"id": "ark:/49591/lire", "title": "Lire", "publisher": "A", "licence": "unlimited",
                               "attributes": ["id", "profiles", "classes", "mef", "last_name", "first_name"]}]},
               {"rules": [{"id": "lire", "resource": "ark:/49591/lire", "structures": [uai]}]})
    with writer(world.engine).begin() as conn:
        apps.add_app(conn, "lire-app", ["ark:/49591/lire"])
    with world.engine.connect() as conn:
        app = apps.load_apps(conn)["lire-app"]
        write_bundle(AppView(conn, app, now=datetime(2026, 10, 1, tzinfo=UTC)), tmp_path / "or")
    users = {u["sourcedId"]: u for u in read_csv(tmp_path / "or", "users.csv")}
    classes = {c["classCode"]: c for c in read_csv(tmp_path / "or", "classes.csv")}
    pupils = [u for u in users.values() if u["grades"]]
    assert pupils and all(u["grades"] in {"0001", "0002", "0003", "0004", "0011", "0012", "0013", "0021", "0022"}
                          for u in pupils)
    assert classes and all(c["title"] != c["classCode"] and c["classType"] == "homeroom" for c in classes.values()
                           if c["classCode"].startswith("70000C"))
    roles = {(e["userSourcedId"], e["role"]) for e in read_csv(tmp_path / "or", "enrollments.csv")}
    assert {r for _u, r in roles} >= {"student", "teacher"}  # pupils and their teachers in the écoles' classes
