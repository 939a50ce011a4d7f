"""A view written as a file: HTML (a real ``<table>``, one ``<tr>`` per row), SVG, Markdown or
plain text. All four show the rows the console shows; none goes through rich's ``Table``, so a
100,000-row view writes in seconds.

HTML and SVG carry their colours inline, on each element: no style sheet, so a page or a notebook
showing several of them never lets one restyle another, and notebook style sheets (which
right-align table cells) cannot move them. The colours are mid-tones that read on light and dark
backgrounds alike; text without a colour takes the page's."""

from __future__ import annotations

import html
import os
import re
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from rich.style import Style
from rich.terminal_theme import TerminalTheme

from shapetrace.render.cells import Cell, Line, cell_width, merged, plain, text_width

if TYPE_CHECKING:
    from shapetrace.render.grid import GridView

FORMATS = {
    ".html": "html",
    ".htm": "html",
    ".svg": "svg",
    ".md": "markdown",
    ".markdown": "markdown",
    ".txt": "text",
}
HIGHLIGHT = "rgba(229, 72, 77, 0.18)"  # a failed op's row, over a light or a dark page
SVG_HIGHLIGHT = "#fde2e1"  # the same on the SVG's white
MONOSPACE = "ui-monospace,SFMono-Regular,Menlo,Consolas,'DejaVu Sans Mono',monospace"

_MID = [  # black, red, green, yellow, blue, magenta, cyan, white: contrast >= 3 on white and on #1e1e1e
    (127, 127, 127), (229, 72, 77), (47, 158, 68), (184, 134, 11),
    (61, 123, 240), (179, 79, 209), (14, 143, 176), (127, 127, 127),
]  # fmt: skip
THEME = TerminalTheme((255, 255, 255), (0, 0, 0), _MID, _MID)  # dim text: grey, on either background


@cache
def css(style: str | None, svg: bool = False) -> str:
    """A rich style as inline CSS in :data:`THEME`'s colours (for SVG, text is painted with
    ``fill``; backgrounds are left to the row). Dim text without a colour is grey."""
    if not style:
        return ""
    parsed = Style.parse(style)
    if parsed.dim and parsed.color is not None:  # dim red would fade to pink on white: the colour alone
        parsed += Style(dim=False)
    declarations = []
    for declaration in parsed.get_html_style(THEME).split("; "):
        name = declaration.partition(":")[0]
        if not declaration or name in ("text-decoration-color", "background-color"):
            continue
        declarations.append(
            declaration.replace("color:", "fill:", 1) if svg and name == "color" else declaration
        )
    return ";".join(declarations).replace(": ", ":")


def spans(fragments: Cell | Line) -> str:
    """Fragments as HTML: each styled one a ``<span>`` with its colours inline."""
    out = []
    for text, style in fragments:
        escaped = html.escape(text, quote=False)
        declarations = css(style)
        out.append(f'<span style="{declarations}">{escaped}</span>' if declarations else escaped)
    return "".join(out)


# --- HTML -------------------------------------------------------------------------------------------

BOX = f"font-family:{MONOSPACE};font-size:13px;line-height:1.2;text-align:left;padding:4px 0"
PRE = "margin:0;padding:0;font:inherit;line-height:inherit;background:none;color:inherit;white-space:pre;border:none"
TABLE = "border-collapse:collapse;margin:8px 0;border:none;font:inherit;table-layout:auto;width:auto"
CELL = "white-space:pre;vertical-align:top;padding:1px 1ch;border:none"  # notebooks right-align cells
TH = f"{CELL};font-weight:bold;border-bottom:1px solid rgba(127,127,127,.6)"
PAGE_STYLE = f""":root{{color-scheme:light dark}}
body{{margin:16px;font-family:{MONOSPACE}}}"""


