"""Files cut into pieces for parallel parsing read exactly as whole files do."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

from services.directory.adapters.aaf.pieces import ChunkUnreadable, FileChunks
from services.directory.adapters.aaf.reader import AafFileError, RawRecord, iter_elements
from services.directory.importing.options import ImportOptions
from services.directory.importing.run import DirectoryImporter
from tests import aaf_builder as aaf


def whole(path: Path) -> list[tuple[int, bytes]]:
    return [(r.line, etree.tostring(r.element, with_tail=False)) for r in iter_elements(path)
            if isinstance(r, RawRecord)]


def pieced(path: Path, chunk_bytes: int) -> list[tuple[int, bytes]]:
    chunks = FileChunks(path, chunk_bytes)
    out = []
    # Two readers taking every other piece, as two worker processes do.
    for reader_no in (0, 1):
        reader = FileChunks(path, chunk_bytes)
        for j in range(reader_no, chunks.count, 2):
            out.extend((j, r.line, etree.tostring(r.element, with_tail=False)) for r in reader.elements(j))
        reader.close()
    return [(line, xml) for _j, line, xml in sorted(out, key=lambda t: (t[0], t[1]))]


@pytest.mark.parametrize("chunk_bytes", [700, 4096, 65536])
def test_pieces_of_the_real_sample_give_the_same_records_and_lines(aaf_sample, chunk_bytes):
    path = next(aaf_sample.glob("*_Eleve_0001.xml"))
    expected = whole(path)
    assert len(expected) > 100 and FileChunks(path, chunk_bytes).count > 10
    assert pieced(path, chunk_bytes) == expected


def test_latin1_file_in_pieces(tmp_path):
    body = "".join(aaf.pupil(str(i), sn="Ñuñez-Gaël") for i in range(40))
    path = tmp_path / "P_Complet_20260901_Eleve_0000.xml"
    path.write_bytes(aaf.HEAD.replace("UTF-8", "ISO-8859-1").encode("latin-1")
                     + body.encode("latin-1") + b"</ficAlimMENESR>\n")
    assert pieced(path, 1500) == whole(path)
    first = next(iter_elements(path)).read()
    assert first.attributes["sn"] == ["Ñuñez-Gaël"]


@pytest.mark.parametrize("damage", ["comment", "malformed", "truncated", "namespace"])
def test_a_piece_that_does_not_parse_alone_sends_the_file_to_the_whole_reader(sqlite_engine, tmp_path, damage):
    records = [aaf.pupil(str(i)) for i in range(60)]
    if damage == "comment":  # a cut lands inside a comment holding a start tag: the file itself is fine
        records[30] = "<!-- " + "<addRequest> " * 200 + "-->\n" + records[30]
    text = aaf.HEAD + "".join(records) + "</ficAlimMENESR>\n"
    if damage == "malformed":
        text = text.replace("</attributes>", "</attribute>", 45).replace("</attribute>", "</attributes>", 44)
    if damage == "namespace":
        text = text.replace("<ficAlimMENESR>", '<ficAlimMENESR xmlns="urn:example">')
    data = text.encode()
    if damage == "truncated":
        data = data[: len(data) * 2 // 3]
    path = tmp_path / "P_Complet_20260901_Eleve_0000.xml"
    path.write_bytes(data)

    chunks = FileChunks(path, 2000)
    with pytest.raises(ChunkUnreadable):
        for j in range(chunks.count):
            list(chunks.elements(j))
    try:
        inline = [(line, xml) for line, xml in whole(path)]
        inline_error = None
    except AafFileError as exc:
        inline, inline_error = None, (exc.line, exc.reason)

    report = DirectoryImporter(sqlite_engine, "test", ImportOptions(workers=2, chunk_bytes=2000)).run([path])
    [result] = report.files
    if inline_error:
        assert (result.status, result.line, result.error) == ("failed", *inline_error)
        assert report.totals["Eleve"].added == 0
    else:
        assert result.status == "imported"
        assert report.totals["Eleve"].added == len(inline) == (0 if damage == "namespace" else 60)


def raw_of(path: Path, chunk_bytes: int) -> dict[str, bytes | None]:
    """Each record's bytes as its piece cut them out (None where it could not), by identifier."""
    chunks = FileChunks(path, chunk_bytes)
    out = {}
    for j in range(chunks.count):
        for r in chunks.elements(j):
            out[r.read().identifier] = r.raw
    chunks.close()
    return out


def test_pieces_hash_each_record_by_its_own_bytes_wherever_the_cuts_fall(tmp_path):
    records = [aaf.pupil(str(i), sn=f"Nom{i}") for i in range(60)]
    path = tmp_path / "P_Complet_20260901_Eleve_0000.xml"
    path.write_text(aaf.HEAD + "".join(records) + "</ficAlimMENESR>\n", encoding="utf-8")
    small, large = raw_of(path, 1500), raw_of(path, 7000)
    assert len(small) == 60 and small == large
    for i in range(59):  # a record's bytes, to the next record
        assert small[str(i)] == records[i].encode()
    assert small["59"] == (records[59] + "</ficAlimMENESR>\n").encode()

    # One record changed: its hash alone changes.
    records[31] = aaf.pupil("31", sn="Autre")
    path.write_text(aaf.HEAD + "".join(records) + "</ficAlimMENESR>\n", encoding="utf-8")
    changed = raw_of(path, 1500)
    assert [k for k in small if small[k] != changed[k]] == ["31"]


@pytest.mark.parametrize("odd", ["comment", "cdata", "pi", "nested", "latin1"])
def test_records_are_serialized_to_be_hashed_where_their_bytes_cannot_be_trusted(tmp_path, odd):
    records = [aaf.pupil(str(i)) for i in range(20)]
    head = aaf.HEAD
    if odd == "comment":
        records[10] = "<!-- <addRequest> -->\n" + records[10]
    if odd == "cdata":
        records[10] = records[10].replace("<value>S1</value>", "<value><![CDATA[S1]]></value>", 1)
    if odd == "pi":
        records[10] = "<?note <addRequest> ?>\n" + records[10]
    if odd == "nested":
        records[10] = records[10].replace("</addRequest>", "<extra>" + aaf.pupil("inner") + "</extra></addRequest>")
    if odd == "latin1":
        head = head.replace("UTF-8", "ISO-8859-1")
    path = tmp_path / "P_Complet_20260901_Eleve_0000.xml"
    path.write_text(head + "".join(records) + "</ficAlimMENESR>\n", encoding="utf-8")
    chunks = FileChunks(path, 1 << 20)
    assert chunks.count == 1
    chunks.count = 2  # read as a first piece, the way a large file's is
    items = list(chunks.elements(0))
    chunks.close()
    assert len(items) == 21 if odd == "nested" else 20
    for r in items:  # none with bytes that are not its own
        assert r.raw is None or r.raw.startswith(etree.tostring(r.element, with_tail=False)[:11]) and \
            r.raw.count(b"<addRequest") == 1
    if odd != "nested":
        assert all(r.raw is None for r in items)
    else:  # up to the record holding another one
        assert [r.raw is not None for r in items] == [True] * 10 + [False] * 11
