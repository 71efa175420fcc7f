"""The handover summary as a PDF to print and sign, drawn with fpdf2 (pure Python, pinned).

The fonts are the DejaVu faces matplotlib ships (a pinned dependency), so the PDF is the same on a fresh
machine without system fonts and writes every character of French (œ, ’, …). The document declares its
language and title; the fonts are embedded with their Unicode maps, so its text can be searched, copied and
read aloud. A page footer says "page n of N".
"""
from __future__ import annotations

import importlib.util
from pathlib import Path

from fpdf import FPDF
from fpdf.fonts import FontFace

from relais.i18n import Translator

from .summary import Block, Heading, Para, Signatures, Table


def _fonts() -> Path:
    spec = importlib.util.find_spec("matplotlib")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("matplotlib (a dependency of Relais) is not installed: its DejaVu fonts draw the PDF")
    return Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf"


class _Pdf(FPDF):
    footer_text = ""

    def footer(self) -> None:
        self.set_y(-12)
        self.set_font("DejaVu", size=8)
        self.cell(0, 6, self.footer_text.format(page=self.page_no(), pages="{nb}"), align="C")


def render_pdf(title: str, blocks: list[Block], _: Translator) -> bytes:
    pdf = _Pdf(format="A4")
    pdf.footer_text = _("Page {page} of {pages}")
    fonts = _fonts()
    pdf.add_font("DejaVu", "", fonts / "DejaVuSans.ttf")
    pdf.add_font("DejaVu", "B", fonts / "DejaVuSans-Bold.ttf")
    pdf.add_font("DejaVuMono", "", fonts / "DejaVuSansMono.ttf")
    pdf.set_lang(_.lang)
    pdf.set_title(title)
    pdf.set_creator("Relais vault handover")
    pdf.set_auto_page_break(True, margin=18)
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 16)
    pdf.multi_cell(0, 8, title, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(2)
    for b in blocks:
        _draw(pdf, b)
    return bytes(pdf.output())


def _draw(pdf: FPDF, b: Block) -> None:
    if isinstance(b, Heading):
        pdf.ln(3)
        pdf.set_font("DejaVu", "B", 13)
        pdf.multi_cell(0, 7, b.text, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(1)
    elif isinstance(b, Para):
        pdf.set_font("DejaVu", "B" if b.strong else "", 10)
        pdf.multi_cell(0, 5, b.text, align="L", new_x="LMARGIN", new_y="NEXT")
        pdf.ln(2)
    elif isinstance(b, Table):
        _table(pdf, b)
    elif isinstance(b, Signatures):
        _signatures(pdf, b)


def _table(pdf: FPDF, t: Table) -> None:
    pdf.set_font("DejaVu", "B", 10)
    pdf.multi_cell(0, 6, t.caption, align="L", new_x="LMARGIN", new_y="NEXT")
    small = bool(t.mono)
    pdf.set_font("DejaVu", "", 7 if small else 9)
    aligns = tuple("RIGHT" if i in t.numeric else "LEFT" for i in range(len(t.header)))
    with pdf.table(col_widths=tuple(t.widths) if t.widths else None, text_align=aligns, line_height=4 if small else 5,
                   headings_style=FontFace(emphasis="BOLD", fill_color=(235, 235, 235)), first_row_as_headings=True,
                   padding=1) as table:
        table.row(t.header)
        for r in t.rows:
            row = table.row()
            for i, text in enumerate(r):
                row.cell(text, style=FontFace(family="DejaVuMono") if i in t.mono else None)
    if t.more:
        pdf.set_font("DejaVu", "", 9)
        pdf.multi_cell(0, 5, t.more, align="L", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(3)


def _signatures(pdf: FPDF, s: Signatures) -> None:
    if pdf.will_page_break(60):
        pdf.add_page()
    width = (pdf.epw - 10) / len(s.who)
    top = pdf.get_y()
    for n, who in enumerate(s.who):
        x = pdf.l_margin + n * (width + 10)
        pdf.rect(x, top, width, 55)
        pdf.set_xy(x + 3, top + 3)
        pdf.set_font("DejaVu", "B", 10)
        pdf.cell(width - 6, 6, who)
        pdf.set_font("DejaVu", "", 9)
        for i, line in enumerate(s.lines):
            pdf.set_xy(x + 3, top + 14 + i * 12)
            pdf.cell(width - 6, 6, line)
    pdf.set_y(top + 58)
