"""A view written as a file: HTML (a real ``<table>``, one ``<tr>`` per row), SVG, Markdown or
plain text. All four show the rows the console shows; none goes through rich's ``Table``, so a
100,000-row view writes in seconds."""

from __future__ import annotations

import html
import os
import re
from pathlib import Path
from typing import TYPE_CHECKING

from rich.style import Style
from rich.terminal_theme import DEFAULT_TERMINAL_THEME

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
HIGHLIGHT = "#fde2e1"  # rows the console shows on a dark background (a failed op)


class _Classes:
    """rich style names as CSS classes (``s0``, ``s1``, ...), in the colours rich exports with."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}

    def __call__(self, style: str | None) -> str:
        if not style:
            return ""
        name = self.names.get(style)
        if name is None:
            name = self.names[style] = f"s{len(self.names)}"
        return name

    def css(self, scope: str, svg: bool = False) -> str:
        rules = []
        for style, name in self.names.items():
            declarations = Style.parse(style).get_html_style(DEFAULT_TERMINAL_THEME)
            if svg:  # text in SVG is painted with fill; backgrounds are rectangles
                declarations = ";".join(
                    d.replace("color:", "fill:", 1) if d.strip().startswith("color:") else d
                    for d in declarations.split(";")
                    if not d.strip().startswith(("background-color", "text-decoration-color"))
                )
            else:
                declarations = ";".join(
                    d for d in declarations.split(";") if not d.strip().startswith("background-color")
                )
            if declarations.strip():
                rules.append(f"{scope} .{name}{{{declarations}}}")
        return "\n".join(rules)


def _spans(fragments: Cell | Line, classes: _Classes) -> str:
    out = []
    for text, style in fragments:
        escaped = html.escape(text, quote=False)
        name = classes(style)
        out.append(f'<span class="{name}">{escaped}</span>' if name else escaped)
    return "".join(out)


# --- HTML -------------------------------------------------------------------------------------------

_HTML_CSS = (
    """\
.shapetrace{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"DejaVu Sans Mono",monospace;font-size:13px;
color:#000;background:#fff;padding:8px}
.shapetrace pre{margin:0;font:inherit}
.shapetrace table{border-collapse:collapse;margin:8px 0}
.shapetrace th{font-weight:bold;text-align:left;border-bottom:1px solid #999;padding:2px 10px}
.shapetrace td{padding:1px 10px;white-space:pre;vertical-align:top}
.shapetrace .right{text-align:right}
.shapetrace tr.highlight{background:"""
    + HIGHLIGHT
    + "}"
)


def to_html(view: GridView, page: bool = True) -> str:
    """The view as HTML: header and footer lines in ``<pre>``, the rows as a ``<table>``.
    ``page=False`` gives a fragment (for a notebook) instead of a whole page."""
    classes = _Classes()
    body = ['<div class="shapetrace">']
    header = view.header
    if header:
        body.append('<pre class="header">' + "\n".join(_spans(line, classes) for line in header) + "</pre>")
    if view.title:
        body.append(f"<p><em>{html.escape(view.title)}</em></p>")
    aligns = [' class="right"' if c.justify == "right" else "" for c in view.columns]
    column_classes = [classes(c.style) for c in view.columns]
    body.append("<table><thead><tr>")
    body.append("".join(f"<th{a}>{html.escape(c.header)}</th>" for c, a in zip(view.columns, aligns)))
    body.append("</tr></thead><tbody>")
    for row in view.rows:
        cells = []
        for fragments, align, column_class in zip(row.cells, aligns, column_classes):
            classes_attr = " ".join(filter(None, ("right" if align else "", column_class)))
            cells.append(f'<td class="{classes_attr}">' if classes_attr else "<td>")
            cells.append(_spans(fragments, classes))
            cells.append("</td>")
        body.append(('<tr class="highlight">' if row.style else "<tr>") + "".join(cells) + "</tr>")
    body.append("</tbody></table>")
    footer = view.footer
    if footer:
        body.append('<pre class="footer">' + "\n".join(_spans(line, classes) for line in footer) + "</pre>")
    body.append("</div>")
    style = f"<style>\n{_HTML_CSS}\n{classes.css('.shapetrace')}\n</style>"
    if not page:
        return style + "\n" + "\n".join(body)
    title = html.escape(view.title or f"shapetrace {getattr(view, 'name', 'trace')}")
    return (
        f'<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>{title}</title>\n{style}\n'
        "</head>\n<body>\n" + "\n".join(body) + "\n</body>\n</html>\n"
    )


# --- SVG --------------------------------------------------------------------------------------------

CHAR_WIDTH, LINE_HEIGHT, FONT_SIZE, MARGIN = 8.4, 18, 14, 12


def to_svg(view: GridView) -> str:
    """The view as the console lays it out (no width limit), one ``<text>`` per line. Each run of
    text after blanks is placed at its column, so columns line up whatever the font's advance."""
    lines: list[tuple[Line, str | None]] = [(line, None) for line in view.header]
    if lines:
        lines.append(((), None))
    lines.extend(view.layout(view.rows))
    lines.extend((line, None) for line in view.footer)
    classes = _Classes()
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
                f'fill="{HIGHLIGHT}"/>'
            )
        column, place, spans = 0, True, []
        for text, style in merged(line):
            if not text.strip():
                place = place or bool(text)
                column += text_width(text)
                continue
            name = classes(style)
            attributes = (f' x="{MARGIN + column * CHAR_WIDTH:.1f}"' if place else "") + (
                f' class="{name}"' if name else ""
            )
            spans.append(f"<tspan{attributes}>{escape(text, quote=False)}</tspan>")
            column += text_width(text)
            place = False
        if spans:
            out.append(f'<text y="{top + LINE_HEIGHT - 5}">{"".join(spans)}</text>')
    style = (
        f"text{{font-family:'DejaVu Sans Mono',Menlo,Consolas,monospace;font-size:{FONT_SIZE}px;"
        f"white-space:pre;fill:#000}}\n{classes.css('svg', svg=True)}"
    )
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{svg_width}" height="{svg_height}" '
        f'viewBox="0 0 {svg_width} {svg_height}">\n<style>\n{style}\n</style>\n'
        f'<rect width="100%" height="100%" fill="#ffffff"/>\n' + "\n".join(out) + "\n</svg>\n"
    )


# --- Markdown ---------------------------------------------------------------------------------------

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")


def _markdown_cell(fragments: Cell) -> str:
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", plain(fragments))
    stripped = text.lstrip(" ")
    return "\u00a0" * (len(text) - len(stripped)) + stripped.rstrip()  # keep tree indentation


def to_markdown(view: GridView) -> str:
    """The view as a Markdown table (GitHub flavour), header lines above it and footer lines below."""
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
    return "\n".join(out) + "\n"


# --- text and files ---------------------------------------------------------------------------------


def to_text(view: GridView) -> str:
    """The view as plain text, laid out at its full width (trailing blanks dropped)."""
    lines = [plain(line) for line in view.header]
    if lines:
        lines.append("")
    lines.extend("".join(text for text, _ in line).rstrip() for line, _ in view.layout(view.rows))
    lines.extend(plain(line) for line in view.footer)
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
