"""The symbolic pass in a few footer lines: the named dims, the dims torch specialised and why,
and what a ``?`` means."""

from __future__ import annotations

from typing import TYPE_CHECKING

from rich.text import Text

from shapetrace.capture.source import short_location
from shapetrace.symbolic.job import NO_NAMES
from shapetrace.symbolic.result import GUESS, PASS_OFF, RAN, SKIPPED

if TYPE_CHECKING:
    from shapetrace.trace import Trace

MAX_SPECIALIZATIONS = 6


def footer_text(trace: Trace) -> Text:
    """Footer lines for the trace table (empty when the pass was off or had no name to work with)."""
    status = trace.symbolic
    text = Text()
    if status.state == SKIPPED:
        if status.reason not in (PASS_OFF, NO_NAMES):  # the user would expect names: say why not
            text.append(f"\nsymbolic shapes {status.describe()}", style="yellow")
        return text
    dims = trace.dims
    if dims:
        text.append("\ndims " + ", ".join(f"{name}={value}" for name, value in dims.items()), style="dim")
    if status.divisible:
        text.append(f"\n{status.assumption()} (exact expressions: expr_exact in JSON)", style="dim")
    if status.state != RAN:
        text.append(f"\nsymbolic shapes {status.describe()}", style="yellow")
    lines = []
    for spec in trace.specializations:
        where = f" at {short_location(spec.file, spec.line)}" if spec.file else ""
        target = spec.expr if spec.expr == str(spec.value) else f"{spec.expr} (= {spec.value})"
        line = f"{spec.dim} fixed to {target}{where}: {spec.reason}"
        if line not in lines:
            lines.append(line)
    for line in lines[:MAX_SPECIALIZATIONS]:
        text.append(f"\n{line}", style="dim")
    if len(lines) > MAX_SPECIALIZATIONS:
        text.append(f"\n... {len(lines) - MAX_SPECIALIZATIONS} more (Trace.specializations)", style="dim")
    if any(GUESS in (meta.expr or "") for op in trace.ops for meta in op.outputs):
        text.append(f"\nname{GUESS}: a guess, a size equal to that name's but not derived from it", style="dim")
    for note in status.notes:
        text.append(f"\nnote: {note}", style="yellow")
    return text
