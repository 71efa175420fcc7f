"""GAR delta feeds: only what changed since the previous feed, and a complete feed when a delta cannot say it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from lxml import etree

from app.cli import main
from services.provisioning.feeds.gar import NS, _esc
from tests import aaf_builder as aaf
from tests.conftest import SHARED
from tests.provisioning.test_grants import pupil, world  # noqa: F401 - the fixture

GAR_XSD = SHARED / "schemas" / "gar" / "GAR-ENT.xsd"


@pytest.fixture
def feed(world, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("RELAIS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RELAIS_DATABASE_URL", world.engine.url.render_as_string(hide_password=False))
    runs = iter(range(100))

    def run(*args: str) -> dict:
        out = tmp_path / f"feed{next(runs)}"
        result = CliRunner().invoke(main, ["provisioning", "gar-export", str(out), "--ent-id", "ENT1",
                                           "--xsd", str(GAR_XSD), "--json", *args])
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["valid"] is True
        assert sorted(p.name for p in out.iterdir()) == sorted(Path(f).name for f in report["files"])
        return report

    return run


def records(report: dict, kind: str) -> list[etree._Element]:
    return [el for f in report["files"] if f"_{kind}_" in f for el in etree.parse(f).getroot()]


def test_delta_holds_only_what_changed(world, feed):  # noqa: F811
    first = feed("--delta")
    assert first["mode"] == "Complet" and "no earlier feed" in first["reason"]
    assert first["records"]["Eleve"] == 4 and first["elements"]["Eleve"] == 4 + 4  # four pupils and their MEF

    same = feed("--delta")
    assert same["mode"] == "Delta" and same["files"] == [] and same["records"] == same["elements"] == {}
    assert same["unchanged"] == sum(first["elements"].values()) and same["removed_since_previous"] == 0

    world.directory(aaf.modify("Eleve", "2", sn="Nouveau-Nom"), pupil("5", klass="6B"))
    delta = feed("--delta")
    assert delta["mode"] == "Delta" and all("_GAR-ENT_Delta_" in f for f in delta["files"])
    eleves = records(delta, "Eleve")
    changed = {el.findtext(f"{{{NS}}}GARPersonIdentifiant") for el in eleves if el.tag == f"{{{NS}}}GAREleve"}
    assert changed == {"2", "5"} and delta["records"]["Eleve"] == 2  # and pupil 5's MEF: 3 elements
    assert delta["elements"]["Eleve"] == len(eleves) == 3
    assert [el.findtext(f"{{{NS}}}GARPersonNom") for el in eleves if el.findtext(f"{{{NS}}}GARPersonIdentifiant")
            == "2"] == ["Nouveau-Nom"]
    assert {el.findtext(f"{{{NS}}}GARPersonIdentifiant") for el in records(delta, "Groupe")} == {"5"}  # joins 6B
    assert not any("_Etab_" in f or "_RespAff_" in f for f in delta["files"])  # nothing changed there


def test_removals_make_the_delta_a_complete_feed(world, feed):  # noqa: F811
    feed()  # a complete feed, remembered
    # Pupil 3 leaves 6B for 6A: their GARPersonGroupe in 6B is gone, and 6B, now empty, with it.
    world.directory(aaf.modify("Eleve", "3", ENTEleveClasses="S1$6A"))
    report = feed("--delta")
    assert report["mode"] == "Complet" and report["removed_since_previous"] == 2
    assert "cannot say so in a delta" in report["reason"]
    assert all("_GAR-ENT_Complet_" in f for f in report["files"])
    members = {(el.findtext(f"{{{NS}}}GARPersonIdentifiant"), el.findtext(f"{{{NS}}}GARGroupeCode"))
               for el in records(report, "Groupe") if el.tag == f"{{{NS}}}GARPersonGroupe"}
    assert ("3", "6A") in members and ("3", "6B") not in members
    assert "6B" not in {el.findtext(f"{{{NS}}}GARGroupeCode") for el in records(report, "Groupe")}
    assert feed("--delta")["mode"] == "Delta"  # and the next delta compares with that complete feed


def test_markup_characters_in_names_are_escaped(world, feed):  # noqa: F811
    world.directory(aaf.modify("Eleve", "2", sn="Martin & <Fils>", givenName="Zoé \"Zaza\""))
    report = feed()
    [eleve] = [el for el in records(report, "Eleve") if el.findtext(f"{{{NS}}}GARPersonIdentifiant") == "2"
               and el.tag == f"{{{NS}}}GAREleve"]
    assert eleve.findtext(f"{{{NS}}}GARPersonNom") == "Martin & <Fils>"
    assert eleve.findtext(f"{{{NS}}}GARPersonPrenom") == 'Zoé "Zaza"'
    assert _esc("a\x01\x1f<b>&\ufffe") == "a&lt;b&gt;&amp;"  # characters XML 1.0 cannot hold are dropped


def first_names(report: dict, jointure: str) -> list[str | None]:
    [eleve] = [el for el in records(report, "Eleve") if el.tag == f"{{{NS}}}GAREleve"
               and el.findtext(f"{{{NS}}}GARPersonIdentifiant") == jointure]
    return [el.text for el in eleve.findall(f"{{{NS}}}GARPersonAutresPrenoms")]


def test_autres_prenoms_are_all_the_first_names_the_usual_one_included(world, feed):  # noqa: F811
    # GAR-ENT.xsd: "Tous les prénoms y compris le prénom usuel, à défaut le prénom usuel seul".
    complete = feed()  # (the fixture checks every feed against the XSD)
    assert first_names(complete, "2") == ["Élodie"]  # the AAF gave no other first name

    world.directory(aaf.modify("Eleve", "2", givenName="Zoé", ENTPersonAutresPrenoms=["Marie", "zoé", "Louise"]))
    delta = feed("--delta")
    assert delta["mode"] == "Delta" and delta["records"] == {"Eleve": 1}
    assert first_names(delta, "2") == ["Zoé", "Marie", "Louise"]  # the usual one first, each once

    world.directory(aaf.modify("Eleve", "2", ENTPersonAutresPrenoms="ZOÉ"))  # the usual one only, in capitals
    assert first_names(feed("--delta"), "2") == ["Zoé"]