def html_fragment(view: GridView) -> str:
    """The view as an HTML fragment, styled inline: header and footer lines in ``<pre>``, the
    rows as a ``<table>``, then what follows the view (its diagnosis) in a ``<pre>``."""
    body = [f'<div class="shapetrace" style="{BOX}">']
    header = view.header
    if header:
        body.append(f'<pre style="{PRE}">' + "\n".join(spans(line) for line in header) + "</pre>")
    if view.title:
        body.append(f'<p style="margin:8px 0 0;font-style:italic">{html.escape(view.title)}</p>')
    aligns = ["right" if c.justify == "right" else "left" for c in view.columns]
    column_styles = [css(c.style) for c in view.columns]
    body.append(f'<table style="{TABLE}"><thead><tr>')
    body.append(
        "".join(
            f'<th style="{TH};text-align:{a}">{html.escape(c.header)}</th>'
            for c, a in zip(view.columns, aligns)
        )
    )
    body.append("</tr></thead><tbody>")
    cell_styles = [
        f' style="{CELL};text-align:{align}{";" + style if style else ""}"'
        for align, style in zip(aligns, column_styles)
    ]
    for row in view.rows:
        cells = "".join(
            f"<td{style}>{spans(fragments)}</td>" for fragments, style in zip(row.cells, cell_styles)
        )
        body.append((f'<tr style="background:{HIGHLIGHT}">' if row.style else "<tr>") + cells + "</tr>")
    body.append("</tbody></table>")
    footer = view.footer
    if footer:
        body.append(f'<pre style="{PRE}">' + "\n".join(spans(line) for line in footer) + "</pre>")
    after = view.after
    if after:
        body.append(
            f'<pre style="{PRE};margin-top:8px">' + "\n".join(spans(line) for line in after) + "</pre>"
        )
    body.append("</div>")
    return "\n".join(body)


def html_page(title: str, body: str, style: str = "", script: str = "") -> str:
    """A standalone page: UTF-8, light or dark as the reader's system is, ``style`` and ``script``
    inline."""
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta name="viewport" content="width=device-width, initial-scale=1">\n<title>{html.escape(title)}</title>\n'
        f"<style>\n{PAGE_STYLE}\n{style}</style>\n</head>\n<body>\n{body}\n"
        + (f"<script>\n{script}\n</script>\n" if script else "")
        + "</body>\n</html>\n"
    )


def to_html(view: GridView, page: bool = True) -> str:
    """The view as HTML: a standalone page, or (``page=False``) a fragment for a notebook."""
    fragment = html_fragment(view)
    if not page:
        return fragment
    return html_page(view.title or f"shapetrace {getattr(view, 'name', 'trace')}", fragment)


# --- SVG --------------------------------------------------------------------------------------------

CHAR_WIDTH, LINE_HEIGHT, FONT_SIZE, MARGIN = 8.4, 18, 14, 12


