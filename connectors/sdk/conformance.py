"""The connector conformance kit: a pytest plugin a vendor runs against its own connector.

Usage (see connectors/README.md)::

    from connectors.sdk.conformance import ConformancePair, ConnectorConformance

    class TestMyConnector(ConnectorConformance):
        @pytest.fixture
        def conformance_pair(self, my_server):
            yield ConformancePair(exporter=MyExporter(...), importer=MyImporter(...))

The plugin (:mod:`connectors.sdk.pytest_plugin`) is registered through the ``pytest11`` entry
point of the ``relais-connector-sdk`` distribution, so it is active wherever the SDK is installed;
it adds the ``--conformance-examples`` option. This module needs the kit's extra
(``pip install 'relais-connector-sdk[kit]'``: pytest and Hypothesis).
Each generated item set goes to a fresh owner (:attr:`ConformancePair.new_owner`), so one
target server serves every example.

What it proves:

* round trip: items imported into owner A then exported (E1) come back with the same ids,
  paths, kinds, bytes (or equivalent content where the target re-serialises, with
  ``exact_bytes=False``), checksums that match the bytes, and the metadata given; E1
  imported into owner B and exported again (E2) is identical to E1 in ids, paths, bytes,
  checksums and metadata; records validate against the vertical's schema; folders are
  listed before their contents; walking the pages by cursor lists each item once;
* idempotence: importing the same items again reports every one ``unchanged`` and the
  export holds no duplicate; a changed item reports ``updated``;
* incremental sync (:meth:`Exporter.changes`): a first sync names every item listed; asked again
  with its state, nothing that has an ETag is reported; a changed item is; the state is plain
  JSON; a connector declaring ``sync-collection`` overrides ``changes``;
* bad input: a lying checksum, an unsafe id, a wrong vertical, metadata outside the schema,
  contents the target must refuse (``invalid_contents``) are refused with an error naming
  the connector and the item, and nothing is written; fetching a missing item is an error.
"""
from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

import pytest

try:
    from hypothesis import HealthCheck, given, settings
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - depends on what is installed
    raise ImportError("the conformance kit needs Hypothesis: pip install 'relais-connector-sdk[kit]'") from exc

from . import registry
from .errors import BadItem, ConnectorError
from .interfaces import Exporter, Importer, Outcome
from .items import VERTICALS, BytesContent, Item, ItemRef
from .pytest_plugin import DEFAULT_EXAMPLES
from .schemas import check_record
from .strategies import items_for, sample_file
from .sync import SYNC_COLLECTION, SYNC_MODES, known_etags


def _new_owner() -> str:
    return f"conformance-{uuid.uuid4().hex[:12]}"


@dataclass
class ConformancePair:
    """What the ``conformance_pair`` fixture yields: a connector's two halves on one target.

    ``new_owner`` returns an owner with no data at the target (default: a random name; the
    importer must create the owner's space when it writes the first item, or the fixture must
    give owners that exist). ``exact_bytes=False`` says the target re-serialises content
    (Radicale does, for iCalendar and vCard): then ``same_content`` decides equivalence of
    what was imported and what comes back, and the E1 -> E2 round trip must still be exact.
    ``items`` overrides the generated item sets (a function of the owner);
    ``invalid_contents`` are bodies the target must refuse (not iCalendar, say); ``sample``
    overrides the one valid file item the bad-input checks start from (a function of the owner).
    """

    exporter: Exporter
    importer: Importer
    new_owner: Callable[[], str] = _new_owner
    exact_bytes: bool = True
    same_content: Callable[[bytes, bytes], bool] | None = None
    items: Callable[[str], st.SearchStrategy[list[Item]]] | None = None
    invalid_contents: Sequence[bytes] = ()
    sample: Callable[[str], Item] | None = None
    examples: int | None = None
    vertical: str = field(init=False)

    def __post_init__(self) -> None:
        if self.exporter.vertical != self.importer.vertical:
            raise ValueError(f"exporter ({self.exporter.vertical}) and importer ({self.importer.vertical}) "
                             "must handle the same vertical")
        self.vertical = self.exporter.vertical

    def strategy(self, owner: str) -> st.SearchStrategy[list[Item]]:
        return self.items(owner) if self.items else items_for(self.vertical, owner)


def _examples(request: pytest.FixtureRequest, pair: ConformancePair) -> int:
    opt = request.config.getoption("--conformance-examples", default=None)
    return opt or pair.examples or DEFAULT_EXAMPLES


