"""The report's document model and its two renderers.

A report is a list of :class:`Section` s holding paragraphs (``**bold**`` and
```code``` allowed), sub-headings, :class:`Table` s and :class:`Figure` s. It is
rendered twice: Markdown (figures linked from ``figures/``) and one
self-contained HTML page (figures embedded as data URIs).
"""

from __future__ import annotations

import base64
import html
import re
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    highlight: set[tuple[int, int]] = field(default_factory=set)  # (row, col) cells to emphasise
    caption: str = ""


@dataclass
class Figure:
    name: str  # file name under figures/
    caption: str


@dataclass
class Section:
    id: str
    title: str
    blocks: list = field(default_factory=list)  # str (paragraph, **bold** allowed) | ("h3", str) | Table | Figure

    def p(self, text: str) -> None:
        self.blocks.append(text)

    def h3(self, text: str) -> None:
        self.blocks.append(("h3", text))


CSS = """
:root{--fg:#1d2430;--muted:#5b6575;--accent:#2f4b7c;--line:#e3e7ee;--hl:#fff1d6}
*{box-sizing:border-box}body{font:15px/1.55 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;color:var(--fg);margin:0;background:#f6f7f9}
main{max-width:980px;margin:0 auto;padding:24px 18px 60px;background:#fff}
h1{font-size:1.7em;margin:.2em 0 .1em}h2{font-size:1.3em;margin:2em 0 .6em;padding-bottom:.25em;border-bottom:2px solid var(--accent);color:var(--accent)}
h3{font-size:1.05em;margin:1.4em 0 .4em}nav{font-size:.9em;margin:.8em 0 1.2em;color:var(--muted)}nav a{color:var(--accent);margin-right:.9em;text-decoration:none}
.meta{color:var(--muted);font-size:.9em}figure{margin:1em 0}figure img{max-width:100%;height:auto;display:block;margin:0 auto}
figcaption{color:var(--muted);font-size:.85em;text-align:center;margin-top:.3em}
.tw{overflow-x:auto}table{border-collapse:collapse;margin:.6em 0 1em;font-size:.88em;font-variant-numeric:tabular-nums}
th,td{padding:4px 10px;border-bottom:1px solid var(--line);text-align:left;vertical-align:top}th{background:#eef1f6}
td.n,th.n{text-align:right;white-space:nowrap}td.hl{background:var(--hl);font-weight:600}caption{caption-side:bottom;color:var(--muted);font-size:.85em;text-align:left;padding-top:4px}
#summary p{font-size:1.05em}
@media (max-width:600px){body{font-size:14px}main{padding:12px 10px}th,td{padding:3px 6px}}
@media print{body{background:#fff}main{max-width:none;padding:0}nav{display:none}h2{break-after:avoid}figure,table{break-inside:avoid}}
"""


def inline(text: str) -> str:
    """HTML-escape, then **bold** and `code`."""
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`(.+?)`", r"<code>\1</code>", text)


def is_number(cell: str) -> bool:
    """Right-align columns of numbers, percentages, times and intervals."""
    return bool(re.fullmatch(r"[\s*]*[-+–(\[]?[\d.,]*[\d–][\d.,% \[\]×±msin/()–-]*[*]*", cell)) or cell in ("", "–")


def render_html(title: str, subtitle: str, sections: list[Section], figure_bytes: Callable[[str], bytes]) -> str:
    """One self-contained page; ``figure_bytes(name)`` gives each figure's PNG."""
    out = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><meta name='viewport' "
        f"content='width=device-width,initial-scale=1'>"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body><main>",
        f"<h1>{html.escape(title)}</h1><p class='meta'>{inline(subtitle)}</p><nav>"
        + "".join(f"<a href='#{s.id}'>{html.escape(s.title)}</a>" for s in sections)
        + "</nav>",
    ]
    for s in sections:
        out.append(f"<section id='{s.id}'><h2>{html.escape(s.title)}</h2>")
        for b in s.blocks:
            if isinstance(b, str):
                out.append(f"<p>{inline(b)}</p>")
            elif isinstance(b, tuple):
                out.append(f"<h3>{inline(b[1])}</h3>")
            elif isinstance(b, Table):
                numeric = [j > 0 and all(is_number(r[j]) for r in b.rows if j < len(r)) for j in range(len(b.header))]
                head = "".join(
                    f"<th{' class=n' if numeric[j] else ''}>{inline(h)}</th>" for j, h in enumerate(b.header)
                )
                body = "".join(
                    "<tr>"
                    + "".join(
                        f"<td class='{'n' if numeric[j] else ''}{' hl' if (i, j) in b.highlight else ''}'>{inline(c)}</td>"
                        for j, c in enumerate(r)
                    )
                    + "</tr>"
                    for i, r in enumerate(b.rows)
                )
                cap = f"<caption>{inline(b.caption)}</caption>" if b.caption else ""
                out.append(
                    f"<div class='tw'><table>{cap}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></div>"
                )
            elif isinstance(b, Figure):
                data = base64.b64encode(figure_bytes(b.name)).decode()
                out.append(
                    f"<figure><img alt='{html.escape(b.caption)}' src='data:image/png;base64,{data}'>"
                    f"<figcaption>{inline(b.caption)}</figcaption></figure>"
                )
        out.append("</section>")
    out.append("</main></body></html>\n")
    return "\n".join(out)


def md(text: str, one_line: bool = False) -> str:
    """Text for Markdown: HTML special characters as entities (Markdown viewers render raw HTML, so a class
    named ``<script>`` must not reach them as a tag); ``one_line``: newlines as spaces (tables, headings)."""
    text = html.escape(text, quote=False)
    return " ".join(text.split("\n")) if one_line else text


def md_cell(text: str) -> str:
    return md(text, one_line=True).replace("|", "\\|")


def render_markdown(title: str, subtitle: str, sections: list[Section]) -> str:
    out = [f"# {md(title, True)}", "", md(subtitle), ""]
    for s in sections:
        out += [f"## {md(s.title, True)}", ""]
        for b in s.blocks:
            if isinstance(b, str):
                out += [md(b), ""]
            elif isinstance(b, tuple):
                out += [f"### {md(b[1], True)}", ""]
            elif isinstance(b, Table):
                out.append("| " + " | ".join(md_cell(h) for h in b.header) + " |")
                out.append("|" + "|".join(["---"] + ["---:"] * (len(b.header) - 1)) + "|")
                for i, r in enumerate(b.rows):
                    cells = [
                        f"**{c}**" if (i, j) in b.highlight and c and not c.startswith("**") else c
                        for j, c in enumerate(r)
                    ]
                    out.append("| " + " | ".join(md_cell(c) for c in cells) + " |")
                out += (["", f"*{md(b.caption, True)}*"] if b.caption else []) + [""]
            elif isinstance(b, Figure):
                caption = md(b.caption, True)
                out += [f"![{caption}](figures/{b.name})", "", f"*{caption}*", ""]
    return "\n".join(out)
