"""Every bad input gets a clear error naming what and where, and loses nothing good."""

from __future__ import annotations

from services.directory.adapters import queries
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from tests import aaf_builder as aaf


def run(engine, *paths):
    return DirectoryImporter(engine, "test", ImportOptions(validate_events=True)).run(list(paths))


def test_bad_records_are_rejected_and_the_rest_goes_in(sqlite_engine, tmp_path):
    f = aaf.write(
        tmp_path, "P_Complet_20260901_Eleve_0000.xml",
        aaf.pupil("1"),
        aaf.add("Eleve", None, sn="SansJointure"),
        aaf.pupil("3", ENTEleveClasses="S1"),  # broken $ format
        aaf.add("Alien", "4", sn="X"),  # unknown family
        aaf.pupil("5"),
    )
    report = run(sqlite_engine, f)
    assert report.ok and report.totals["Eleve"].added == 2 and report.totals["Eleve"].rejected == 3
    reasons = {r.record_id: r.reason for r in report.rejected}
    assert "missing identifier" in reasons[None]
    assert "ENTEleveClasses" in reasons["3"] and "'$'" in reasons["3"]
    assert "unknown family 'Alien'" in reasons["4"]
    assert all(r.file == str(f) and r.line for r in report.rejected)
    with sqlite_engine.connect() as conn:
        assert queries.person(conn, "1") and queries.person(conn, "5") and not queries.person(conn, "3")


def test_a_record_with_bytes_that_are_not_utf8_is_rejected_alone(sqlite_engine, tmp_path):
    text = (aaf.HEAD + aaf.pupil("1") + aaf.pupil("2", sn="PLACEHOLDER") + aaf.pupil("3") + "</ficAlimMENESR>\n")
    raw = text.encode("utf-8").replace(b"PLACEHOLDER", b"Lef\xe8vre")  # latin-1 byte in a UTF-8 file
    path = tmp_path / "P_Delta_20260901_Eleve_0000.xml"
    path.write_bytes(raw)
    report = run(sqlite_engine, path)
    assert report.ok and report.totals["Eleve"].added == 2
    [rejection] = report.rejected
    assert rejection.record_id == "2" and "UTF-8" in rejection.reason and rejection.line


def test_truncated_or_malformed_file_changes_nothing_and_others_go_in(sqlite_engine, tmp_path):
    good = aaf.write(tmp_path, "P_Delta_20260901_Eleve_0000.xml", aaf.pupil("1"))
    full = (aaf.HEAD + aaf.pupil("2") + aaf.pupil("3") + "</ficAlimMENESR>\n").encode()
    truncated = tmp_path / "P_Delta_20260901_Eleve_0001.xml"
    truncated.write_bytes(full[: full.index(b"<addRequest", len(aaf.HEAD) + 10) + 200])
    malformed = tmp_path / "P_Delta_20260901_Eleve_0002.xml"
    malformed.write_bytes(full.replace(b"</attributes>", b"</attribute>", 1))
    report = run(sqlite_engine, good, truncated, malformed)
    status = {f.path: f for f in report.files}
    assert status[str(good)].status == "imported"
    for bad in (truncated, malformed):
        failed = status[str(bad)]
        assert failed.status == "failed" and failed.line and "malformed XML" in failed.error
    assert not report.ok and report.totals["Eleve"].added == 1
    with sqlite_engine.connect() as conn:
        assert queries.person(conn, "1") and not queries.person(conn, "2") and not queries.person(conn, "3")


def test_billion_laughs_and_xxe_are_refused_not_obeyed(sqlite_engine, tmp_path):
    laughs = tmp_path / "P_Delta_20260901_Eleve_0000.xml"
    laughs.write_text('<?xml version="1.0"?>\n<!DOCTYPE ficAlimMENESR [\n<!ENTITY a "aaaaaaaaaa">\n'
                      '<!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">\n<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;">\n]>\n'
                      "<ficAlimMENESR>" + aaf.pupil("1", sn="&c;") + "</ficAlimMENESR>\n")
    xxe = tmp_path / "P_Delta_20260901_Eleve_0001.xml"
    xxe.write_text('<?xml version="1.0"?>\n<!DOCTYPE ficAlimMENESR [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>\n'
                   "<ficAlimMENESR>" + aaf.pupil("2", sn="&xxe;") + "</ficAlimMENESR>\n")
    external_only = aaf.write(tmp_path, "P_Delta_20260901_Eleve_0002.xml", aaf.pupil("3"))  # DTD named, absent
    report = run(sqlite_engine, laughs, xxe, external_only)
    status = {f.path: f for f in report.files}
    for bad in (laughs, xxe):
        assert status[str(bad)].status == "failed" and "entit" in status[str(bad)].error
    assert status[str(external_only)].status == "imported"
    with sqlite_engine.connect() as conn:
        dump = b"".join(r[0] for r in conn.exec_driver_sql("SELECT data FROM dir_person"))
    assert b"root:" not in dump and b"aaaaaaaaaa" not in dump
