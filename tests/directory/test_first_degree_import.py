"""First-degree (école) exports imported: the generated mixed academy, Deltas, the mass-deletion guard, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from app.cli import main
from relais.bus import contracts
from services.directory.adapters import queries
from tests import aaf_builder as aaf
from tests.directory.test_import import clear_outbox, outbox_events, run, snapshot
from tools.synthetic_academy import generate_academy


@pytest.fixture
def mixed(tmp_path) -> tuple[Path, dict]:
    out = tmp_path / "academy"
    return out, generate_academy(out, 1200, seed=7, first_degree_share=0.5)


def _first_of(folder: Path, family: str, project: str = "SYNTH1D") -> Path:
    [path] = folder.glob(f"{project}_Complet_*_{family}_0000.xml")
    return path


def test_a_mixed_export_imports_both_degrees(engine, mixed):
    folder, summary = mixed
    report = run(engine, folder)
    assert report.ok and not report.rejected and not report.warnings, report.summary_lines()
    assert {f: c.added for f, c in report.totals.items()} == summary["counts"]
    for event in outbox_events(engine):
        contracts.validate_event(event)
    one = summary["first_degree"]
    assert one["counts"]["Eleve"] == sum(one["pupils_by_level"].values())

    with engine.connect() as conn:
        ecoles = [queries.structure(conn, j) for j in ("70000", "70001")]
        assert all(s is not None and s["first_degree"]["district"] == "0000000C" for s in ecoles)
        assert "first_degree" not in queries.structure(conn, "60000")  # a collège
        pupils = queries.members(conn, "70000")
        first = [p for p in pupils if p["category"] == "Eleve"]
        assert first and all(p["first_degree"]["level"]["label"] in one["pupils_by_level"] for p in first)
        assert all(p["first_degree"]["cycle"]["code"] in ("C1", "C2", "C3") for p in first)
        multi = [p for p in first if p["first_degree"]["class_type"] == "MULTINIVEAU"]
        [klass] = [m for m in multi[0]["memberships"] if m["kind"] == "class"]
        classmates = [p for p in multi if klass in p["memberships"]]
        assert len({p["first_degree"]["level"]["label"] for p in classmates}) == 2  # one class, two levels
        assert klass["entry_date"] == "2026-09-01" and "-" in klass["label"]
        assert [p["jointure"] for p in queries.members(conn, "70000", class_code=klass["code"])]
        guardians = queries.legal_guardians(conn, first[0]["jointure"])
        assert guardians and all(g["category"] == "PersRelEleve" for g in guardians)
        assert first[0]["jointure"] in [c["jointure"] for c in queries.children(conn, guardians[0]["jointure"])]
        staff = [p for p in pupils if p["category"] == "PersEducNat"]
        directors = [p for p in staff if "National_DIR" in p["profiles"]]
        assert len(directors) == 1 and "National_ENS" in directors[0]["profiles"]  # a director with a class
        collegians = [p for p in queries.members(conn, "60000") if p["category"] == "Eleve"]
        assert collegians and all("first_degree" not in p for p in collegians)

    clear_outbox(engine)
    again = run(engine, folder)  # unchanged: nothing written, nothing published
    assert again.ok and all(c.added == c.updated == c.deleted == 0 for c in again.totals.values())
    assert [e["type"] for e in outbox_events(engine)] == ["directory.import.completed"]


def test_a_truncated_first_degree_complet_is_refused(sqlite_engine, mixed, tmp_path):
    folder, _summary = mixed
    assert run(sqlite_engine, folder).ok
    before = snapshot(sqlite_engine)
    eleves = _first_of(folder, "Eleve").read_text(encoding="utf-8")
    kept = eleves.split("<addRequest>")
    cut = tmp_path / "SYNTH1D_Complet_20260902_Eleve_0000.xml"  # two thirds of the écoles' pupils
    cut.write_text("<addRequest>".join(kept[: len(kept) * 2 // 3]) + "</ficAlimMENESR>\n", encoding="utf-8")
    report = run(sqlite_engine, cut)
    assert report.status == "refused" and "structure 7000" in report.message
    assert snapshot(sqlite_engine) == before
    forced = run(sqlite_engine, cut, force=True)
    assert forced.ok and forced.totals["Eleve"].deleted == len(kept) - len(kept) * 2 // 3
    with sqlite_engine.connect() as conn:  # the collèges' pupils, in no file of this run, stay
        assert any(p["category"] == "Eleve" for p in queries.members(conn, "60000"))


def test_a_first_degree_delta_moves_a_pupil_up_and_out(sqlite_engine, tmp_path):
    e = sqlite_engine
    pupil = aaf.add("Eleve", "E1", ENTPersonJointure="E1", ENTPersonNom="Petit", ENTPersonPrenom="Léo",
                    ENTPersonStructRattach="S1", ENTPersonClasses="S1$2026$CE2$C1$CE2 A", ENTEleveNiveau="0013$CE2",
                    ENTEleveCycle="C2$CYCLE 2", ENTEleveAutoriteParentale="R1")
    run(e, aaf.write(tmp_path, "P1D_Complet_20260901_Eleve_0000.xml", pupil, aaf.add(
        "Eleve", "E2", ENTPersonJointure="E2", ENTPersonNom="Roux", ENTPersonStructRattach="S1")))
    clear_outbox(e)
    report = run(e, aaf.write(tmp_path, "P1D_Delta_20270901_Eleve_0000.xml",
                              aaf.modify("Eleve", "E1", ENTEleveNiveau="0021$CM1", ENTEleveCycle="C3$CYCLE 3",
                                         ENTPersonClasses="S1$2027$CM1$C4$CM1 B",
                                         ENTEleveDateEntreeClasses="01/09/2027"),
                              aaf.delete("Eleve", "E2")))
    assert report.ok and report.totals["Eleve"].updated == 1 and report.totals["Eleve"].deleted == 1
    events = {ev["type"]: ev for ev in outbox_events(e)}
    for event in events.values():
        contracts.validate_event(event)
    changes = events["directory.person.updated"]["payload"]["changes"]["first_degree"]
    assert (changes["before"]["level"], changes["after"]["level"]) == (
        {"code": "0013", "label": "CE2"}, {"code": "0021", "label": "CM1"})
    moved = events["directory.membership.changed"]["payload"]
    assert moved["added"] == [{"kind": "class", "structure": "S1", "code": "C4", "label": "CM1 B",
                               "entry_date": "2027-09-01"}]
    assert moved["removed"] == [{"kind": "class", "structure": "S1", "code": "C1", "label": "CE2 A"}]
    with e.connect() as conn:
        assert queries.person(conn, "E2") is None
        assert queries.person(conn, "E1")["first_degree"]["cycle"]["label"] == "CYCLE 3"


def test_a_broken_first_degree_record_is_rejected_and_named(sqlite_engine, tmp_path):
    path = aaf.write(tmp_path, "P1D_Complet_20260901_Eleve_0000.xml",
                     aaf.add("Eleve", "E1", ENTPersonNom="Petit", ENTPersonClasses="S1$2026$C1$CE2"),
                     aaf.add("Eleve", "E2", ENTPersonNom="Roux", ENTEleveNiveau="0013$CE2$X"),
                     aaf.add("Eleve", "E3", ENTPersonNom="Durand", ENTPersonClasses="S1$C1",
                             ENTEleveDateEntreeClasses="S1$C9$01/09/2026"),
                     aaf.add("Eleve", "E4", ENTPersonNom="Martin", ENTPersonClasses="S1$C1"))
    report = run(sqlite_engine, path)
    assert report.ok and report.totals["Eleve"].added == 1
    rejected = {r.record_id: r for r in report.rejected}
    assert set(rejected) == {"E1", "E2", "E3"}
    assert all(r.file == str(path) and r.line for r in rejected.values())
    assert "ENTPersonClasses" in rejected["E1"].reason and "got 4 fields" in rejected["E1"].reason
    assert "ENTEleveNiveau" in rejected["E2"].reason
    assert "C9" in rejected["E3"].reason and "not one of the pupil's classes" in rejected["E3"].reason


def test_relais_directory_get_shows_a_pupils_first_degree_facts(sqlite_engine, tmp_path, monkeypatch):
    monkeypatch.setenv("RELAIS_DATA_DIR", str(tmp_path / "var"))
    monkeypatch.setenv("RELAIS_DATABASE_URL", sqlite_engine.url.render_as_string(hide_password=False))
    run(sqlite_engine, aaf.write(tmp_path, "P1D_Complet_20260901_Eleve_0000.xml", aaf.add(
        "Eleve", "E1", ENTPersonJointure="E1", ENTPersonNom="Petit", ENTPersonPrenom="Léo",
        ENTPersonClasses="S1$2026$CE2$C1$CE2-CM1 A", ENTEleveNiveau="0021$CM1", ENTEleveCycle="C3$CYCLE 3",
        ENTEleveTypeClasse="MULTINIVEAU", ENTEleveRestaurantScolaire="O")))
    out = CliRunner().invoke(main, ["directory", "get", "E1"])
    assert out.exit_code == 0, out.output
    assert "  level: CM1 (0021)\n  cycle: CYCLE 3 (C3)\n  class_type: MULTINIVEAU\n  services: canteen" in out.output

