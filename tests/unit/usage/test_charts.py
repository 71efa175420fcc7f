"""The report's charts (services/usage/outputs/charts.py): written as SVG or PNG by extension, valid, titled in
French by default and in English on request, accessible (an SVG's <title> and <desc>, a PNG's Title and
Description), the same bytes for the same rows, and a suppressed figure never drawn as a zero."""

from __future__ import annotations

import re
import struct
import zlib
from datetime import date, timedelta

import pytest
from lxml import etree

from relais.i18n import UnknownLanguage
from services.usage.outputs import charts
from services.usage.rules.periods import period_of, week_start
from services.usage.rules.rows import Row

SVG = {"s": "http://www.w3.org/2000/svg"}
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NOV = date(2026, 11, 1)
FR_LICENCES = "Licences attribuées, utilisées et inutilisées par ressource, novembre 2026"
EN_LICENCES = "Licences granted, used and unused per resource, November 2026"


def licence(indicator: str, resource: str, value: float | None, structure: str = "*") -> Row:
    return Row("2026-11", "month", NOV, indicator, structure=structure, resource=resource, value=value,
               status="published" if value is not None else "suppressed")


# ark:/a is drawn first, ark:/b second (resources in the order people read their names)
LICENCES = [
    licence("licences_granted", "ark:/a", 120), licence("licences_used", "ark:/a", 90),
    licence("licences_unused", "ark:/a", 30),
    licence("licences_granted", "ark:/b", 40), licence("licences_used", "ark:/b", None),
    licence("licences_unused", "ark:/b", None),
    licence("licences_granted", "ark:/a", 7, structure="0750001A"),  # another structure's cell: not in the chart
]


def weekly_rows() -> list[Row]:
    """A year of weeks cut at the months' bounds, as twelve monthly reports give them; teachers' weeks 30-32 hidden."""
    starts = sorted({week_start(date(2026, 1, 1) + timedelta(days=i)) for i in range(365)})
    rows = []
    for i, start in enumerate(starts):
        for profile, base in (("National_ELV", 800), ("National_ENS", 90)):
            value = None if profile == "National_ENS" and i in (30, 31, 32) else float(base + i % 7 * 10)
            rows.append(Row(period_of(start), "week", start, "active_users", profile=profile, value=value,
                            status="published" if value is not None else "suppressed"))
    return rows


