"""A failing test's trace and diagnosis as plain text, for a section of its pytest report."""

from __future__ import annotations

import io

from rich.console import Console

from shapetrace.trace import Trace

MAX_ROWS = 80  # table rows kept (the last ones: the failure is at the end)


def trace_section(recorded: Trace, width: int = 120, max_rows: int = MAX_ROWS) -> str:
    """The trace table (its last ``max_rows`` rows when longer), contract violations, and the
    diagnosis: the failure explained, then the device lints."""
    table = _render(recorded.table(), width)
    text = _last_rows(table, len(recorded.ops), max_rows)
    if recorded.diagnostics:
        from shapetrace.render.diagnostics import DiagnosticsView

        text += "\n" + _render(DiagnosticsView(recorded.diagnostics), width)
    return text.rstrip() + "\n"


def _render(renderable: object, width: int) -> str:
    console = Console(
        file=io.StringIO(), width=width, color_system=None, force_terminal=False, soft_wrap=False
    )
    console.print(renderable)
    lines = [line.rstrip() for line in console.file.getvalue().splitlines()]
    while lines and not lines[0]:
        lines.pop(0)
    return "\n".join(lines) + "\n"


def _last_rows(table: str, ops: int, max_rows: int) -> str:
    """Keep what comes before the rows (up to the rule under the column names), the last
    ``max_rows`` rows, and the footer (from the ``N ops, ...`` line)."""
    lines = table.splitlines()
    rule = next((i for i, line in enumerate(lines) if line.strip() and not line.strip().strip("─")), None)
    footer = next(
        (i for i in range(len(lines) - 1, -1, -1) if lines[i].lstrip().startswith(f"{ops} ops")), None
    )
    if rule is None or footer is None or footer < rule:
        return table
    header, body = lines[: rule + 1], lines[rule + 1 : footer]
    while body and not body[-1].strip():
        body.pop()
    if len(body) <= max_rows:
        return table
    skipped = f"  ... {len(body) - max_rows} earlier rows not shown (the trace has {ops} ops)"
    return "\n".join([*header, skipped, *body[-max_rows:], "", *lines[footer:]]) + "\n"
