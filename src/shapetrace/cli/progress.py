"""The symbolic pass's progress on the terminal: a bar on stderr once the pass has taken a moment."""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

from rich.console import Console

if TYPE_CHECKING:
    from rich.progress import Progress

    from shapetrace.trace import Trace

SHOW_AFTER = 0.5  # seconds: shorter passes show nothing


def run_with_progress(
    trace: Trace,
    console: Console | None = None,
    show_after: float = SHOW_AFTER,
) -> None:
    """Run ``trace``'s symbolic pass now (if it has one to run), with a transient progress bar
    (ops replayed, of all ops) on ``console`` (stderr by default) once it has run ``show_after``
    seconds, when ``console`` is a terminal. The console writes to the stream it was given, not to
    ``sys.stderr`` at write time: the pass drops its own thread's writes to ``sys.stderr``."""
    console = console or Console(file=sys.stderr)
    with_bar = console.is_terminal  # a log or a pipe: no bar
    if not with_bar:
        trace._symbolic()
        return
    began = time.perf_counter()
    display: Progress | None = None
    task = None

    def report(done: int, total: int) -> None:
        nonlocal display, task
        if display is None:
            if time.perf_counter() - began < show_after:
                return
            from rich import progress as bars  # rich's progress bars: only for a pass that takes a while

            display = bars.Progress(
                bars.SpinnerColumn(), bars.TextColumn("symbolic shapes"), bars.BarColumn(),
                bars.MofNCompleteColumn(), bars.TextColumn("ops"), bars.TimeElapsedColumn(), console=console,
                transient=True, redirect_stdout=False, redirect_stderr=False,
            )  # fmt: skip
            display.start()
            task = display.add_task("symbolic shapes", total=total)
        display.update(task, completed=done, total=total)

    try:
        trace.compute_shapes(report)
    finally:
        if display is not None:
            display.stop()
