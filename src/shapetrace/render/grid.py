"""Views of a trace as a grid: columns, rows of styled text fragments, lines above and below.

Every view (the flat table, the module tree, the module summary) is a :class:`GridView`; the
console, HTML, SVG and Markdown all render the same rows. The console gets them laid out here as
plain segments in the look of rich's ``SIMPLE_HEAD`` table, at every size: a rich ``Table`` costs
~360 µs a row (minutes for 100,000 rows), this layout ~20.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from shapetrace.capture.collector import gc_paused
from shapetrace.render.cells import (
    Cell,
    Fragment,
    Line,
    cell_width,
    line_text,
    merged,
    plain,
    text_width,
)
from shapetrace.render.export import save, to_html, to_markdown, to_svg


@dataclass(frozen=True)
class Column:
    """A column: header, style, justification, and how it fits a narrow console.

    Columns with a ``give`` rank give way in that order (1 first) when the grid is wider than the
    console: each is cut down to ``floor`` cells, then (after the gaps between columns tighten)
    down to ``least``; a column cut below 4 cells is left out. ``cut`` says which end goes
    (``"left"`` keeps the end of a path or ``file:line``). A column that ``wraps`` is never cut: its
    cells continue on the next lines instead. Other columns keep their width."""

    header: str
    style: str | None = None
    justify: str = "left"
    give: int = 0
    floor: int = 0
    least: int = 0
    cut: str = "right"
    wraps: bool = False


FAILED_ROW = (
    "bright_white on red3"  # a failed op's row: its own colours, readable on light and dark terminals
)


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

    def after_lines(self) -> list[Line]:
        """What files and notebooks show after the view (the console prints it separately)."""
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

    @cached_property
    def after(self) -> list[Line]:
        """The lines after the view, built once per view."""
        return self.after_lines()

    # --- rich -----------------------------------------------------------------------------------

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        with gc_paused():  # rows, lines and segments form no cycles
            for line in self.header:
                yield line_text(line)
            if self.header:
                yield Text()
            rows = self.rows
            yield _Segments(self.layout(rows, options.max_width))
            for line in self.footer:
                yield line_text(line)

    # --- layout ---------------------------------------------------------------------------------

    def widths(self, rows: Sequence[Row]) -> tuple[list[int], list[list[int]]]:
        """Each column's width (its widest cell or its header), and each row's cell widths."""
        widths = [cell_len(c.header) for c in self.columns]
        row_widths = []
        for row in rows:
            cells = [cell_width(fragments) for fragments in row.cells]
            row_widths.append(cells)
            for i, width in enumerate(cells):
                if width > widths[i]:
                    widths[i] = width
        return widths, row_widths

    def layout(self, rows: Sequence[Row], max_width: int | None = None) -> Iterator[tuple[Line, str | None]]:
        """The grid as text lines and their row styles, in the look of rich's ``SIMPLE_HEAD`` table: a
        blank line, the header, a rule, the rows, a blank line. With ``max_width`` the columns that
        give way are cut and the wrapping column wraps to fit (:func:`fitted`)."""
        columns = self.columns
        natural, row_widths = self.widths(rows)
        fit = fitted(columns, natural, max_width, rows) if max_width is not None else Fit(natural, GAP)
        total = fit.total
        if self.title:
            yield ((self.title.center(total).rstrip(), "italic"),), None
        yield ((" " * total, None),), None
        header = Row(tuple(((c.header, "bold"),) for c in columns))
        header_widths = [cell_len(c.header) for c in columns]
        yield from ((line, None) for line in _row_layout(columns, fit, header=True)(header, header_widths))
        lay_out = _row_layout(columns, fit)
        yield ((" " + "─" * (total - 2) + " ", None),), None
        if any(c.wraps and w < n for c, w, n in zip(columns, fit.widths, natural)):
            for row, widths in zip(rows, row_widths):
                for line in lay_out(row, widths):
                    yield line, row.style
        else:  # nothing wraps: one line per row
            lay_out_one = _row_layout(columns, fit, wrap=False)
            for row, widths in zip(rows, row_widths):
                yield lay_out_one(row, widths), row.style
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


GAP, TIGHT_GAP = 3, 2  # cells a column adds to its width: one blank before it, then the gap after it
MIN_SHOWN = 4  # a column cut narrower than this is left out
MIN_WRAPPED = 16  # a wrapping column breaks inside a shape's pieces down to this width


@dataclass(frozen=True)
class Fit:
    """Column widths (0: the column is left out) and the cells each shown column adds (``gap``)."""

    widths: list[int]
    gap: int

    @property
    def total(self) -> int:
        return sum(width + self.gap for width in self.widths if width) + 1


def fitted(columns: Sequence[Column], natural: Sequence[int], max_width: int, rows: Sequence[Row]) -> Fit:
    """The widths that fit ``max_width``. In turn, until the grid fits: the gaps between columns
    tighten (unless cutting the first column that gives way down to its floor is enough); the columns that give way are cut, in ``give`` order, to their ``floor``; the wrapping
    columns put each value (a shape of several outputs) on a line of its own; the columns that
    give way are cut to their ``least`` (left out below 4 cells); the wrapping columns break inside
    values too, then inside their pieces (down to :data:`MIN_WRAPPED` cells). Room a column left out frees beyond the need goes back to the columns cut before
    it, the last cut first."""
    widths = list(natural)
    fit = Fit(widths, GAP)
    excess = fit.total - max_width
    if excess <= 0:
        return fit
    giving = [i for _, i in sorted((c.give, i) for i, c in enumerate(columns) if c.give)]
    wrapping = [i for i, c in enumerate(columns) if c.wraps]
    if not giving or excess > widths[giving[0]] - columns[giving[0]].floor:
        fit = Fit(widths, TIGHT_GAP)
        excess -= (GAP - TIGHT_GAP) * len(widths)

    def narrow(i: int, least: int) -> None:
        nonlocal excess
        cut = min(excess, max(0, widths[i] - least))
        widths[i] -= cut
        excess -= cut

    for i in giving:
        if excess > 0:
            narrow(i, columns[i].floor)
    for i in wrapping:
        if excess > 0:
            narrow(i, max(cell_len(columns[i].header), _widest(rows, i, _values)))
    for i in giving:
        if excess > 0:
            narrow(i, columns[i].least)
            if widths[i] < MIN_SHOWN:  # left out: its cells and its gap
                excess -= widths[i] + fit.gap
                widths[i] = 0
    for i in wrapping:
        if excess > 0:
            narrow(i, max(cell_len(columns[i].header), _widest(rows, i, _pieces)))
    for i in wrapping:  # a piece wider than what is left (a long expression) breaks inside
        if excess > 0:
            narrow(i, max(cell_len(columns[i].header), MIN_WRAPPED))
    for i in reversed(giving):  # give back what leaving a column out freed beyond the need
        if excess < 0 and widths[i]:
            back = min(-excess, natural[i] - widths[i])
            widths[i] += back
            excess += back
    return fit


def _row_layout(columns: Sequence[Column], fit: Fit, wrap: bool = True, header: bool = False):
    """A function laying out one row, given its cells' widths: each cell cut or padded to its
    column's width, with the column's style, one blank before it and the gap after it (rich's
    padding and gap). With ``wrap`` it returns the row's lines (a wrapping column's cell continues
    on the next ones), without, the row's one line. A ``header`` is cut at its end."""
    merged: dict[tuple[str, str], str] = {}
    after = " " * (fit.gap - 1)
    plan = [
        (index, c.style, c.justify == "right", width, c.cut == "left" and not header, c.wraps)
        for index, (c, width) in enumerate(zip(columns, fit.widths))
        if width
    ]

    def place(
        line: list[Fragment], fragments: Cell, column_style: str | None, right: bool, width: int
    ) -> None:
        gap = " " * (width - cell_width(fragments))
        line.append((" " + gap if right else " ", column_style))
        for text, style in fragments:
            if column_style:
                key = (column_style, style or "")
                style = merged.get(key) or merged.setdefault(
                    key, f"{column_style} {style}" if style else column_style
                )
            line.append((text, style))
        line.append((after if right else gap + after, column_style))

    def lay_out_one(row: Row, widths: Sequence[int]) -> Line:  # place() inlined: this runs for every row
        line: list[Fragment] = [(" ", None)]
        append = line.append
        cells = row.cells
        for index, column_style, right, width, left, _ in plan:
            fragments = cells[index]
            length = widths[index]
            if length > width:
                fragments, length = _cut(fragments, width, left), width
            gap = " " * (width - length)
            append((" " + gap if right else " ", column_style))
            for text, style in fragments:
                if column_style:
                    key = (column_style, style or "")
                    style = merged.get(key) or merged.setdefault(
                        key, f"{column_style} {style}" if style else column_style
                    )
                append((text, style))
            append((after if right else gap + after, column_style))
        return tuple(line)

    def lay_out(row: Row, widths: Sequence[int]) -> list[Line]:
        cells = row.cells
        wrapped = {
            index: _wrapped(cells[index], width)
            for index, _, _, width, _, wraps in plan
            if wraps and widths[index] > width
        }
        if not wrapped:
            return [lay_out_one(row, widths)]
        lines = []
        for number in range(max(len(parts) for parts in wrapped.values())):
            line: list[Fragment] = [(" ", None)]
            for index, column_style, right, width, left, _ in plan:
                if index in wrapped:
                    parts = wrapped[index]
                    fragments = parts[number] if number < len(parts) else ()
                elif number:
                    fragments = ()
                else:
                    fragments = cells[index]
                    if widths[index] > width:
                        fragments = _cut(fragments, width, left)
                place(line, fragments, column_style, right, width)
            lines.append(tuple(line))
        return lines

    return lay_out if wrap else lay_out_one