def parse_svg(data: bytes) -> etree._ElementTree:
    """The SVG parsed without entities, network or DTD: a chart must be valid XML on its own."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.ElementTree(etree.fromstring(data, parser))


def png_text(data: bytes) -> dict[str, str]:
    """A PNG's text chunks (tEXt, iTXt), checking every chunk's CRC on the way."""
    assert data[:8] == PNG_MAGIC
    out, at = {}, 8
    while at < len(data):
        (length,), kind = struct.unpack(">I", data[at:at + 4]), data[at + 4:at + 8]
        body, crc = data[at + 8:at + 8 + length], struct.unpack(">I", data[at + 8 + length:at + 12 + length])[0]
        assert zlib.crc32(kind + body) == crc, f"chunk {kind!r} at {at} is corrupt"
        if kind == b"tEXt":
            key, value = body.split(b"\0", 1)
            out[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"iTXt":
            key, rest = body.split(b"\0", 1)
            compressed, rest = rest[0], rest[2:]
            _lang, _translated, value = rest.split(b"\0", 2)
            out[key.decode("latin-1")] = (zlib.decompress(value) if compressed else value).decode("utf-8")
        at += 12 + length
    assert kind == b"IEND"
    return out


@pytest.fixture(scope="module")
def written(tmp_path_factory):
    """Each chart written once per format and language (drawing takes a fraction of a second each)."""
    folder = tmp_path_factory.mktemp("charts")
    weeks = weekly_rows()
    return {
        "licences.svg": charts.write_licences_chart(LICENCES, folder / "licences.svg", "2026-11"),
        "licences.png": charts.write_licences_chart(LICENCES, folder / "licences.png", "2026-11"),
        "licences-en.svg": charts.write_licences_chart(LICENCES, folder / "licences-en.svg", "2026-11", lang="en"),
        "licences-en.png": charts.write_licences_chart(LICENCES, folder / "licences-en.png", "2026-11", lang="en"),
        "weekly.svg": charts.write_weekly_active_users_chart(weeks, folder / "weekly.svg"),
        "weekly.png": charts.write_weekly_active_users_chart(weeks, folder / "weekly.png"),
        "weekly-en.svg": charts.write_weekly_active_users_chart(weeks, folder / "weekly-en.svg", lang="en"),
    }


def test_the_files_are_written_as_their_extension_says(written):
    for name, path in written.items():
        data = path.read_bytes()
        assert len(data) > 1000, name
        if name.endswith(".png"):
            assert data.startswith(PNG_MAGIC), name
            png_text(data)
        else:
            assert parse_svg(data).getroot().tag == "{http://www.w3.org/2000/svg}svg", name


def test_an_svg_carries_its_title_and_description_first_and_names_them_for_screen_readers(written):
    root = parse_svg(written["licences.svg"].read_bytes()).getroot()
    title, desc = root[0], root[1]
    assert (title.tag, desc.tag) == ("{http://www.w3.org/2000/svg}title", "{http://www.w3.org/2000/svg}desc")
    assert title.text == f"{FR_LICENCES}, tous les établissements"
    assert root.get("role") == "img" and root.get("aria-labelledby") == "chart-title chart-desc"
    assert root.get("{http://www.w3.org/XML/1998/namespace}lang") == "fr"
    assert len(root.findall("s:title", SVG)) == 1
    # the figures in words, a suppressed one said as such
    assert "Licences attribuées\u00a0: 120" in desc.text
    assert "ark:/b\u00a0: Licences attribuées\u00a0: 40, Licences utilisées\u00a0: secret statistique" in desc.text
    # its text is text, so the title is read as drawn
    assert FR_LICENCES in "".join(root.itertext())


def test_french_by_default_and_english_on_request(written):
    en = parse_svg(written["licences-en.svg"].read_bytes()).getroot()
    assert en[0].text == f"{EN_LICENCES}, all structures"
    assert en.get("{http://www.w3.org/XML/1998/namespace}lang") == "en"
    assert png_text(written["licences.png"].read_bytes())["Title"] == f"{FR_LICENCES}, tous les établissements"
    english = png_text(written["licences-en.png"].read_bytes())
    assert english["Title"] == f"{EN_LICENCES}, all structures"
    assert "Licences used: suppressed" in english["Description"]
    assert parse_svg(written["weekly.svg"].read_bytes()).getroot()[0].text.startswith(
        "Utilisateurs actifs par semaine, janvier 2026 – décembre 2026")
    assert parse_svg(written["weekly-en.svg"].read_bytes()).getroot()[0].text.startswith(
        "Weekly active users, January 2026 – December 2026")


def bar_widths(root: etree._Element) -> dict[str, float]:
    """Each bar group's drawn width, from the x coordinates of its path."""
    widths = {}
    for group in root.iterfind(".//s:g[@id]", SVG):
        if group.get("id").startswith("bar-"):
            xs = [float(x) for path in group.iterfind("s:path", SVG)
                  for x in re.findall(r"([-\d.]+) [-\d.]+", path.get("d"))]
            widths[group.get("id")] = max(xs) - min(xs)
    return widths


def test_a_suppressed_licence_figure_is_not_drawn_as_a_zero_bar_but_named_suppressed(written):
    root = parse_svg(written["licences.svg"].read_bytes()).getroot()
    widths = bar_widths(root)
    assert set(widths) == {"bar-licences_granted-0", "bar-licences_used-0", "bar-licences_unused-0",
                           "bar-licences_granted-1"}  # ark:/b's used and unused: no bar at all
    assert all(w > 0 for w in widths.values())
    assert widths["bar-licences_used-0"] / widths["bar-licences_granted-0"] == pytest.approx(90 / 120, rel=1e-3)
    for indicator in ("licences_used", "licences_unused"):
        mark = root.find(f".//s:g[@id='suppressed-{indicator}-1']", SVG)
        assert mark is not None and "".join(mark.itertext()).strip() == "secret statistique"
    assert "ce n’est pas un zéro" in "".join(root.itertext())  # the note saying what it means


