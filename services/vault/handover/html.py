"""The handover summary as one self-contained, printable HTML page (accessible: RGAA).

The page's language is declared; headings are in order (one ``h1``); each table has a caption and column
headers with their scope; hashes are in ``code``; nothing but the page itself (no script, no remote style).
"""
from __future__ import annotations

from html import escape

from .summary import Block, Heading, Para, Table

_STYLE = """
body { font-family: "DejaVu Sans", Arial, sans-serif; color: #1e1e1e; max-width: 60rem; margin: 2rem auto;
       padding: 0 1rem; line-height: 1.45; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.25rem; margin-top: 2rem; border-bottom: 1px solid #666; }
table { border-collapse: collapse; margin: 1rem 0; width: 100%; }
caption { text-align: left; font-weight: bold; padding: .3rem 0; }
th, td { border: 1px solid #666; padding: .3rem .5rem; text-align: left; vertical-align: top; }
th { background: #eee; }
td.num { text-align: right; white-space: nowrap; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: .8rem; word-break: break-all; }
.strong { font-weight: bold; }
.signatures { display: flex; gap: 2rem; margin-top: 1rem; }
.signatures section { flex: 1; border: 1px solid #666; padding: .5rem 1rem; min-height: 10rem; }
.signatures p { margin: .5rem 0 1.8rem; }
@media print { body { margin: 0; max-width: none; } h2 { break-after: avoid; } tr { break-inside: avoid; } }
"""


def _cell(text: str, col: int, table: Table) -> str:
    value = f"<code>{escape(text)}</code>" if col in table.mono and text else escape(text)
    return f'<td class="num">{value}</td>' if col in table.numeric else f"<td>{value}</td>"


def _table(t: Table) -> str:
    head = "".join(f'<th scope="col">{escape(h)}</th>' for h in t.header)
    rows = "".join("<tr>" + "".join(_cell(c, i, t) for i, c in enumerate(r)) + "</tr>\n" for r in t.rows)
    more = f"<p>{escape(t.more)}</p>" if t.more else ""
    return (f"<table>\n<caption>{escape(t.caption)}</caption>\n<thead><tr>{head}</tr></thead>\n"
            f"<tbody>\n{rows}</tbody>\n</table>\n{more}")


def _block(b: Block) -> str:
    if isinstance(b, Heading):
        return f"<h2>{escape(b.text)}</h2>\n"
    if isinstance(b, Para):
        return f'<p class="strong">{escape(b.text)}</p>\n' if b.strong else f"<p>{escape(b.text)}</p>\n"
    if isinstance(b, Table):
        return _table(b)
    sections = "".join(f"<section><h3>{escape(who)}</h3>" + "".join(f"<p>{escape(line)}</p>" for line in b.lines)
                       + "</section>" for who in b.who)
    return f'<div class="signatures">{sections}</div>\n'


def render_html(title: str, blocks: list[Block], lang: str) -> str:
    body = "".join(_block(b) for b in blocks)
    return (f'<!doctype html>\n<html lang="{escape(lang)}">\n<head>\n<meta charset="utf-8">\n'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{escape(title)}</title>\n'
            f"<style>{_STYLE}</style>\n</head>\n<body>\n<main>\n<h1>{escape(title)}</h1>\n{body}</main>\n"
            "</body>\n</html>\n")