def _cut(fragments: Cell, width: int, left: bool = False) -> Cell:
    """``fragments`` cut to ``width`` cells, an ``…`` marking the cut: their end goes, or their
    start (``left``)."""
    if left:
        flipped = tuple((text[::-1], style) for text, style in reversed(fragments))
        return tuple((text[::-1], style) for text, style in reversed(_cut(flipped, width)))
    kept: list[Fragment] = []
    room = width - 1
    for text, style in fragments:
        if room <= 0:
            break
        part = text if text_width(text) <= room else _prefix(text, room)
        kept.append((part, style))
        room -= text_width(part)
    return (*kept, ("…", None))


def _prefix(text: str, room: int) -> str:
    """The longest start of ``text`` at most ``room`` cells wide."""
    if text.isascii():
        return text[:room]
    end = 0
    while end < len(text) and cell_len(text[: end + 1]) <= room:
        end += 1
    return text[:end]


VALUE_SEPARATOR = ", "  # a fragment of its own between two values of a cell (a shape per output)


def _values(fragments: Cell) -> list[Cell]:
    """A cell as its values: the fragments up to and with each separating ``, ``."""
    values: list[Cell] = []
    start = 0
    for end, (text, style) in enumerate(fragments, 1):
        if text == VALUE_SEPARATOR and style is None:
            values.append(fragments[start:end])
            start = end
    if start < len(fragments):
        values.append(fragments[start:])
    return values