def _run(request: pytest.FixtureRequest, pair: ConformancePair, body: Callable[[list[Item]], None]) -> None:
    @settings(max_examples=_examples(request, pair), deadline=None, database=None,
              suppress_health_check=list(HealthCheck), print_blob=True)
    @given(data=st.data())
    def prop(data: st.DataObject) -> None:
        owner = pair.new_owner()
        body(data.draw(pair.strategy(owner), label="items"))

    prop()


# -- helpers a vendor may reuse in its own tests -------------------------------------------
def export_all(exporter: Exporter, owner: str) -> list[Item]:
    """Every item of ``owner``, in listing order, content in memory."""
    return [exporter.fetch(ref) for ref in exporter.iter_refs(owner)]


def import_all(importer: Importer, items: Iterable[Item]) -> dict[str, Outcome]:
    """Put each item (errors raise); returns id -> outcome."""
    return {item.id: importer.put(item) for item in items}


def rehome(items: Iterable[Item], owner: str) -> list[Item]:
    """The same items for another owner."""
    return [Item(owner=owner, vertical=i.vertical, id=i.id, path=i.path, content=i.content, kind=i.kind,
                 metadata=dict(i.metadata)) for i in items]


def _check_pages(exporter: Exporter, owner: str) -> None:
    """Walking the pages by hand, each cursor passed as a plain string, gives what iter_refs gives."""
    seen: list[tuple[str, str]] = []
    cursor: str | None = None
    pages = 0
    while True:
        page = exporter.list(owner, cursor)
        assert page.next_cursor is None or isinstance(page.next_cursor, str), "a cursor must be a string"
        seen.extend((r.id, r.kind) for r in page.items)
        pages += 1
        assert pages < 100_000, "the listing never ends"
        if page.next_cursor is None:
            break
        cursor = str(page.next_cursor)
    assert len(seen) == len(set(seen)), "the pages list an item twice"
    assert seen == [(r.id, r.kind) for r in exporter.iter_refs(owner)]


def _by_id(items: Iterable[Item]) -> dict[str, Item]:
    out: dict[str, Item] = {}
    for item in items:
        assert item.id not in out, f"the export lists {item.id!r} twice"
        out[item.id] = item
    return out


def _check_integrity(exported: Sequence[Item], vertical: str) -> None:
    seen: set[str] = set()
    for item in exported:
        data = item.content.read()
        assert hashlib.sha256(data).hexdigest() == item.sha256, f"{item.id}: sha256 does not match the bytes"
        assert len(data) == item.size, f"{item.id}: size does not match the bytes"
        assert item.vertical == vertical
        check_record(vertical, item.record())
        parent = item.path.rsplit("/", 1)[0] if "/" in item.path else None
        if parent is not None and any(o.kind == "folder" and o.path == parent for o in exported):
            assert parent in seen, f"{item.path!r} is listed before its folder {parent!r}"
        seen.add(item.path)


def assert_same_items(expected: Sequence[Item], actual: Sequence[Item], *, exact: bool = True,
                      same_content: Callable[[bytes, bytes], bool] | None = None,
                      metadata: str = "equal") -> None:
    """Same ids, paths, kinds; bytes (or equivalent content), sizes and checksums when ``exact``;
    metadata ``equal`` or, with ``metadata="subset"``, each expected field present and equal."""
    want, got = _by_id(expected), _by_id(actual)
    assert sorted(got) == sorted(want), (f"ids differ: missing {sorted(set(want) - set(got))}, "
                                         f"unexpected {sorted(set(got) - set(want))}")
    for key, w in want.items():
        g = got[key]
        assert (g.path, g.kind) == (w.path, w.kind), f"{key}: path/kind {g.path!r}/{g.kind} != {w.path!r}/{w.kind}"
        if exact:
            assert g.content.read() == w.content.read(), f"{key}: bytes differ"
            assert (g.sha256, g.size) == (w.sha256, w.size), f"{key}: sha256/size differ"
        else:
            assert (same_content or bytes.__eq__)(w.content.read(), g.content.read()), f"{key}: content differs"
        if metadata == "equal":
            assert dict(g.metadata) == dict(w.metadata), f"{key}: metadata {dict(g.metadata)} != {dict(w.metadata)}"
        else:
            for field_, value in w.metadata.items():
                assert g.metadata.get(field_) == value, (f"{key}: metadata {field_!r} came back as "
                                                         f"{g.metadata.get(field_)!r}, was {value!r}")


