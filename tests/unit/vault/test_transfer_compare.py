"""The comparison rules of `relais vault verify` (plain Python): what counts as lost, unverified, extra."""
from __future__ import annotations

from services.vault.transfer.compare import Entry, SideError, compare, differences

DOC = "documents"


def e(sha="a" * 64, size=10, path="Cours/td.pdf", kind="file", metadata=None, problem=None) -> Entry:
    return Entry(path, kind, sha, size, {"media_type": "application/pdf"} if metadata is None else metadata, problem)


def key(item="Cours/td.pdf", person="2605692", vertical=DOC):
    return (person, vertical, item)


def verdicts(cmp):
    return sorted((f.verdict, f.where, f.problem, f.item) for f in cmp.findings)


def test_the_same_everywhere_is_nothing_lost():
    cmp = compare(source={key(): e()}, vault={key(): e()}, target={key(): e()},
                  source_verticals=[DOC], target_verticals=[DOC])
    assert cmp.ok and cmp.findings == [] and cmp.sides == ("source", "vault", "target")
    assert cmp.totals() == {DOC: {s: {"items": 1, "bytes": 10} for s in ("source", "vault", "target")}}


def test_missing_and_altered_items_are_lost_and_named():
    source = {key("a"): e(path="a"), key("b"): e(path="b"), key("c"): e(path="c"), key("d"): e(path="d")}
    vault = {key("b"): e(path="b"), key("c"): e(path="c", sha="b" * 64, size=11), key("d"): e(path="d")}
    target = {key("b"): e(path="b", metadata={}), key("d"): e(path="d2")}
    cmp = compare(source=source, vault=vault, target=target, source_verticals=[DOC], target_verticals=[DOC])
    assert verdicts(cmp) == [
        ("lost", "target", "altered", "b"),  # its media_type was dropped
        ("lost", "target", "altered", "d"),  # moved
        ("lost", "target", "missing", "a"),  # the source's, since the vault has nothing
        ("lost", "target", "missing", "c"),
        ("lost", "vault", "altered", "c"),
        ("lost", "vault", "missing", "a"),
    ]
    assert cmp.lost == 6 and not cmp.ok
    detail = {(f.where, f.item): f.detail for f in cmp.findings}
    assert detail[("vault", "c")] == ("10 bytes in the source, 11 in the vault; "
                                      "sha256 aaaaaaaaaaaaaaaa… in the source, bbbbbbbbbbbbbbbb… in the vault")
    assert detail[("target", "b")] == "metadata media_type differ"
    assert detail[("target", "d")] == "path 'd' in the vault, 'd2' in the target"
    assert cmp.owners[("2605692", DOC)].lost == 6


def test_a_target_may_add_metadata_but_the_vault_must_equal_the_source():
    richer = {"media_type": "application/pdf", "etag": "x"}
    assert differences(e(), e(metadata=richer), metadata="kept") == []
    assert differences(e(), e(metadata=richer), metadata="equal") == ["metadata etag differ"]
    assert differences(e(kind="folder"), e(), metadata="kept") == ["kind 'folder' in the before, 'file' in the after"]
    assert differences(e(sha=None), e(), metadata="kept") == []  # not read: nothing to compare


def test_extra_items_are_reported_not_lost():
    cmp = compare(source={}, vault={key("gone"): e(path="gone")}, target={key("gone"): e(path="gone"), key("new"): e()},
                  source_verticals=[DOC], target_verticals=[DOC])
    assert verdicts(cmp) == [("extra", "target", "only-here", "new"), ("extra", "vault", "only-here", "gone")]
    assert cmp.ok and cmp.lost == 0 and cmp.extra == 2


def test_what_cannot_be_listed_or_read_is_unverified_or_lost_never_silent():
    vault = {key("a"): e(path="a"), key("b", person="2605693"): e(path="b")}
    cmp = compare(source={key("a"): e(path="a", sha=None, problem="read timeout")}, vault=vault,
                  target={key("a"): e(path="a", sha=None, problem="HTTP 500")},
                  errors=[SideError("source", "2605693", DOC, "PROPFIND answer: not well-formed"),
                          SideError("target", None, DOC, "cannot list the owners")],
                  source_verticals=[DOC], target_verticals=[DOC])
    assert verdicts(cmp) == [
        ("lost", "target", "unreadable", "a"),
        ("unverified", "source", "not-listed", "b"),
        ("unverified", "source", "unreadable", "a"),
        ("unverified", "target", "not-listed", "b"),
    ]
    assert not cmp.ok and cmp.unverified == 3
    assert any("PROPFIND answer: not well-formed" in f.detail for f in cmp.findings)


def test_a_vault_row_without_its_content_is_lost():
    cmp = compare(vault={key(): e(problem="its content aaaa is not in the vault store")})
    assert verdicts(cmp) == [("lost", "vault", "content-missing", "Cours/td.pdf")]
    assert cmp.sides == ("vault",)


def test_sides_only_compare_the_verticals_their_connector_handles():
    vault = {key(vertical="calendars", item="perso/a.ics"): e(path="perso/a.ics")}
    cmp = compare(source={}, vault=vault, target={}, source_verticals=[DOC], target_verticals=[DOC])
    assert cmp.ok and cmp.findings == []