_BREAK = re.compile(r"(?<=, )")


def _pieces(fragments: Cell) -> list[Cell]:
    """A cell as the pieces a line may break between: after each ``, `` and before a fragment
    that starts with a blank (``(B, T, D) float16``)."""
    return [((part, style),) for text, style in fragments for part in _BREAK.split(text) if part]


def _widest(rows: Sequence[Row], index: int, split) -> int:
    """The widest part (``split`` a cell into parts) in column ``index``, without its blanks."""
    return max(
        (text_width(plain(part).strip()) for row in rows for part in split(row.cells[index])),
        default=0,
    )


def _wrapped(fragments: Cell, width: int) -> list[Cell]:
    """A cell over as many lines of ``width`` cells as it takes: each value starts a new line
    when it does not fit on the current one, a value wider than a line breaks between its
    pieces, a piece wider than a line is split. Nothing is cut."""
    lines: list[list[Fragment]] = [[]]
    room = width

    def add(text: str, style: str | None) -> None:
        nonlocal room
        if not lines[-1]:
            text = text.lstrip(" ")
        while text_width(text) > room:
            part = _prefix(text, room)
            if part:
                lines[-1].append((part, style))
            lines.append([])
            text, room = text[len(part) :].lstrip(" "), width
        if text:
            lines[-1].append((text, style))
            room -= text_width(text)

    for value in _values(fragments):
        size = text_width(plain(value).rstrip(" "))
        if size > room and lines[-1] and size <= width:
            lines.append([])
            room = width
        for piece in _pieces(value) if size > room else [value]:
            piece_size = text_width(plain(piece).rstrip(" "))
            if piece_size > room and lines[-1] and piece_size <= width:
                lines.append([])
                room = width
            for text, style in piece:
                add(text, style)
    return [tuple(_rstripped(line)) for line in lines if line]


def _rstripped(line: list[Fragment]) -> list[Fragment]:
    if line:
        text, style = line[-1]
        line[-1] = (text.rstrip(" "), style)
    return line


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