def to_svg(view: GridView) -> str:
    """The view as the console lays it out (no width limit), one ``<text>`` per line. Every run
    of text is placed at its column and stretched to its cells' width (``textLength``), so
    nothing drifts whatever the font's advance."""
    lines: list[tuple[Line, str | None]] = [(line, None) for line in view.header]
    if lines:
        lines.append(((), None))
    lines.extend(view.layout(view.rows))
    lines.extend((line, None) for line in view.footer)
    if view.after:
        lines.append(((), None))
        lines.extend((line, None) for line in view.after)
    width = max((cell_width(line) for line, _ in lines), default=0)
    svg_width = round(width * CHAR_WIDTH + 2 * MARGIN)
    svg_height = round(len(lines) * LINE_HEIGHT + 2 * MARGIN)
    out = []
    escape = html.escape
    for number, (line, row_style) in enumerate(lines):
        top = MARGIN + number * LINE_HEIGHT
        if row_style:
            out.append(
                f'<rect x="{MARGIN}" y="{top}" width="{svg_width - 2 * MARGIN}" height="{LINE_HEIGHT}" '
                f'fill="{SVG_HIGHLIGHT}"/>'
            )
        column, runs = 0, []
        for text, style in merged(line):
            cells = text_width(text)
            stripped = text.strip()
            if stripped:
                lead = text_width(text) - text_width(text.lstrip())
                declarations = css(style, svg=True)
                runs.append(
                    f'<tspan x="{MARGIN + (column + lead) * CHAR_WIDTH:.1f}" '
                    f'textLength="{text_width(stripped) * CHAR_WIDTH:.1f}" lengthAdjust="spacingAndGlyphs"'
                    + (f' style="{declarations}"' if declarations else "")
                    + f">{escape(stripped, quote=False)}</tspan>"
                )
            column += cells
        if runs:
            out.append(f'<text y="{top + LINE_HEIGHT - 5}">{"".join(runs)}</text>')
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{svg_width}" height="{svg_height}" '
        f'viewBox="0 0 {svg_width} {svg_height}" font-family="\'DejaVu Sans Mono\',Menlo,Consolas,monospace" '
        f'font-size="{FONT_SIZE}" fill="#000" xml:space="preserve">\n'
        f'<rect width="100%" height="100%" fill="#ffffff"/>\n' + "\n".join(out) + "\n</svg>\n"
    )


# --- Markdown ---------------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def _markdown_cell(fragments: Cell) -> str:
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", plain(fragments))
    stripped = text.lstrip(" ")
    return "\u00a0" * (len(text) - len(stripped)) + stripped.rstrip()  # keep tree indentation


def to_markdown(view: GridView) -> str:
    """The view as a Markdown table (GitHub flavour), header lines above it, footer lines below,
    then what follows the view (its diagnosis) as a code block."""
    out = []
    if view.title:
        out += [f"**{_markdown_cell(((view.title, None),))}**", ""]
    header = view.header
    if header:
        out += [f"- {_markdown_cell(line)}" for line in header] + [""]
    out.append("| " + " | ".join(_markdown_cell(((c.header, None),)) for c in view.columns) + " |")
    out.append("|" + "|".join(" ---: " if c.justify == "right" else " --- " for c in view.columns) + "|")
    for row in view.rows:
        out.append("| " + " | ".join(_markdown_cell(fragments) for fragments in row.cells) + " |")
    footer = [line for line in view.footer if plain(line).strip()]
    if footer:
        out += [""] + [_markdown_cell(line) + "  " for line in footer]
    if view.after:  # the diagnosis panel, as the console draws it
        out += ["", "```"] + [plain(line).rstrip() for line in view.after] + ["```"]
    return "\n".join(out) + "\n"


# --- text and files ---------------------------------------------------------------------------------


def to_text(view: GridView) -> str:
    """The view as plain text, laid out at its full width (trailing blanks dropped)."""
    lines = [plain(line) for line in view.header]
    if lines:
        lines.append("")
    lines.extend("".join(text for text, _ in line).rstrip() for line, _ in view.layout(view.rows))
    lines.extend(plain(line) for line in view.footer)
    if view.after:
        lines.append("")
        lines.extend(plain(line).rstrip() for line in view.after)
    return "\n".join(lines) + "\n"


def save(view: GridView, path: str | Path, format: str | None = None) -> Path:
    """Write ``view`` to ``path`` in ``format`` (``html``, ``svg``, ``markdown``, ``text``; by
    default from the suffix). The file is written whole or not at all."""
    path = Path(path)
    format = format or FORMATS.get(path.suffix.lower())
    writers = {"html": to_html, "svg": to_svg, "markdown": to_markdown, "text": to_text}
    if format not in writers:
        raise ValueError(
            f"cannot tell the format of {path}: use a .html, .svg, .md or .txt name, or format="
            + "/".join(writers)
        )
    content = writers[format](view)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(content, encoding="utf-8")
    os.replace(partial, path)
    return path