def test_a_suppressed_week_breaks_the_line_and_is_marked_along_the_top(written):
    series = charts.weekly_series(weekly_rows())
    assert [s.profile for s in series] == ["National_ELV", "National_ENS"]
    teachers = series[1]
    assert [v for _d, v in teachers.points[30:33]] == [None, None, None]
    root = parse_svg(written["weekly.svg"].read_bytes()).getroot()
    assert root.find(".//s:g[@id='suppressed-1']", SVG) is not None  # the teachers' × marks
    assert root.find(".//s:g[@id='suppressed-0']", SVG) is None  # pupils: nothing hidden
    line = root.find(".//s:g[@id='line-1']/s:path", SVG).get("d")
    assert line.count("M ") == 2  # one break: the line stops before the hidden weeks and starts again after
    assert "3 weeks suppressed" not in root[1].text and "semaines sous secret statistique\u00a0: 3" in root[1].text


def test_weeks_cut_at_a_months_bounds_are_told_apart():
    series = charts.weekly_series(weekly_rows())
    pupils = series[0]
    assert date(2026, 1, 1) in pupils.partial  # Thursday 1 January: the week's first days are in 2025
    assert date(2026, 1, 26) in pupils.partial  # Monday 26 January: the week ends in February
    assert date(2026, 2, 1) in pupils.partial  # Sunday 1 February: the rest of that week
    assert date(2026, 1, 5) not in pupils.partial  # a whole week


def test_the_total_alone_when_not_by_profile():
    rows = [Row("2026-11", "week", NOV, "active_users", value=500.0),
            Row("2026-11", "week", NOV, "active_users", profile="National_ELV", value=400.0)]
    assert [(s.profile, s.points) for s in charts.weekly_series(rows, by_profile=False)] == [("*", ((NOV, 500.0),))]


def test_the_same_rows_give_the_same_bytes(written):
    """Drawn again (a new figure, the same rows), each chart is byte for byte the one written by the fixture."""
    for fmt in charts.FORMATS:
        assert charts.licences_chart(list(LICENCES), fmt, "2026-11") == written[f"licences.{fmt}"].read_bytes()
        assert charts.weekly_active_users_chart(weekly_rows(), fmt) == written[f"weekly.{fmt}"].read_bytes()


def test_the_chart_of_one_structure_reads_only_its_cells():
    bars = charts.licence_bars(LICENCES, "2026-11", structure="0750001A")
    assert [(b.resource, b.values) for b in bars] == [("ark:/a", {"licences_granted": 7})]


def test_licence_rows_of_several_starts_need_one_picked():
    rows = [*LICENCES, Row("2026-11", "month", date(2026, 11, 2), "licences_granted", resource="ark:/a", value=3)]
    with pytest.raises(ValueError, match="start on 2 days .*give start= to pick one"):
        charts.licence_bars(rows, "2026-11")
    assert charts.licence_bars(rows, "2026-11", start=date(2026, 11, 2))[0].values == {"licences_granted": 3}


def test_an_unknown_extension_or_language_is_refused_before_drawing(tmp_path):
    with pytest.raises(ValueError, match=r"chart\.pdf: its name must end in \.svg or \.png"):
        charts.write_licences_chart(LICENCES, tmp_path / "chart.pdf", "2026-11")
    with pytest.raises(UnknownLanguage, match="available languages are en, fr"):
        charts.licences_chart(LICENCES, "svg", "2026-11", lang="de")
    assert list(tmp_path.iterdir()) == []


def test_a_chart_of_no_figures_says_so_instead_of_failing():
    for data in (charts.licences_chart([], "svg", "2026-11"), charts.weekly_active_users_chart([], "svg")):
        root = parse_svg(data).getroot()
        assert root[1].text.endswith("Aucun chiffre pour cette sélection.")
    assert root[0].text == "Utilisateurs actifs par semaine, tous les établissements"
