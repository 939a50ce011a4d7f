"""The text a grid is made of: styled fragments, cells and lines, and their widths."""

from __future__ import annotations

import io
from collections.abc import Iterable
from typing import Any

from rich.cells import cell_len
from rich.console import Console
from rich.style import Style
from rich.text import Text

Fragment = tuple[str, "str | None"]  # text and its rich style
Cell = tuple[Fragment, ...]
Line = tuple[Fragment, ...]


def cell(text: str, style: str | None = None) -> Cell:
    return ((text, style),) if text else ()


def plain(fragments: Iterable[Fragment]) -> str:
    return "".join(text for text, _ in fragments)


def text_fragments(text: Text) -> Cell:
    """A rich ``Text`` as fragments (its spans flattened; overlapping styles combined)."""
    source = text.plain
    if not text.spans:
        return ((source, _style_name(text.style)),) if source else ()
    cuts = sorted({0, len(source), *(s.start for s in text.spans), *(s.end for s in text.spans)})
    fragments = []
    for start, end in zip(cuts, cuts[1:]):
        if start >= end:
            continue
        styles = [_style_name(text.style)] + [
            _style_name(s.style) for s in text.spans if s.start <= start < s.end
        ]
        fragments.append((source[start:end], " ".join(s for s in styles if s) or None))
    return tuple(fragments)


def text_lines(text: Text) -> list[Line]:
    """A rich ``Text`` of several lines as fragment lines (leading empty lines dropped)."""
    lines = [text_fragments(line) for line in text.split("\n", allow_blank=True)]
    while lines and not plain(lines[0]):
        lines.pop(0)
    return lines


def text_width(text: str) -> int:
    """Terminal cells ``text`` takes (``len`` for ASCII, the common case, which is faster)."""
    return len(text) if text.isascii() else cell_len(text)


def cell_width(fragments: Cell) -> int:
    if len(fragments) == 1:
        return text_width(fragments[0][0])
    return sum(text_width(text) for text, _ in fragments)


def line_text(line: Line) -> Text:
    text = Text()
    for part, style in line:
        text.append(part, style)
    return text


def _style_name(style: str | Style | None) -> str | None:
    if not style:
        return None
    return style if isinstance(style, str) else str(style)


def merged(line: Line) -> Line:
    """``line`` with neighbouring fragments of the same style joined (fewer segments and spans)."""
    out: list[Fragment] = []
    for text, style in line:
        if out and out[-1][1] == style:
            out[-1] = (out[-1][0] + text, style)
        elif text:
            out.append((text, style))
    return tuple(out)


def rich_lines(renderable: Any, width: int) -> list[Line]:
    """Any rich renderable (a diagnosis panel) as fragment lines, as it prints at ``width`` columns."""
    console = Console(file=io.StringIO(), width=width, color_system="truecolor", force_terminal=True)
    return [
        merged(tuple((segment.text, str(segment.style) if segment.style else None) for segment in line))
        for line in console.render_lines(renderable, console.options, pad=False)
    ]
