"""Directory import against the real sample export and hand-written deltas."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from relais.bus import contracts
from relais.bus.outbox import pending_count, read_events
from relais.bus.tables import outbox
from relais.db import make_engine, upgrade
from services.directory.adapters import queries, tables
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from tests import aaf_builder as aaf

SAMPLE_COUNTS = {"EtabEducNat": 10, "MefEducNat": 2504, "MatiereEducNat": 718,
                 "PersEducNat": 701, "Eleve": 642, "PersRelEleve": 9967}


def run(engine, *paths, **options):
    return DirectoryImporter(engine, "test", ImportOptions(validate_events=True, **options)).run(list(paths))


def outbox_events(engine) -> list[dict]:
    with engine.connect() as conn:
        return read_events(conn)  # the import packs its events, a thousand to an outbox row


def clear_outbox(engine) -> None:
    with engine.begin() as conn:
        conn.execute(outbox.delete())


def snapshot(engine) -> dict:
    with engine.connect() as conn:
        return {t.name: sorted(map(tuple, conn.execute(select(t)).all()), key=repr)
                for t in (tables.person, tables.membership, tables.structure, outbox)}


# -- the real sample ----------------------------------------------------------------

def test_sample_counts_links_events_and_idempotent_reimport(engine, aaf_sample):
    report = run(engine, aaf_sample)
    assert report.ok, report.summary_lines()
    assert {f: c.added for f, c in report.totals.items()} == SAMPLE_COUNTS
    assert not report.rejected
    assert len(report.files) == 45 and all(f.status == "imported" for f in report.files)

    events = outbox_events(engine)
    for ev in events:  # every event written validates against its contract
        contracts.validate_event(ev)
    created = [e for e in events if e["type"] == "directory.person.created"]
    assert len(created) == 642 + 701 + 9967
    assert events[-1]["type"] == "directory.import.completed"
    assert len(events) == report.events
    with engine.connect() as conn:
        # Packed: a row for each batch's `.created` events, at most one partial row of others per file, one summary.
        rows = conn.execute(select(func.count()).select_from(outbox)).scalar_one()
        batches = sum(-(-f.records // ImportOptions.batch_size) for f in report.files)
        assert pending_count(conn) == len(events) and rows <= batches + len(report.files) + 1

    with engine.connect() as conn:
        pupil = queries.person(conn, "2605692")
        assert (pupil["last_name"], pupil["first_name"], pupil["birth_date"]) == ("Long", "Kù", "1995-09-14")
        assert pupil["profiles"] == ["National_ELV"] and pupil["mef"] == "24133610210"
        kinds = {(m["kind"], m.get("code")) for m in pupil["memberships"]}
        assert {("class", "RUS1TERM"), ("group", "206"), ("structure", None)} <= kinds
        rel = {m["person"]: m for m in pupil["memberships"] if m["kind"] == "relative"}
        assert rel["2867253"]["legal_guardian"] and rel["2867253"]["financial"]
        assert rel["2867254"]["legal_guardian"] and not rel["2867254"]["financial"]
        assert pupil["attributes"]["ENTEleveRegime"] == ["EXTERNE LIBRE"]

        guardians = {g["jointure"]: g["first_name"] for g in queries.legal_guardians(conn, "2605692")}
        assert guardians == {"2867253": "Maëlla", "2867254": "Mélanie"}
        assert [c["jointure"] for c in queries.children(conn, "2867253")] == ["2605692"]
        # by SIECLE id + UAI (structure 52006 is not in the sample's EtabEducNat: by jointure)
        assert [p["jointure"] for p in queries.pupils_by_attachment(conn, "837982", "52006")] == ["2605692"]
        # parent by child + UAI + names, ignoring case and accents
        found = queries.parents_of_pupil(conn, "837982", "52006", "LONG", "maella")
        assert [p["jointure"] for p in found] == ["2867253"]

        teacher = queries.person(conn, "2397000")
        assert "National_ENS" in teacher["profiles"]
        teaching = [m for m in teacher["memberships"] if m["kind"] == "teaching"]
        assert {"structure": "55794", "scope": "class", "code": "1S2", "subject": "006600",
                "kind": "teaching"} in teaching
        assert "2397000" in {p["jointure"] for p in queries.members(conn, "55794", class_code="1S2")}

        school = queries.structure(conn, "0059951P")
        assert school["jointure"] == "52006" and school["name"] == "Z.REMP-DE GAP-AIX_MARS."

        # relatives whose child is not in the sample (Eleve_0000 is missing) are there, childless
        childless = conn.execute(text(
            "SELECT p.jointure FROM dir_person p WHERE p.category = 'PersRelEleve' AND NOT EXISTS "
            "(SELECT 1 FROM dir_membership m WHERE m.kind = 'relative' AND m.other = p.jointure) LIMIT 1")).scalar()
        assert childless and queries.children(conn, childless) == []

    # the same files again: nothing changes, nothing is published but the run's own summary
    clear_outbox(engine)
    before = snapshot(engine)
    again = run(engine, aaf_sample)
    assert again.ok
    assert {f: c.unchanged for f, c in again.totals.items()} == SAMPLE_COUNTS
    assert all(c.added == c.updated == c.deleted == 0 for c in again.totals.values())
    assert [e["type"] for e in outbox_events(engine)] == ["directory.import.completed"]
    after = snapshot(engine)
    assert before["dir_person"] == after["dir_person"] and before["dir_membership"] == after["dir_membership"]


# -- deltas and Complet ----------------------------------------------------------------

def test_delta_modify_class_change_and_delete(sqlite_engine, tmp_path):
    e = sqlite_engine
    run(e, aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", aaf.pupil("1", klass="3A"), aaf.pupil("2")))
    clear_outbox(e)
    report = run(e, aaf.write(tmp_path, "P_Delta_20260902_Eleve_0000.xml",
                              aaf.modify("Eleve", "1", sn="Nouveau", ENTEleveClasses="S1$3B"),
                              aaf.delete("Eleve", "2")))
    assert report.ok and report.totals["Eleve"].updated == 1 and report.totals["Eleve"].deleted == 1
    events = {ev["type"]: ev for ev in outbox_events(e)}
    changes = events["directory.person.updated"]["payload"]["changes"]
    assert changes["last_name"] == {"before": "Nom1", "after": "Nouveau"}
    change = events["directory.membership.changed"]["payload"]
    assert change["added"] == [{"kind": "class", "structure": "S1", "code": "3B"}]
    assert change["removed"] == [{"kind": "class", "structure": "S1", "code": "3A"}]
    deleted = events["directory.person.deleted"]["payload"]
    assert deleted["reason"] == "delta" and deleted["person"]["jointure"] == "2"
    with e.connect() as conn:
        assert queries.person(conn, "2") is None
        assert [p["jointure"] for p in queries.members(conn, "S1", class_code="3B")] == ["1"]


def test_delta_modify_with_no_value_clears_the_attribute(sqlite_engine, tmp_path):
    """A modification replacing an attribute by no value (`<value/>`) removes it: the e-mail goes, record and event."""
    e = sqlite_engine
    run(e, aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", aaf.pupil("1", mail="eleve1@ac-test.fr")))
    clear_outbox(e)
    report = run(e, aaf.write(tmp_path, "P_Delta_20260902_Eleve_0000.xml", aaf.modify("Eleve", "1", mail=[])))
    assert report.ok and report.totals["Eleve"].updated == 1
    [event] = [ev for ev in outbox_events(e) if ev["type"] == "directory.person.updated"]
    assert event["payload"]["changes"]["email"] == {"before": "eleve1@ac-test.fr", "after": None}
    assert event["payload"]["changes"]["attributes.mail"] == {"before": ["eleve1@ac-test.fr"], "after": None}
    contracts.validate_event(event)  # what its consumers check
    with e.connect() as conn:
        assert queries.person(conn, "1")["email"] is None
    again = run(e, aaf.write(tmp_path, "P_Delta_20260903_Eleve_0000.xml", aaf.modify("Eleve", "1", mail=[])))
    assert again.ok and again.totals["Eleve"].unchanged == 1 and again.totals["Eleve"].updated == 0


def test_complet_deletes_absent_persons_of_covered_structures_only(sqlite_engine, tmp_path):
    e = sqlite_engine
    pupils = [aaf.pupil(str(i)) for i in range(1, 21)] + [aaf.pupil("900", structure="S2")]
    run(e, aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", *pupils))
    clear_outbox(e)
    # the next Complet covers S1 only and lacks pupil 20 (5 %): 20 goes, S2's pupil stays
    report = run(e, aaf.write(tmp_path, "P_Complet_20260902_Eleve_0000.xml", *pupils[:19]))
    assert report.ok and report.totals["Eleve"].deleted == 1
    deleted = [ev for ev in outbox_events(e) if ev["type"] == "directory.person.deleted"]
    assert [(d["payload"]["jointure"], d["payload"]["reason"]) for d in deleted] == [("20", "absent-from-complet")]
    with e.connect() as conn:
        assert queries.person(conn, "900") is not None


def test_truncated_complet_is_refused_and_changes_nothing(engine, tmp_path):
    pupils = [aaf.pupil(str(i)) for i in range(1, 21)]
    run(engine, aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", *pupils))
    before = snapshot(engine)
    # 5 of 20 missing (25 % > 10 %), plus a new pupil and a new school that must not go in either
    files = [aaf.write(tmp_path, "P_Complet_20260902_Eleve_0000.xml", *pupils[:15], aaf.pupil("77")),
             aaf.write(tmp_path, "P_Complet_20260902_EtabEducNat_0000.xml", aaf.school("S9", "0999999Z"))]
    report = run(engine, *files)
    assert report.status == "refused" and not report.ok
    assert "structure S1" in report.message and "5 of 21" in report.message
    assert snapshot(engine) == before
    # a larger share allowed, or --force, applies it
    assert run(engine, *files, max_delete_share=0.5).totals["Eleve"].deleted == 5


def test_force_applies_a_large_deletion(sqlite_engine, tmp_path):
    pupils = [aaf.pupil(str(i)) for i in range(1, 11)]
    run(sqlite_engine, aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", *pupils))
    report = run(sqlite_engine, aaf.write(tmp_path, "P_Complet_20260902_Eleve_0000.xml", *pupils[:2]), force=True)
    assert report.ok and report.totals["Eleve"].deleted == 8


def test_reference_to_a_relative_arriving_later_is_kept_and_resolved(sqlite_engine, tmp_path):
    e = sqlite_engine
    first = run(e, aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", aaf.pupil("1", relatives=["R1"])))
    assert first.ok and first.unresolved["relatives"] == 1
    assert any("R1" in w.message for w in first.warnings)
    with e.connect() as conn:
        assert queries.legal_guardians(conn, "1") == []
    second = run(e, aaf.write(tmp_path, "P_Complet_20260901_PersRelEleve_0000.xml", aaf.relative("R1")))
    assert second.ok and second.unresolved["relatives"] == 0
    with e.connect() as conn:
        assert [g["jointure"] for g in queries.legal_guardians(conn, "1")] == ["R1"]


def test_staff_lookup_by_email_and_first_degree_names(sqlite_engine, tmp_path):
    run(sqlite_engine, aaf.write(
        tmp_path, "P_Complet_20260901_PersEducNat_0000.xml",
        aaf.add("PersEducNat", "T1", ENTPersonJointure="T1", sn="Durand", givenName="Zoé",
                mail="Zoe.Durand@ac-test.fr", ENTPersonStructRattach="S1",
                ENTPersonFonctions="S1$DOC$DOCUMENTATION$L0100$DOC"),
        aaf.add("PersEducNat", "T2", ENTPersonJointure="T2", ENTPersonNom="Petit", ENTPersonPrenom="Léo")))
    with sqlite_engine.connect() as conn:
        found = queries.by_email(conn, "zoe.durand@AC-TEST.fr")
        assert [p["jointure"] for p in found] == ["T1"] and found[0]["profiles"] == ["National_DOC"]
        first_degree = queries.person(conn, "T2")
        assert (first_degree["last_name"], first_degree["first_name"]) == ("Petit", "Léo")


def test_parent_matching_ignores_case_and_accents(sqlite_engine, tmp_path):
    run(sqlite_engine,
        aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", aaf.pupil("1", relatives=["R1"])),
        aaf.write(tmp_path, "P_Complet_20260901_PersRelEleve_0000.xml", aaf.relative("R1", "Dupré", "Hélène")),
        aaf.write(tmp_path, "P_Complet_20260901_EtabEducNat_0000.xml", aaf.school("S1", "0123456A")))
    with sqlite_engine.connect() as conn:
        assert [p["jointure"] for p in queries.parents_of_pupil(conn, "R1", "0123456a", "DUPRE", "helene")] == ["R1"]
        assert queries.parents_of_pupil(conn, "R1", "0123456A", "Durand", "Hélène") == []
        assert [p["jointure"] for p in queries.by_ine(conn, "ine1")] == ["1"]
        assert [p["jointure"] for p in queries.members(conn, "0123456A")] == ["1"]


def test_same_record_twice_in_one_run_keeps_the_last(sqlite_engine, tmp_path):
    """A later Complet in the same run wins, also when parsed in worker processes."""
    e = sqlite_engine
    base = [aaf.pupil(str(i), klass="3A") for i in range(1, 30)]
    run(e, aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", *base))
    day2 = aaf.write(tmp_path, "P_Complet_20260902_Eleve_0000.xml", aaf.pupil("1", klass="3B"), *base[1:])
    day3 = aaf.write(tmp_path, "P_Complet_20260903_Eleve_0000.xml", *base)  # back to 3A
    report = run(e, day2, day3, workers=2, batch_size=7)
    assert report.ok
    with e.connect() as conn:
        classes = [m["code"] for m in queries.person(conn, "1")["memberships"] if m["kind"] == "class"]
    assert classes == ["3A"]


@pytest.mark.parametrize("workers", [1, 2])
def test_a_records_events_are_written_in_the_order_its_changes_were_applied(sqlite_engine, tmp_path, workers):
    """Parsers pack the `.created` events of their batch; the others come from the importer: one order all the same."""
    e = sqlite_engine
    run(e, aaf.write(tmp_path, "P_Complet_20260901_Eleve_0000.xml", aaf.pupil("1"), aaf.pupil("2")))
    clear_outbox(e)
    delta = aaf.write(tmp_path, "P_Delta_20260902_Eleve_0000.xml",
                      aaf.delete("Eleve", "1"), aaf.pupil("1", klass="3B"),  # gone, then back: two batches
                      aaf.pupil("9"), aaf.modify("Eleve", "9", sn="Autre"),  # new, then changed: one batch
                      aaf.modify("Eleve", "2", sn="Autre"))
    report = run(e, delta, workers=workers, batch_size=1 if workers == 1 else 2, chunk_bytes=400)
    assert report.ok, report.summary_lines()
    order: dict[str, list[str]] = {}
    for ev in outbox_events(e)[:-1]:
        p = ev["payload"]
        order.setdefault(p["person"]["jointure"] if "person" in p else p["jointure"], []).append(ev["type"][10:])
    assert order == {"1": ["person.deleted", "person.created"], "2": ["person.updated"],
                     "9": ["person.created", "person.updated"]}


def test_parallel_and_inline_imports_agree(tmp_path, aaf_sample):
    results = []
    for workers in (1, 2):
        engine = make_engine(f"sqlite:///{tmp_path / f'w{workers}.db'}")
        upgrade(engine)
        report = DirectoryImporter(engine, "test", ImportOptions(workers=workers)).run([aaf_sample])
        with engine.connect() as conn:
            rows = conn.execute(select(tables.person.c.jointure, tables.person.c.record_hash)
                                .order_by(tables.person.c.jointure)).all()
            n_members = conn.execute(select(func.count()).select_from(tables.membership)).scalar()
        results.append(({f: c.added for f, c in report.totals.items()}, rows, n_members))
        engine.dispose()
    assert results[0] == results[1]
