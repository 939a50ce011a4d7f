"""Rich renderables for diagnostics: a panel for the failure, a list for the lints. A fix that was
re-run and passed reads "Fix (checked)", any other "Suggestion"."""

from __future__ import annotations

from collections.abc import Sequence

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.padding import Padding
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from shapetrace.capture.source import code_without_comment
from shapetrace.diagnose.diagnostic import DEVICE_LINTS, ERROR, Diagnostic


class DiagnosticsView:
    """Renders diagnostics: each failure as a panel (where, the code, the operands with their
    shapes, dtypes, devices and origins, why, the fix), then the lints with their lines."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = list(diagnostics)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        lints = [d for d in self.diagnostics if d.severity != ERROR]
        for diagnostic in self.diagnostics:
            if diagnostic.severity == ERROR:
                yield failure_panel(diagnostic)
        if lints:
            yield lint_panel(lints)


def failure_panel(d: Diagnostic) -> Panel:
    where = Text.assemble((d.location, "green"), "  ", (f"`{d.op}`", "bold"))
    if d.module:
        where.append(f" in {d.module}", style="blue")
    parts: list = [where]
    if d.code:
        parts.append(Text(f"  {code_without_comment(d.code)}", style="bold"))
    if d.operands:
        table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, header_style="dim")
        for column in ("operand", "shape", "dtype", "device", "from"):
            table.add_column(column, no_wrap=column != "from", overflow="fold")
        for o in d.operands:
            table.add_row(
                Text(o.role, style="bold"), Text(o.meta.shape_text(named_only=True), style="cyan"),
                Text(o.meta.dtype_name, style="magenta"), Text(o.meta.device_name, style="yellow"),
                Text(o.origin.text if o.origin else "", style="dim"),
            )  # fmt: skip
        parts.append(table)
    parts.append(Text(""))
    parts.append(Text(d.message))
    if d.details:
        parts.append(Text("\n".join(f"  {line}" for line in d.details), style="cyan", no_wrap=True))
    if d.fix:
        parts.append(fix_text(d))
    return Panel(Group(*parts), title=f"[bold red]✗ {d.kind}[/]", title_align="left", border_style="red")


def lint_panel(lints: Sequence[Diagnostic]) -> Panel:
    parts: list = []
    for i, d in enumerate(lints):
        head = Text.assemble((d.location, "green"), "  ", (d.kind, "yellow"))
        if d.count > 1:
            head.append(f"  ×{d.count}", style="dim")
        if d.code:
            head.append(f"  {code_without_comment(d.code)}", style="bold")
        body = Text(d.message)
        if d.fix:
            body.append("\n")
            body.append_text(fix_text(d))
        if i:
            parts.append(Text(""))
        parts.extend([head, Padding(body, (0, 0, 0, 2))])
    family = "device lint" if all(d.kind in DEVICE_LINTS for d in lints) else "lint"
    title = f"[bold yellow]⚠ {len(lints)} {family}{'s' if len(lints) != 1 else ''}[/]"
    return Panel(Group(*parts), title=title, title_align="left", border_style="yellow")


def fix_text(d: Diagnostic) -> Text:
    """``Fix (checked): ...`` in green for a fix that was re-run and passed, else ``Suggestion: ...``."""
    label = Text(f"{d.fix_label}: ", style="bold green" if d.fix_checked else "bold")
    return Text.assemble(label, d.fix or "")
