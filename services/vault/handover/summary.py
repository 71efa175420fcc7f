"""The printable summary of a handover pack, as blocks both renderers draw (``html.py``, ``pdf.py``). No I/O.

Every word comes from the catalogues (relais/i18n: French by default, English on request); numbers and
dates are written the language's way (Babel). The HTML page and the PDF are drawn from the same blocks, so
they say the same figures.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC

from babel.dates import format_datetime
from babel.numbers import format_decimal

from relais.i18n import Translator

from ..rules.handover import BAG, EXPORT_ITEM, EXPORT_JOB, IN_PACK, VERIFY_FINDING, VERIFY_SIDE, Handover

MAX_ROWS = 1000  # rows of a table printed; the rest are in handover.json and bags-sha256.txt

VERTICAL_NAMES = {"documents": "Documents", "calendars": "Calendars", "contacts": "Contacts",
                  "messages": "Messaging", "blogs": "Blogs and pages", "homework": "Homework and lesson log"}
MISS_KINDS = {BAG: "Bag not written", EXPORT_JOB: "Export not completed", EXPORT_ITEM: "Not exported",
              VERIFY_FINDING: "Verification", VERIFY_SIDE: "Side not listed"}
STATES = {"completed": "completed", "incomplete": "incomplete", "stopped": "stopped", "running": "running"}
SIGNERS = ("For the local authority", "For the operator")
SIGNATURE_LINES = ("Name and role:", "Date:", "Signature:")


@dataclass
class Heading:
    text: str


@dataclass
class Para:
    text: str
    strong: bool = False


@dataclass
class Table:
    caption: str
    header: list[str]
    rows: list[list[str]]
    numeric: set[int] = field(default_factory=set)  # columns aligned right
    mono: set[int] = field(default_factory=set)  # columns of hashes
    widths: list[int] | None = None  # relative widths for the PDF
    more: str | None = None  # said after the table when rows were left out


@dataclass
class Signatures:
    who: list[str]
    lines: list[str]


Block = Heading | Para | Table | Signatures


def _n(value: int, lang: str) -> str:
    return format_decimal(value, locale=lang)


def _bytes(value: int, _: Translator) -> str:
    mb = format_decimal(round(value / 1e6, 1), locale=_.lang, format="#,##0.0")
    return _("{bytes} bytes ({megabytes} MB)").format(bytes=_n(value, _.lang), megabytes=mb)


def summary(h: Handover, _: Translator, *, json_sha256: str) -> tuple[str, list[Block]]:
    """The title and the blocks of the summary of ``h``; ``json_sha256`` is that of the pack's handover.json."""
    lang = _.lang
    found = h.misses()
    title = _("Contract-end handover of tenant {tenant}").format(tenant=h.tenant)
    when = format_datetime(h.at, format="long", locale=lang, tzinfo=UTC)
    blocks: list[Block] = [
        Para(_("Run by {who} (account {account}) on {when}.").format(who=h.ran_by, account=h.account, when=when)),
        Heading(_("What the pack holds")),
        Table(_("Totals"), [_("Measure"), _("Count")], [
            [_("Persons"), _n(h.persons, lang)], [_("Structures"), _n(h.structures, lang)],
            [_("Bags"), _n(sum(1 for b in h.bags if b["state"] in IN_PACK), lang)],
            [_("Items"), _n(h.items, lang)], [_("Bytes of the items"), _bytes(h.bytes, _)]],
            numeric={1}, widths=[2, 3]),
        Table(_("By vertical"), [_("Vertical"), _("Items"), _("Bytes")],
              [[_(VERTICAL_NAMES.get(v, v)), _n(c["items"], lang), _bytes(c["bytes"], _)]
               for v, c in h.verticals().items()], numeric={1, 2}, widths=[2, 1, 3]),
        Heading(_("Completeness")),
        Para(_("Nothing was lost: lost = 0.") if not found else
             _("Lost = {count}: each miss is named below.").format(count=_n(len(found), lang)), strong=True),
    ]
    if h.exports:
        blocks.append(Table(_("Exports from the outgoing ENT"),
                            [_("Connector"), _("Job state"), _("Persons"), _("Items"), _("Bytes"), _("Failed")],
                            [[e["connector"], _(STATES.get(e["state"], e["state"])), _n(e["persons"], lang),
                              _n(e["items"], lang), _n(e["bytes"], lang), _n(e["failed"], lang)] for e in h.exports],
                            numeric={2, 3, 4, 5}, widths=[2, 2, 1, 1, 2, 1]))
    else:
        blocks.append(Para(_("No contract-end export was run for this tenant: the pack holds what the vault "
                             "kept.")))
    if h.verifications:
        blocks.append(Table(_("Verifications"), [_("Sides compared"), _("Lost"), _("Unverified"), _("Extra")],
                            [[", ".join(f"{k} ({w})" for k, w in sorted(v["sides"].items())), _n(v["lost"], lang),
                              _n(v["unverified"], lang), _n(v.get("extra", 0), lang)] for v in h.verifications],
                            numeric={1, 2, 3}, widths=[4, 1, 1, 1]))
    if found:
        blocks.append(_table(_("Misses"), [_("Kind"), _("Whose"), _("Item"), _("Reason")],
                             [[_(MISS_KINDS[m.kind]), m.owner or "", m.what, m.why] for m in found], _,
                             widths=[2, 2, 3, 5], more=_("see handover.json")))
    blocks += [
        Heading(_("Hashes")),
        Para(_("Each bag's tag manifest pins the sha256 of every file of the bag; bags-sha256.txt lists the "
               "sha256 of each bag's tag manifest; its own sha256 seals every bag.")),
        Table(_("Seals"), [_("File"), "sha256"], [["bags-sha256.txt", h.seal()], ["handover.json", json_sha256]],
              mono={1}, widths=[1, 4]),
        _table(_("Bags"), [_("Bag"), _("Items"), _("Bytes"), _("Tag manifest sha256")],
               [[b["name"], _n(b["items"], lang), _n(b["bytes"], lang), b["tagmanifest_sha256"] or ""]
                for b in sorted(h.bags, key=lambda b: b["name"]) if b["state"] in IN_PACK], _,
               numeric={1, 2}, mono={3}, widths=[28, 15, 18, 69], more=_("see bags-sha256.txt")),
        Heading(_("Signatures")),
        Signatures([_(s) for s in SIGNERS], [_(line) for line in SIGNATURE_LINES]),
    ]
    return title, blocks


