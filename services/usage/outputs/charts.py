"""The report's charts, SVG or PNG, drawn from its rows: licences per resource, weekly active users.

- `licences_chart`: licences granted, used and unused per resource, one period, every structure or one;
  horizontal grouped bars, each bar's value written at its end.
- `weekly_active_users_chart`: active users week by week (rows of grain week), a line per profile or
  the total.

Every word comes from the catalogue (relais/i18n: French by default, `lang="en"`), numbers and dates
are written the language's way (Babel). For people who cannot see the colours well, or at all: the
palette is Okabe and Ito's (told apart with the common colour-blindnesses), each bar series also has
its hatch and each line its marker and dash; an SVG carries a <title> and a <desc> (the figures in
words) referenced by `aria-labelledby`, its text is real text, and a PNG carries both as Title and
Description. A suppressed cell is never drawn as 0: its bar is absent and the word "suppressed" stands
in its place, its point breaks the line and is marked × along the top edge, and a note says what it
means. Same rows, same bytes: SVG ids are salted with a constant and no date is written.

Matplotlib draws off screen (Agg for PNG, its SVG writer for SVG) on a Figure of its own: pyplot and
its global state are never touched, so this runs in a service, a test or a thread.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

import matplotlib
from babel.dates import format_date
from babel.numbers import format_decimal
from lxml import etree
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import FuncFormatter, MaxNLocator
from matplotlib.transforms import blended_transform_factory
from matplotlib.typing import RcKeyType

from relais.i18n import Translator, translator
from services.usage.outputs.labels import INDICATORS, PROFILES, label
from services.usage.rules.periods import PeriodError, bounds
from services.usage.rules.rows import ALL, Row

FORMATS = ("svg", "png")
# Okabe & Ito (2008), "Color Universal Design": distinguishable with protanopia, deuteranopia and tritanopia.
OKABE_ITO = ("#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000")
LICENCE_SERIES = (  # indicator, colour, hatch: each bar told apart by its hatch as well as its colour
    ("licences_granted", OKABE_ITO[0], ""),
    ("licences_used", OKABE_ITO[2], "//"),
    ("licences_unused", OKABE_ITO[3], "xx"),
)
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
DASHES = ("-", "--", ":", "-.")
SUPPRESSED_COLOUR = "#595959"  # grey with a contrast of 7:1 on white
DPI = 150
RC: dict[RcKeyType, object] = {
    "svg.hashsalt": "relais-usage",  # ids from the content, not from a random salt: same rows, same bytes
    "svg.fonttype": "none",  # text stays text: read aloud, searched, selected
    "font.family": ["DejaVu Sans", "sans-serif"],  # ships with matplotlib, has French letters and U+202F
    "font.size": 10,
    "hatch.linewidth": 1.0,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


@dataclass(frozen=True)
class Chart:
    """A chart's accessible text: its title and its description, the figures in words."""

    title: str
    description: str


@dataclass(frozen=True)
class LicenceBars:
    """One resource's licence figures (None: suppressed or absent) and whether each was published with noise."""

    resource: str
    values: dict[str, float | None]  # indicator of LICENCE_SERIES -> value
    suppressed: frozenset[str]
    noisy: frozenset[str]


@dataclass(frozen=True)
class WeeklySeries:
    """One line of the weekly chart: a profile (or ALL) and its points, a suppressed week's value None."""

    profile: str
    points: tuple[tuple[date, float | None], ...]
    noisy: bool
    partial: frozenset[date] = frozenset()  # weeks cut at their month's bounds: fewer than seven days counted


# ---------------------------------------------------------------- licences per resource