class ConnectorDeclaration:
    """The kit's structural checks: subclass it with fixtures ``connector_name`` and ``connector_config``
    (a configuration mapping that builds the connector; nothing is sent to the peer).

    They hold once the package declares its connector (``[project.entry-points."relais.connectors"]``)
    and is installed (``pip install -e .``), before any call to the vendor's API works."""

    @pytest.fixture
    def connector_name(self) -> str:  # pragma: no cover - the vendor overrides it
        pytest.fail("define a connector_name fixture returning the name in your entry point")

    @pytest.fixture
    def connector_config(self) -> Mapping[str, Any]:  # pragma: no cover - the vendor overrides it
        pytest.fail("define a connector_config fixture returning a configuration mapping")

    def test_the_entry_point_declares_the_connector(self, connector_name: str) -> None:
        declared = {ep.name: ep for ep in entry_points(group=registry.ENTRY_POINT_GROUP)}
        assert connector_name in declared, (
            f"no entry point {connector_name!r} in group {registry.ENTRY_POINT_GROUP!r}: declare it in pyproject.toml "
            f'([project.entry-points."{registry.ENTRY_POINT_GROUP}"] {connector_name} = "your_package:CONNECTOR") '
            "and install the package (pip install -e .)")
        assert connector_name not in registry.BUILTIN, f"{connector_name!r} is a name Relais uses already"
        info = declared[connector_name].load()
        assert isinstance(info, registry.ConnectorInfo), f"{declared[connector_name].value} is not a ConnectorInfo"
        assert info.name == connector_name, (f"the ConnectorInfo is named {info.name!r}, "
                                             f"the entry point {connector_name!r}")

    def test_the_connector_says_what_it_does(self, connector_name: str) -> None:
        info = registry.get(connector_name)
        assert info.verticals and set(info.verticals) <= set(VERTICALS), (
            f"verticals {info.verticals} must be some of {', '.join(VERTICALS)}")
        assert info.summary.strip(), "give a one-line summary (relais connectors list shows it)"
        assert info.exporter is not None or info.importer is not None, "neither an exporter nor an importer"
        for option, meaning in (info.options or {}).items():
            assert isinstance(option, str) and isinstance(meaning, str) and meaning.strip(), (
                f"option {option!r}: say what it means")

    def test_it_builds_from_a_configuration(self, connector_name: str, connector_config: Mapping[str, Any]) -> None:
        info = registry.get(connector_name)
        for vertical in info.verticals:
            halves: list[Exporter | Importer] = []
            if info.exporter is not None:
                halves.append(registry.open_exporter(connector_name, connector_config, vertical))
            if info.importer is not None:
                halves.append(registry.open_importer(connector_name, connector_config, vertical))
            for half in halves:
                kind = "exporter" if isinstance(half, Exporter) else "importer"
                assert isinstance(half, Exporter | Importer), f"{type(half).__name__} is neither Exporter nor Importer"
                assert half.connector == connector_name, (
                    f"the {kind} calls itself {half.connector!r}, not {connector_name!r} (errors name it)")
                assert half.vertical == vertical, f"the {kind} for {vertical} handles {half.vertical}"
                half.close()


