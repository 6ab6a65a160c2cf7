"""The report as one self-contained HTML page: sections of charts, tables and notes.

Every script and style is inline (plotly.js from the plotly wheel, once in the head), no
font is fetched (the system's sans-serif), and no element names a remote resource, so the
file opens offline and makes no request. Each chart sits in `<figure class="chart">`
(what the browser test counts); all text is HTML-escaped.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass, field

import plotly.graph_objects as go
from plotly.offline import get_plotlyjs

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0;
       color: #222; background: #fafafa; }
header { background: #1f3b57; color: #fff; padding: 16px 28px; }
header h1 { margin: 0 0 4px 0; font-size: 22px; }
nav a { color: #cfe3f7; margin-right: 14px; font-size: 14px; }
main { padding: 8px 28px 40px 28px; max-width: 1300px; }
section { background: #fff; border: 1px solid #e3e3e3; border-radius: 6px;
          padding: 10px 18px; margin: 16px 0; }
h2 { font-size: 18px; border-bottom: 1px solid #eee; padding-bottom: 6px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0 14px 0; }
th, td { border-bottom: 1px solid #eee; padding: 3px 10px; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { color: #666; font-style: italic; }
p.verdict { font-weight: 600; padding: 8px 12px; border-radius: 4px; }
p.verdict.no { background: #fdecea; color: #8a1c1c; }
p.verdict.yes { background: #e8f5e9; color: #1b5e20; }
figure.chart { margin: 10px 0 18px 0; }
"""


@dataclass(frozen=True)
class Table:
    """A table: column names and rows of already formatted cells; `numeric`: the indexes
    of right-aligned columns."""

    columns: Sequence[str]
    rows: Sequence[Sequence[object]]
    numeric: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Note:
    """A sentence: a plain `note` (why something is not shown) or a `verdict` (yes/no)."""

    text: str
    kind: str = "note"  # "note", "verdict-yes" or "verdict-no"


Block = go.Figure | Table | Note


@dataclass
class Section:
    """A titled part of the page; `anchor` is its id for the navigation bar."""

    title: str
    anchor: str
    blocks: list[Block] = field(default_factory=list)


def _table(table: Table) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in table.columns)
    opening = ['<td class="num">' if i in table.numeric else "<td>"
               for i in range(len(table.columns))]
    body = "".join(
        "<tr>" + "".join(f"{opening[i]}{html.escape('' if cell is None else str(cell))}</td>"
                         for i, cell in enumerate(row)) + "</tr>"
        for row in table.rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _note(note: Note) -> str:
    if note.kind == "note":
        return f'<p class="note">{html.escape(note.text)}</p>'
    kind = "yes" if note.kind == "verdict-yes" else "no"
    return f'<p class="verdict {kind}">{html.escape(note.text)}</p>'


def _chart(fig: go.Figure, number: int) -> str:
    title = fig.layout.title.text or f"chart {number}"
    div = fig.to_html(full_html=False, include_plotlyjs=False, include_mathjax=False,
                      div_id=f"chart-{number}",
                      config={"displaylogo": False, "responsive": True,
                              "showSendToCloud": False})
    return f'<figure class="chart" data-title="{html.escape(title)}">{div}</figure>'


def render(title: str, subtitle: str, sections: Sequence[Section]) -> str:
    """The whole page as a string (UTF-8 when written)."""
    parts: list[str] = []
    number = 0
    for section in sections:
        body = []
        for block in section.blocks:
            if isinstance(block, go.Figure):
                number += 1
                body.append(_chart(block, number))
            elif isinstance(block, Table):
                body.append(_table(block))
            else:
                body.append(_note(block))
        parts.append(f'<section id="{html.escape(section.anchor)}"><h2>'
                     f"{html.escape(section.title)}</h2>{''.join(body)}</section>")
    nav = "".join(f'<a href="#{html.escape(s.anchor)}">{html.escape(s.title)}</a>'
                  for s in sections)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        f"<title>{html.escape(title)}</title><style>{STYLE}</style>"
        f"<script type=\"text/javascript\">{get_plotlyjs()}</script></head><body>"
        f"<header><h1>{html.escape(title)}</h1><div>{html.escape(subtitle)}</div>"
        f"<nav>{nav}</nav></header><main>{''.join(parts)}</main></body></html>\n"
    )