def licence_bars(rows: Iterable[Row], period: str, structure: str = ALL, grain: str = "month",
                 start: date | None = None) -> list[LicenceBars]:
    """The licence figures per resource of one period, structure, grain (and start, when the rows have several).

    Only cells of every profile and level (ALL) and of one resource are read. Rows of several starts
    are refused unless `start` picks one: figures of different weeks or months are not one picture.
    """
    wanted = {s[0] for s in LICENCE_SERIES}
    cells = [r for r in rows if r.indicator in wanted and r.period == period and r.grain == grain
             and r.structure == structure and r.profile == ALL and r.level == ALL and r.resource != ALL
             and (start is None or r.start == start)]
    starts = sorted({r.start for r in cells})
    if len(starts) > 1:
        raise ValueError(f"licence rows of period {period} at grain {grain} start on {len(starts)} days "
                         f"({', '.join(d.isoformat() for d in starts)}): give start= to pick one")
    by_resource: dict[str, list[Row]] = {}
    for r in cells:
        by_resource.setdefault(r.resource, []).append(r)
    return [LicenceBars(resource, {r.indicator: r.value for r in found},
                        frozenset(r.indicator for r in found if r.value is None),
                        frozenset(r.indicator for r in found if r.status == "noisy"))
            for resource, found in sorted(by_resource.items())]


def licences_chart(rows: Iterable[Row], fmt: str, period: str, structure: str = ALL, lang: str = "fr",
                   resource_names: Mapping[str, str] | None = None, grain: str = "month",
                   start: date | None = None) -> bytes:
    """The licences chart of one period (and structure) as SVG or PNG bytes, in a language of the catalogue."""
    _ = translator(lang)
    names = dict(resource_names or {})
    bars = sorted(licence_bars(rows, period, structure, grain, start),
                  key=lambda b: (names.get(b.resource, b.resource).casefold(), b.resource))  # as people read them
    with matplotlib.rc_context(RC):
        fig, chart = _draw_licences(bars, period, structure, names, _)
        return _render(fig, fmt, chart, _.lang)


def write_licences_chart(rows: Iterable[Row], path: Path, period: str, structure: str = ALL, lang: str = "fr",
                         resource_names: Mapping[str, str] | None = None, grain: str = "month",
                         start: date | None = None) -> Path:
    """Writes the licences chart to `path`, SVG or PNG by its extension."""
    data = licences_chart(rows, _format_of(path), period, structure, lang, resource_names, grain, start)
    path.write_bytes(data)
    return path