class ConnectorConformance:
    """Subclass this in a test module and provide a ``conformance_pair`` fixture."""

    @pytest.fixture
    def conformance_pair(self) -> ConformancePair:  # pragma: no cover - the vendor overrides it
        pytest.fail("define a conformance_pair fixture yielding a ConformancePair")

    # -- round trip ------------------------------------------------------------------------
    def test_round_trip(self, conformance_pair: ConformancePair, request: pytest.FixtureRequest) -> None:
        pair = conformance_pair

        def body(items: list[Item]) -> None:
            owner_a = items[0].owner
            outcomes = import_all(pair.importer, items)
            assert set(outcomes.values()) == {Outcome.CREATED}, f"first import into an empty owner: {outcomes}"
            e1 = export_all(pair.exporter, owner_a)
            _check_integrity(e1, pair.vertical)
            _check_pages(pair.exporter, owner_a)
            assert_same_items(items, e1, exact=pair.exact_bytes, same_content=pair.same_content, metadata="subset")

            owner_b = pair.new_owner()
            outcomes = import_all(pair.importer, rehome(e1, owner_b))
            assert set(outcomes.values()) <= {Outcome.CREATED}, f"import of E1 into an empty owner: {outcomes}"
            e2 = export_all(pair.exporter, owner_b)
            _check_integrity(e2, pair.vertical)
            assert_same_items(e1, e2)

            again = import_all(pair.importer, rehome(e1, owner_b))
            assert set(again.values()) <= {Outcome.UNCHANGED}, f"re-import changed something: {again}"
            assert_same_items(e2, export_all(pair.exporter, owner_b))

        _run(request, pair, body)

    def test_import_twice_creates_no_duplicates(self, conformance_pair: ConformancePair,
                                                request: pytest.FixtureRequest) -> None:
        pair = conformance_pair

        def body(items: list[Item]) -> None:
            owner = items[0].owner
            report1 = pair.importer.import_items(items, stop_on_error=True)
            report2 = pair.importer.import_items(items, stop_on_error=True)
            assert report1.created == len(items) and report1.failed == 0, report1.to_dict()
            assert report2.unchanged == len(items) and report2.created == report2.updated == 0, report2.to_dict()
            exported = export_all(pair.exporter, owner)
            assert len(exported) == len(items) == len(_by_id(exported))
            assert owner in set(pair.exporter.iter_owners()), "the owner written to is not listed by owners()"

        _run(request, pair, body)

    def test_changed_item_is_updated_in_place(self, conformance_pair: ConformancePair,
                                              request: pytest.FixtureRequest) -> None:
        pair = conformance_pair

        def body(items: list[Item]) -> None:
            owner = items[0].owner
            import_all(pair.importer, items)
            files = [i for i in items if i.kind == "file"]
            if not files:
                return
            before = export_all(pair.exporter, owner)
            victim = next(e for e in before if e.id == files[-1].id)
            changed = _changed_copy(victim, pair.vertical)
            assert pair.importer.put(changed) == Outcome.UPDATED
            after = _by_id(export_all(pair.exporter, owner))
            assert len(after) == len(before), "an update added or removed items"
            got = after[victim.id]
            if pair.exact_bytes:
                assert got.content.read() == changed.content.read()
            else:
                assert (pair.same_content or bytes.__eq__)(changed.content.read(), got.content.read())
            assert pair.importer.put(changed) == Outcome.UNCHANGED

        _run(request, pair, body)

    def test_changes_since_a_sync_name_what_changed(self, conformance_pair: ConformancePair,
                                                    request: pytest.FixtureRequest) -> None:
        pair = conformance_pair
        modes = tuple(pair.exporter.sync_modes)
        assert modes and set(modes) <= set(SYNC_MODES), f"sync_modes {modes} must be among {SYNC_MODES}"
        if SYNC_COLLECTION in modes:
            assert type(pair.exporter).changes is not Exporter.changes, \
                "the exporter declares sync-collection but does not override changes()"

        def body(items: list[Item]) -> None:
            owner = items[0].owner
            import_all(pair.importer, items)
            listed = {r.id for r in pair.exporter.iter_refs(owner)}
            first = pair.exporter.changes(owner, None)
            assert {r.id for r in first.changed} == listed == first.source_ids, "a first sync must name every item"
            assert json.loads(json.dumps(first.state)) == first.state, "the sync state must be plain JSON"
            quiet = pair.exporter.changes(owner, first.state)
            tagged = {i for i, tag in known_etags(first.state).items() if tag}
            assert quiet.deleted == [] and quiet.source_ids == listed
            again = sorted({r.id for r in quiet.changed} & tagged)
            assert not again, f"nothing changed, yet the sync reports {again}"
            files = [i for i in items if i.kind == "file"]
            if not files:
                return
            victim = pair.exporter.fetch(next(r for r in pair.exporter.iter_refs(owner) if r.id == files[-1].id))
            assert pair.importer.put(_changed_copy(victim, pair.vertical)) == Outcome.UPDATED
            after = pair.exporter.changes(owner, quiet.state)
            assert victim.id in {r.id for r in after.changed}, f"the change of {victim.id!r} was not reported"
            assert after.source_ids == listed and after.deleted == []

        _run(request, pair, body)

    # -- bad input ---------------------------------------------------------------------------
    def test_refuses_a_lying_checksum(self, conformance_pair: ConformancePair) -> None:
        pair = conformance_pair
        owner = pair.new_owner()
        good = _sample_file(pair, owner)
        liar = Item(owner=owner, vertical=good.vertical, id=good.id, path=good.path, kind="file",
                    metadata=dict(good.metadata),
                    content=BytesContent(good.content.read(), sha256=hashlib.sha256(b"other").hexdigest()))
        _refused(pair, liar, BadItem, "sha256")

    @pytest.mark.parametrize("bad_id", ["../escape", "/absolute", "a//b", "a/./b", "", "a\\b", "nul\x00"])
    def test_refuses_an_unsafe_id(self, conformance_pair: ConformancePair, bad_id: str) -> None:
        pair = conformance_pair
        good = _sample_file(pair, pair.new_owner())
        bad = Item(owner=good.owner, vertical=good.vertical, id=bad_id, path=bad_id or "x", content=good.content,
                   metadata=dict(good.metadata))
        _refused(pair, bad, BadItem, None)
        if _owner_exists(pair, good.owner):
            assert list(pair.exporter.iter_refs(good.owner)) == [], "a refused item left something behind"

    def test_refuses_another_vertical(self, conformance_pair: ConformancePair) -> None:
        pair = conformance_pair
        good = _sample_file(pair, pair.new_owner())
        other = next(v for v in ("documents", "homework") if v != pair.vertical)
        bad = Item(owner=good.owner, vertical=other, id=good.id, path=good.path, content=good.content,
                   metadata={})
        _refused(pair, bad, BadItem, other)

    def test_refuses_metadata_outside_the_schema(self, conformance_pair: ConformancePair) -> None:
        pair = conformance_pair
        good = _sample_file(pair, pair.new_owner())
        for meta, word in (({**good.metadata, "no_such_field": 1}, "no_such_field"),
                           ({**good.metadata, "extra": "not an object"}, "extra"),
                           ({**good.metadata, "modified": "yesterday"}, "modified")):
            bad = Item(owner=good.owner, vertical=good.vertical, id=good.id, path=good.path,
                       content=good.content, metadata=meta)
            _refused(pair, bad, BadItem, word)

    def test_refuses_invalid_contents(self, conformance_pair: ConformancePair) -> None:
        pair = conformance_pair
        if not pair.invalid_contents:
            pytest.skip("this vertical accepts any bytes (no invalid_contents given)")
        for data in pair.invalid_contents:
            good = _sample_file(pair, pair.new_owner())
            bad = Item(owner=good.owner, vertical=good.vertical, id=good.id, path=good.path,
                       content=BytesContent(data), metadata=dict(good.metadata))
            _refused(pair, bad, ConnectorError, None)

    def test_fetching_a_missing_item_is_an_error(self, conformance_pair: ConformancePair) -> None:
        pair = conformance_pair
        good = _sample_file(pair, pair.new_owner())
        pair.importer.put(good)
        missing_id = good.id.rsplit("/", 1)[0] + "/no-such-item.bin" if "/" in good.id else "no-such-item.bin"
        ref = ItemRef(owner=good.owner, vertical=pair.vertical, id=missing_id, path=missing_id)
        with pytest.raises(ConnectorError) as info:
            pair.exporter.fetch(ref)
        assert pair.exporter.connector in str(info.value) and "no-such-item" in str(info.value)


