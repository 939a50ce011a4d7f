"""What a trace is at a glance: the header over the tree and summary views (model, parameters,
dims, counts, dtypes, devices, checks, error)."""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, RenderResult

from shapetrace.render.cells import Line, line_text

if TYPE_CHECKING:
    from shapetrace.trace import Trace


class TraceHeader:
    """The header summary as a rich renderable."""

    def __init__(self, trace: Trace) -> None:
        self.trace = trace

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for line in header_lines(self.trace):
            yield line_text(line)


def header_lines(trace: Trace) -> list[Line]:
    """``model``, ``dims``, ``ran``, ``dtypes``, ``devices``, ``checks`` (and ``error``): one line each."""
    summary = trace.summary
    ops, modules = trace.ops, trace.modules
    model = summary.model_type or ", ".join(dict.fromkeys(m.type for m in modules if m.parent is None)) or "—"
    if summary.freed:
        params = "parameters unknown: the model was freed before the trace was read"
    elif summary.uninitialised:
        params = f"parameters unknown: {summary.uninitialised} of lazy modules not initialised yet"
    elif summary.parameters is None:
        params = "parameters unknown (pass the model: trace(model))" if modules else "no modules"
    else:
        params = f"{summary.parameters:,} parameters"
        if summary.trainable is not None and summary.trainable != summary.parameters:
            params += f" ({summary.trainable:,} trainable)"
    dims = getattr(trace, "dims", None) or {}
    dtypes: Counter = Counter()  # of torch.dtype and torch.device: named once each, below
    devices: Counter = Counter()
    for op in ops:
        for metas in (op.inputs, op.outputs):
            for meta in metas:
                dtypes[meta.dtype] += 1
                devices[meta.device] += 1
    lines = [
        _entry("model", (model, "bold"), (f" · {params}", None)),
        _entry("dims", (", ".join(f"{name}={value}" for name, value in dims.items()) or "none named", None)),
        _entry("ran", (f"{len(ops):,} ops, {len(modules):,} module calls", None)),
        _entry("dtypes", (_counted(dtypes), "magenta")),
        _entry("devices", (_counted(devices), "yellow")),
        _entry("checks", *_checks(trace)),
    ]
    error = trace.error
    if error is not None:
        failing = trace.failing_op()
        where = f"op {failing.index} ({failing.op})" if failing else "the block"
        lines.append(
            _entry("error", (f"{where} raised {error.type}: {error.message.splitlines()[0]}", "bold red"))
        )
    return lines


def _entry(key: str, *value: tuple[str, str | None]) -> Line:
    return ((f"{key:<9}", "dim"), *value)


def _counted(counts: Counter) -> str:
    """``float32 ×980, int64 ×3``: dtypes or devices by how many tensors had them; ``—`` when none."""
    names = [(str(key).removeprefix("torch."), count) for key, count in counts.most_common()]
    if len(names) == 1:
        return names[0][0]
    return ", ".join(f"{name} ×{count:,}" for name, count in names) or "—"


def _checks(trace: Trace) -> list[tuple[str, str | None]]:
    violations = len(getattr(trace, "contracts", None) or ())
    unchecked = len(getattr(trace, "contract_warnings", None) or ())
    severities = Counter(getattr(d, "severity", "warning") for d in getattr(trace, "diagnostics", None) or ())
    parts = [
        (
            f"{violations} contract violation{'s' if violations != 1 else ''}",
            "bold red" if violations else None,
        )
    ]
    if unchecked:
        parts.append((f" ({unchecked} annotation{'s' if unchecked != 1 else ''} not checked)", "yellow"))
    diagnosed = ", ".join(f"{n} {kind}{'s' if n != 1 else ''}" for kind, n in sorted(severities.items()))
    parts.append((f" · diagnostics: {diagnosed or 'none'}", "bold red" if severities.get("error") else None))
    return parts
