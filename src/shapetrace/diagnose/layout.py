"""Shapes laid out for reading: right-aligned as broadcasting compares them, bad dims marked."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def dims_text(shape: Sequence[Any]) -> str:
    """``(8, 6, 10)``, ``(5,)``, ``()``."""
    return "(" + ", ".join(str(s) for s in shape) + (",)" if len(shape) == 1 else ")")


def marked(shape: Sequence[Any], dims: set[int]) -> tuple[str, str]:
    """``shape`` as text, and a line of the same length with ``^`` under the ``dims`` (indices
    from the left, or negative from the right)."""
    dims = {d % len(shape) for d in dims} if shape else set()
    text, carets = "(", " "
    for i, size in enumerate(shape):
        if i:
            text += ", "
            carets += "  "
        cell = str(size)
        text += cell
        carets += ("^" if i in dims else " ") * len(cell)
    text += ",)" if len(shape) == 1 else ")"
    return text, carets.ljust(len(text))


def side_by_side(parts: Sequence[tuple[Sequence[Any], set[int]] | str]) -> list[str]:
    """Shapes and separators on one line (``(2, 3, 5) @ (4, 6)``) with the marked dims under them."""
    line, carets = "", ""
    for part in parts:
        if isinstance(part, str):
            line += part
            carets += " " * len(part)
        else:
            text, marks = marked(*part)
            line += text
            carets += marks
    return [line, carets.rstrip()] if carets.strip() else [line]


def right_aligned(rows: Sequence[tuple[str, Sequence[Any]]], columns: set[int], note: str = "") -> list[str]:
    """One shape per row, dims right-aligned; ``^`` under the marked ``columns`` (counted from
    the right: -1 is the last dim), then ``note``."""
    ncols = max((len(shape) for _, shape in rows), default=0)
    cells = [[None] * (ncols - len(shape)) + [str(s) for s in shape] for _, shape in rows]
    widths = [max([len(row[i]) for row in cells if row[i] is not None] or [1]) for i in range(ncols)]
    label_width = max((len(label) for label, _ in rows), default=0)
    lines = []
    for (label, shape), row in zip(rows, cells):
        text, started = "", False
        for i, cell in enumerate(row):
            if cell is None:
                text += " " * (widths[i] + 2)
            else:
                text += (", " if started else " (") + cell.rjust(widths[i])
                started = True
        text += ",)" if len(shape) == 1 else ")" if shape else "()"
        lines.append(f"{label:<{label_width}}{text}".rstrip())
    marks = " " * label_width
    for i in range(ncols):
        marks += "  " + ("^" if i - ncols in columns else " ") * widths[i]
    if columns:
        lines.append((marks.rstrip() + (f" {note}" if note else "")).rstrip())
    return lines