def _owner_exists(pair: ConformancePair, owner: str) -> bool:
    return owner in set(pair.exporter.iter_owners())


def _refused(pair: ConformancePair, item: Item, error: type[Exception], word: str | None) -> None:
    with pytest.raises(error) as info:
        pair.importer.put(item)
    message = str(info.value)
    assert pair.importer.connector in message, f"the error does not name the connector: {message}"
    if word:
        assert word in message, f"the error does not say what is wrong ({word!r}): {message}"
    if _owner_exists(pair, item.owner):
        ids = {r.id for r in pair.exporter.iter_refs(item.owner) if r.kind == "file"}
        assert item.id not in ids, f"a refused item was written anyway: {item.id}"


def _sample_file(pair: ConformancePair, owner: str) -> Item:
    """A valid file item of the pair's vertical, in a folder the importer has to create."""
    return pair.sample(owner) if pair.sample else sample_file(pair.vertical, owner)


def _changed_copy(item: Item, vertical: str) -> Item:
    data = item.content.read()
    if vertical in ("calendars", "contacts"):
        marker = b"END:VEVENT" if vertical == "calendars" else b"END:VCARD"
        extra = b"DESCRIPTION:changed\r\n" if vertical == "calendars" else b"NOTE:changed\r\n"
        new = data.replace(marker, extra + marker, 1)
    else:
        new = data + b" changed"
    meta = dict(item.metadata)
    return Item(owner=item.owner, vertical=item.vertical, id=item.id, path=item.path, kind=item.kind,
                content=BytesContent(new), metadata=meta)
