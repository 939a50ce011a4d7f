"""The console a trace prints to: rich's, at the width of the terminal whenever one is known."""

from __future__ import annotations

import os
from typing import IO

from rich.console import Console, RenderableType

from shapetrace.capture.collector import gc_paused

NO_TERMINAL_WIDTH = 160  # columns when no terminal is known at all (a cron job, CI, a log file)


def output_console(file: IO[str] | None = None) -> Console:
    """A rich ``Console`` for ``file`` (stdout by default) as wide as the terminal the output is
    read in: ``COLUMNS`` when set, else the size of whichever of stdin, stdout and stderr is a
    terminal (so ``python script.py | less`` in a terminal uses its width, as rich does), else,
    with no terminal at all, :data:`NO_TERMINAL_WIDTH` columns instead of rich's 80. Jupyter keeps
    rich's own width."""
    console = Console(file=file)
    if console.is_jupyter or _columns() is not None or _terminal_width() is not None:
        return console
    return Console(file=file, width=NO_TERMINAL_WIDTH)


def print_views(console: Console, *views: RenderableType) -> None:
    """Print ``views`` (a table and its diagnosis) with the cyclic garbage collector paused: their
    lines and rich's segments form no cycles and die when printing ends, and collections while they
    are alive would scan them all (a third of a 10,000-row table's time, measured)."""
    with gc_paused():
        for view in views:
            console.print(view)


def _columns() -> int | None:
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else None


def _terminal_width() -> int | None:
    """The width of the terminal stdin, stdout or stderr is, if any is one."""
    for descriptor in (0, 1, 2):
        try:
            width = os.get_terminal_size(descriptor).columns
        except (OSError, ValueError):
            continue
        if width:
            return width
    return None