def _table(caption: str, header: list[str], rows: list[list[str]], _: Translator, *, more: str,
           **kw: object) -> Table:
    table = Table(caption, header, rows[:MAX_ROWS], **kw)  # type: ignore[arg-type]
    if len(rows) > MAX_ROWS:
        table.more = _("{count} more rows: {where}.").format(count=_n(len(rows) - MAX_ROWS, _.lang), where=more)
    return table


#: Every msgid this module and the renderers mark, for the catalogues' test.
MSGIDS = (
    "{bytes} bytes ({megabytes} MB)", "Contract-end handover of tenant {tenant}",
    "Run by {who} (account {account}) on {when}.", "What the pack holds", "Totals", "Measure", "Count", "Item",
    "Persons", "Structures", "Bags", "Items", "Bytes of the items", "By vertical", "Vertical", "Bytes", "Completeness",
    "Nothing was lost: lost = 0.", "Lost = {count}: each miss is named below.", "Exports from the outgoing ENT",
    "Connector", "Job state", "Failed", "No contract-end export was run for this tenant: the pack holds what the vault "
    "kept.", "Verifications", "Sides compared", "Lost", "Unverified", "Extra", "Misses", "Kind", "Whose", "Reason",
    "see handover.json", "Hashes", "Each bag's tag manifest pins the sha256 of every file of the bag; "
    "bags-sha256.txt lists the sha256 of each bag's tag manifest; its own sha256 seals every bag.", "Seals", "File",
    "Bag", "Tag manifest sha256", "see bags-sha256.txt", "Signatures", "{count} more rows: {where}.",
    "Page {page} of {pages}",
    *VERTICAL_NAMES.values(), *MISS_KINDS.values(), *STATES.values(), *SIGNERS, *SIGNATURE_LINES)