def _draw_licences(bars: list[LicenceBars], period: str, structure: str, names: dict[str, str],
                   _: Translator) -> tuple[Figure, Chart]:
    title = _("Licences granted, used and unused per resource, {period}").format(period=_period(period, _.lang))
    where = _structure(structure, _)
    height = 1.6 + 0.75 * max(len(bars), 1)
    fig = Figure(figsize=(9, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(f"{title}\n{where}", loc="left")
    bar_height = 0.8 / len(LICENCE_SERIES)
    top = max((v for b in bars for v in b.values.values() if v is not None), default=1.0) or 1.0
    for i, (indicator, colour, hatch) in enumerate(LICENCE_SERIES):
        for j, bar in enumerate(bars):
            y = j + (i - (len(LICENCE_SERIES) - 1) / 2) * bar_height
            value = bar.values.get(indicator)
            if indicator in bar.suppressed:
                ax.text(top * 0.01, y, _("suppressed"), va="center", ha="left", fontstyle="italic",
                        fontsize=8, color=SUPPRESSED_COLOUR, gid=f"suppressed-{indicator}-{j}")
            elif value is not None:
                ax.barh(y, value, height=bar_height * 0.92, color=colour, hatch=hatch, edgecolor="white",
                        linewidth=0.5, gid=f"bar-{indicator}-{j}")
                shown = ("≈ " if indicator in bar.noisy else "") + format_decimal(value, locale=_.lang)
                ax.text(value + top * 0.01, y, shown, va="center", ha="left", fontsize=8)
    ax.set_yticks(range(len(bars)), [names.get(b.resource, b.resource) for b in bars])
    ax.invert_yaxis()
    ax.set_xlim(0, top * 1.15)
    ax.set_xlabel(_("Licences"))
    ax.set_ylabel(_("Resource"))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_decimal(v, locale=_.lang)))
    ax.legend(handles=[Patch(facecolor=colour, hatch=hatch, edgecolor="white", label=_(INDICATORS[indicator]))
                       for indicator, colour, hatch in LICENCE_SERIES],
              loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
    _note(fig, _notes(any(b.suppressed for b in bars), any(b.noisy for b in bars), _))
    return fig, Chart(f"{title}, {where}", _licences_description(bars, period, where, names, _))


def _licences_description(bars: list[LicenceBars], period: str, where: str, names: dict[str, str],
                          _: Translator) -> str:
    lines = [_("Bar chart of the licences granted, used and unused per resource, {period}, {where}.").format(
        period=_period(period, _.lang), where=where)]
    if not bars:
        lines.append(_("No figures for this selection."))
    for bar in bars:
        figures = [_("{indicator}: {value}").format(indicator=_(INDICATORS[i]),
                                                     value=_figure(bar.values.get(i), i in bar.suppressed, _))
                   for i, _colour, _hatch in LICENCE_SERIES if i in bar.values]
        lines.append(_("{resource}: {figures}.").format(resource=names.get(bar.resource, bar.resource),
                                                       figures=", ".join(figures)))
    return " ".join(lines)


# ---------------------------------------------------------------- weekly active users


def weekly_series(rows: Iterable[Row], structure: str = ALL, by_profile: bool = True) -> list[WeeklySeries]:
    """The weekly active users per profile (known profiles first), or of every profile, of one structure.

    Reads rows of indicator active_users, grain week, every level and resource, of one period or of
    several (a year is twelve monthly reports). A week is placed at its start; a week cut by its
    month's bounds (rules/periods.py) is two points, one per month, each of fewer than seven days,
    marked as such: people cannot be linked across periods, so the two parts are never added.
    """
    cells = [r for r in rows if r.indicator == "active_users" and r.grain == "week" and r.structure == structure
             and r.level == ALL and r.resource == ALL and (r.profile != ALL if by_profile else r.profile == ALL)]
    by_profile_rows: dict[str, list[Row]] = {}
    for r in cells:
        by_profile_rows.setdefault(r.profile, []).append(r)
    order = list(PROFILES)
    return [WeeklySeries(profile, tuple((r.start, r.value) for r in sorted(found, key=lambda r: r.start)),
                         any(r.status == "noisy" for r in found), frozenset(r.start for r in found if _cut(r)))
            for profile, found in sorted(by_profile_rows.items(),
                                         key=lambda kv: (order.index(kv[0]) if kv[0] in order else len(order), kv[0]))]


def weekly_active_users_chart(rows: Iterable[Row], fmt: str, structure: str = ALL, by_profile: bool = True,
                              lang: str = "fr") -> bytes:
    """The weekly active users chart as SVG or PNG bytes, in a language of the catalogue."""
    _ = translator(lang)
    rows = list(rows)
    series = weekly_series(rows, structure, by_profile)
    periods = sorted({r.period for r in rows if r.grain == "week" and r.indicator == "active_users"})
    with matplotlib.rc_context(RC):
        fig, chart = _draw_weekly(series, periods, structure, _)
        return _render(fig, fmt, chart, _.lang)


def write_weekly_active_users_chart(rows: Iterable[Row], path: Path, structure: str = ALL, by_profile: bool = True,
                                    lang: str = "fr") -> Path:
    """Writes the weekly active users chart to `path`, SVG or PNG by its extension."""
    path.write_bytes(weekly_active_users_chart(rows, _format_of(path), structure, by_profile, lang))
    return path


def _draw_weekly(series: list[WeeklySeries], periods: list[str], structure: str,
                 _: Translator) -> tuple[Figure, Chart]:
    span = " – ".join(dict.fromkeys([_period(periods[0], _.lang), _period(periods[-1], _.lang)])) if periods else ""
    title = _("Weekly active users, {period}").format(period=span) if span else _("Weekly active users")
    where = _structure(structure, _)
    fig = Figure(figsize=(12, 5.5), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    ax.set_title(f"{title}\n{where}", loc="left")
    top_edge = blended_transform_factory(ax.transData, ax.transAxes)
    for k, line in enumerate(series):
        colour, marker, dash = OKABE_ITO[k % len(OKABE_ITO)], MARKERS[k % len(MARKERS)], DASHES[k % len(DASHES)]
        xs = [d.toordinal() for d, _v in line.points]
        ys = [math.nan if v is None else v for _d, v in line.points]
        name = label(PROFILES, line.profile, _) if line.profile != ALL else _("All profiles")
        drawn = ax.plot(xs, ys, color=colour, marker=marker, linestyle=dash, markersize=4, linewidth=1.5, label=name)
        drawn[0].set_gid(f"line-{k}")
        cut = [(x, v) for x, (d, v) in zip(xs, line.points, strict=True) if d in line.partial and v is not None]
        if cut:
            ax.plot([x for x, _v in cut], [v for _x, v in cut], color=colour, marker=marker, linestyle="none",
                    markersize=5, markerfacecolor="white", gid=f"partial-{k}")
        hidden = [x for x, (_d, v) in zip(xs, line.points, strict=True) if v is None]
        if hidden:
            ax.plot(hidden, [0.97 - 0.03 * k] * len(hidden), transform=top_edge, color=colour, marker="x",
                    linestyle="none", markersize=6, clip_on=False, gid=f"suppressed-{k}")
    if any(v is None for s in series for _d, v in s.points):
        ax.plot([], [], color=SUPPRESSED_COLOUR, marker="x", linestyle="none", label=_("Week suppressed"))
    if any(s.partial for s in series):
        ax.plot([], [], color=SUPPRESSED_COLOUR, marker="o", markerfacecolor="white", linestyle="none",
                label=_("Partial week (cut where a month starts or ends)"))
    weeks = sorted({d for s in series for d, _v in s.points})
    months = _months(weeks)
    ax.set_xticks([d.toordinal() for d in months],
                  [format_date(d, "MMM\ny" if i == 0 or d.month == 1 else "MMM", locale=_.lang)
                   for i, d in enumerate(months)])
    highest = max((v for s in series for _d, v in s.points if v is not None), default=1.0) or 1.0
    ax.set_ylim(0, highest * 1.15)  # room above the lines for the suppressed weeks' marks
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _pos: format_decimal(v, locale=_.lang)))
    ax.set_xlabel(_("Week (first day)"))
    ax.set_ylabel(_("Active users"))
    if series:
        fig.legend(loc="outside right upper", frameon=False)
    _note(fig, _notes(any(v is None for s in series for _d, v in s.points), any(s.noisy for s in series), _))
    return fig, Chart(f"{title}, {where}", _weekly_description(series, weeks, span, where, _))


