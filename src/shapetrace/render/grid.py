"""Views of a trace as a grid: columns, rows of styled text fragments, lines above and below.

Every view (the flat table, the module tree, the module summary) is a :class:`GridView`; the
console, HTML, SVG and Markdown all render the same rows. The console gets them laid out here as
plain segments in the look of rich's ``SIMPLE_HEAD`` table, at every size: a rich ``Table`` costs
~360 µs a row (minutes for 100,000 rows), this layout ~20.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from shapetrace.render.cells import (
    Cell,
    Fragment,
    Line,
    cell_width,
    line_text,
    merged,
    text_width,
)
from shapetrace.render.export import save, to_html, to_markdown, to_svg


@dataclass(frozen=True)
class Column:
    """A column: header, style, justification. ``min_width`` caps the width a column keeps when the
    console is narrow (``None``: it keeps its full width); the ``shrink`` column is cut with ``…``."""

    header: str
    style: str | None = None
    justify: str = "left"
    min_width: int | None = None
    shrink: bool = False


@dataclass(frozen=True)
class Row:
    """One row; ``style`` applies to the whole row (a failed op), exports show it highlighted."""

    cells: tuple[Cell, ...]
    style: str | None = None


class GridView:
    """Base of the views: subclasses give ``columns`` and ``make_rows()``, and may give ``header_lines()``
    (above the grid) and ``footer_lines()`` (below). Renders in rich, and saves as HTML, SVG, Markdown."""

    columns: tuple[Column, ...] = ()
    title: str | None = None

    def make_rows(self) -> list[Row]:
        raise NotImplementedError

    def header_lines(self) -> list[Line]:
        return []

    def footer_lines(self) -> list[Line]:
        return []

    @cached_property
    def rows(self) -> list[Row]:
        """The rows, built once per view."""
        return self.make_rows()

    @cached_property
    def header(self) -> list[Line]:
        """The header lines, built once per view."""
        return self.header_lines()

    @cached_property
    def footer(self) -> list[Line]:
        """The footer lines, built once per view (after the rows, which they may count)."""
        self.rows  # noqa: B018
        return self.footer_lines()

    # --- rich -----------------------------------------------------------------------------------

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in self.header:
            yield line_text(line)
        if self.header:
            yield Text()
        rows = self.rows
        yield _Segments(self.layout(rows, options.max_width))
        for line in self.footer:
            yield line_text(line)

    # --- layout ---------------------------------------------------------------------------------

    def widths(self, rows: Sequence[Row]) -> list[int]:
        """Each column's width: its widest cell or its header."""
        widths = [cell_len(c.header) for c in self.columns]
        for row in rows:
            for i, fragments in enumerate(row.cells):
                width = cell_width(fragments)
                if width > widths[i]:
                    widths[i] = width
        return widths

    def layout(self, rows: Sequence[Row], max_width: int | None = None) -> Iterator[tuple[Line, str | None]]:
        """The grid as text lines and their row styles, in the look of rich's ``SIMPLE_HEAD`` table: a
        blank line, the header, a rule, the rows, a blank line. With ``max_width`` the shrink column
        is cut to fit."""
        columns = self.columns
        widths = self.widths(rows)
        total = sum(widths) + 3 * len(widths) + 1
        if max_width is not None and total > max_width:
            widths = _narrowed(columns, widths, total - max_width)
            total = sum(widths) + 3 * len(widths) + 1
        if self.title:
            yield ((self.title.center(total).rstrip(), "italic"),), None
        yield ((" " * total, None),), None
        header = Row(tuple(((c.header, "bold"),) for c in columns))
        lay_out = _row_layout(columns, widths)
        yield lay_out(header), None
        yield ((" " + "─" * (total - 2) + " ", None),), None
        for row in rows:
            yield lay_out(row), row.style
        yield ((" " * total, None),), None

    # --- files ----------------------------------------------------------------------------------

    def to_html(self, page: bool = True) -> str:
        """A standalone HTML page (``page=False``: a fragment for a notebook) with a real ``<table>``."""
        return to_html(self, page=page)

    def to_svg(self) -> str:
        return to_svg(self)

    def to_markdown(self) -> str:
        return to_markdown(self)

    def save(self, path: str | Path, format: str | None = None) -> Path:
        """Write the view to ``path`` as ``html``, ``svg``, ``md`` or ``txt`` (by default, by suffix)."""
        return save(self, path, format)

    def _repr_html_(self) -> str:
        return self.to_html(page=False)


def _row_layout(columns: Sequence[Column], widths: Sequence[int]):
    """A function laying out one row as a line: each cell cut or padded to its column's width,
    with the column's style, one space before it and two after (rich's padding and gap)."""
    merged: dict[tuple[str, str], str] = {}
    plan = [(c.style, c.justify == "right", w) for c, w in zip(columns, widths)]

    def lay_out(row: Row) -> Line:
        line: list[Fragment] = [(" ", None)]
        append = line.append
        for fragments, (column_style, right, width) in zip(row.cells, plan):
            length = cell_width(fragments)
            if length > width:
                fragments, length = _cut(fragments, width), width
            gap = " " * (width - length)
            append((" " + gap if right else " ", column_style))
            for text, style in fragments:
                if column_style:
                    key = (column_style, style or "")
                    style = merged.get(key) or merged.setdefault(
                        key, f"{column_style} {style}" if style else column_style
                    )
                append((text, style))
            append(("  " if right else gap + "  ", column_style))
        return tuple(line)

    return lay_out


def _narrowed(columns: Sequence[Column], widths: list[int], excess: int) -> list[int]:
    """Widths ``excess`` cells narrower, if it can be done: the shrink column first, down to its
    ``min_width``; then the others down to theirs; then the shrink column down to one cell."""
    widths = list(widths)
    order = [i for i, c in enumerate(columns) if c.shrink]
    floors = {i: columns[i].min_width or 1 for i in order}
    order += [i for i, c in enumerate(columns) if not c.shrink and c.min_width is not None]
    floors.update({i: columns[i].min_width for i in order if i not in floors})
    for i in order + [i for i, c in enumerate(columns) if c.shrink]:
        floor = floors[i] if excess and widths[i] > floors[i] else 1
        cut = min(excess, max(0, widths[i] - max(floor, 1)))
        widths[i] -= cut
        excess -= cut
        floors[i] = 1
    return widths


def _cut(fragments: Cell, width: int) -> Cell:
    kept: list[Fragment] = []
    room = width - 1
    for text, style in fragments:
        if room <= 0:
            break
        part = text if text_width(text) <= room else text[:room]
        kept.append((part, style))
        room -= text_width(part)
    return (*kept, ("…", None))


class _Segments:
    """Laid-out lines as rich segments: fast enough for 100,000 rows. Without colour (a file, a
    pipe) each line is one plain segment."""

    def __init__(self, lines: Iterable[tuple[Line, str | None]]) -> None:
        self.lines = lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        newline = Segment.line()
        if console.no_color or console.color_system is None:
            for line, _ in self.lines:
                yield Segment("".join(text for text, _ in line))
                yield newline
            return
        styles: dict[tuple[str | None, str | None], Style] = {}
        for line, row_style in self.lines:
            for text, style in merged(line):
                key = (style, row_style)
                found = styles.get(key)
                if found is None:
                    found = styles[key] = Style.parse(" ".join(s for s in key if s)) if any(key) else Style()
                yield Segment(text, found)
            yield newline