def _weekly_description(series: list[WeeklySeries], weeks: list[date], span: str, where: str,
                        _: Translator) -> str:
    if not weeks:
        nothing = _("Line chart of the weekly active users, {where}.").format(where=where)
        return f"{nothing} {_('No figures for this selection.')}"
    lines = [_("Line chart of the weekly active users from {first} to {last}, {where}.").format(
        first=_day(weeks[0], _.lang), last=_day(weeks[-1], _.lang), where=where)]
    for line in series:
        name = label(PROFILES, line.profile, _) if line.profile != ALL else _("All profiles")
        shown = [(d, v) for d, v in line.points if v is not None]
        hidden = len(line.points) - len(shown)
        if shown:
            low, high = min(shown, key=lambda p: p[1]), max(shown, key=lambda p: p[1])
            text = _("{name}: from {low} (week of {low_week}) to {high} (week of {high_week})").format(
                name=name, low=format_decimal(low[1], locale=_.lang), low_week=_day(low[0], _.lang),
                high=format_decimal(high[1], locale=_.lang), high_week=_day(high[0], _.lang))
        else:
            text = name
        if hidden:
            text += ", " + _("weeks suppressed: {count}").format(count=hidden)
        lines.append(text + ".")
    return " ".join(lines)


# ---------------------------------------------------------------- shared


def _note(fig: Figure, text: str) -> None:
    """Writes the chart's notes at the foot of the figure, where the layout keeps room for them."""
    if text:
        fig.supxlabel(text, x=0.01, ha="left", fontsize=8, color=SUPPRESSED_COLOUR)


def _notes(suppressed: bool, noisy: bool, _: Translator) -> str:
    notes = []
    if suppressed:
        notes.append(_("Suppressed: a figure withheld for statistical confidentiality (too few people), not a zero."))
    if noisy:
        notes.append(_("≈: a figure published with noise added (differential privacy)."))
    return "\n".join(notes)


def _figure(value: float | None, suppressed: bool, _: Translator) -> str:
    if suppressed or value is None:
        return _("suppressed")
    return format_decimal(value, locale=_.lang)


def _structure(structure: str, _: Translator) -> str:
    return _("all structures") if structure == ALL else _("structure {uai}").format(uai=structure)


def _period(period: str, lang: str) -> str:
    """A period as people write it: "2026-11" -> "novembre 2026" / "November 2026"; other forms as they are."""
    try:
        return format_date(date.fromisoformat(f"{period}-01"), "LLLL y", locale=lang)
    except ValueError:
        return period


def _cut(row: Row) -> bool:
    """Whether a week's cell counts fewer than seven days: it starts after a Monday or its month ends first."""
    try:
        _first, last = bounds(row.period)
    except PeriodError:
        return False
    return row.start.weekday() != 0 or row.start + timedelta(days=6) > last


def _months(weeks: list[date]) -> list[date]:
    """The first days of the months the weeks span (the weekly chart's ticks)."""
    if not weeks:
        return []
    first, months = date(weeks[0].year, weeks[0].month, 1), []
    while first <= weeks[-1]:
        if first >= weeks[0]:
            months.append(first)
        first = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    return months or [weeks[0]]


def _day(day: date, lang: str) -> str:
    return format_date(day, "d MMMM y", locale=lang)


def _format_of(path: Path) -> str:
    fmt = path.suffix.lower().lstrip(".")
    if fmt not in FORMATS:
        raise ValueError(f"cannot tell a chart's format from {path}: its name must end in .svg or .png")
    return fmt


def _render(fig: Figure, fmt: str, chart: Chart, lang: str) -> bytes:
    """The figure as bytes, with its accessible title and description, and nothing that changes between runs."""
    out = io.BytesIO()
    if fmt == "svg":
        fig.savefig(out, format="svg", metadata={"Date": None, "Title": chart.title,
                                                 "Description": chart.description, "Language": lang})
        return _svg_accessible(out.getvalue(), chart, lang)
    if fmt == "png":
        fig.savefig(out, format="png", dpi=DPI, metadata={"Title": chart.title, "Description": chart.description})
        return out.getvalue()
    raise ValueError(f"unknown chart format {fmt!r}: formats are {', '.join(FORMATS)}")


SVG = "http://www.w3.org/2000/svg"


def _svg_accessible(svg: bytes, chart: Chart, lang: str) -> bytes:
    """The SVG with <title> and <desc> first in its root, named by aria-labelledby, role img and its language."""
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False, huge_tree=False)
    tree = etree.ElementTree(etree.fromstring(svg, parser))
    root = tree.getroot()
    for old in root.findall(f"{{{SVG}}}title") + root.findall(f"{{{SVG}}}desc"):  # matplotlib's own <title>
        root.remove(old)
    for position, (tag, text) in enumerate((("title", chart.title), ("desc", chart.description))):
        element = etree.Element(f"{{{SVG}}}{tag}", id=f"chart-{tag}")
        element.text = text
        root.insert(position, element)
    root.set("role", "img")
    root.set("aria-labelledby", "chart-title chart-desc")
    root.set("{http://www.w3.org/XML/1998/namespace}lang", lang)
    return bytes(etree.tostring(tree, xml_declaration=True, encoding="utf-8", standalone=False))

