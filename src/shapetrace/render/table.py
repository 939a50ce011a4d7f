"""The trace as a rich table a person reads top to bottom."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from functools import cache
from operator import attrgetter
from typing import TYPE_CHECKING

import torch
from rich.text import Text

from shapetrace.capture.records import OpRecord, TensorMeta
from shapetrace.capture.source import code_without_comment, short_location
from shapetrace.contracts import ContractError
from shapetrace.render.cells import Cell, Line, cell, rich_lines, text_fragments, text_lines
from shapetrace.render.contracts import flagged_ops as contract_flagged_ops
from shapetrace.render.contracts import footer_lines as contract_footer
from shapetrace.render.contracts import marker_rows as contract_markers
from shapetrace.render.diagnostics import DiagnosticsView
from shapetrace.render.filters import Filter
from shapetrace.render.grid import FAILED_ROW, VALUE_SEPARATOR, Column, GridView, Row
from shapetrace.render.symbolic import footer_text as symbolic_footer

if TYPE_CHECKING:
    from shapetrace.trace import Trace


def common_dtype_device(ops: Iterable[OpRecord]) -> tuple[str | None, str | None]:
    """The dtype and device most op outputs have; cells show only what differs from them."""
    outputs = [meta for op in ops for meta in op.outputs]
    dtypes = Counter(map(_DTYPE, outputs))  # counted in C
    devices = Counter(map(_DEVICE, outputs))
    return (
        _name(dtypes.most_common(1)[0][0]) if dtypes else None,
        _name(devices.most_common(1)[0][0]) if devices else None,
    )


_DTYPE, _DEVICE = attrgetter("dtype"), attrgetter("device")


def shape_fragments(metas: Iterable[TensorMeta], dtype: str | None, device: str | None) -> Cell:
    """Output shapes, each with its dtype and device where they differ from the common ones."""
    fragments: list[tuple[str, str | None]] = []
    for i, meta in enumerate(metas):
        if i:
            fragments.append((VALUE_SEPARATOR, None))
        fragments.append((meta.shape_text(), "bold cyan"))
        dtype_name, device_name = _name(meta.dtype), _name(meta.device)
        if dtype_name != dtype:
            fragments.append((f" {dtype_name}", "magenta"))
        if device_name != device:
            fragments.append((f" {device_name}", "yellow"))
    return tuple(fragments)


@cache
def _name(dtype_or_device: torch.dtype | torch.device) -> str:
    """``TensorMeta.dtype_name``/``device_name``, computed once per dtype and device."""
    return str(dtype_or_device).removeprefix("torch.")


def error_line(trace: Trace) -> str:
    """``✗ op 7 (linear) at model.py:12 raised RuntimeError: ...``, or ``""`` when the block ended well.
    A ``ContractError`` shows its first line: the footer lists its violation in full."""
    error = trace.error
    if error is None:
        return ""
    message = error.message
    if error.type == f"{ContractError.__module__}.{ContractError.__qualname__}" and trace.contracts:
        message = message.split("\n", 1)[0]
    failing = trace.failing_op()
    where = (
        f"op {failing.index} ({failing.op}) at {short_location(failing.file, failing.line)}"
        if failing
        else "the block"
    )
    return f"✗ {where} raised {error.type}: {message}"


DIAGNOSIS_WIDTH = 100  # columns of the diagnosis panel in files and notebooks


def diagnosis_lines(trace: Trace) -> list[Line]:
    """The diagnosis and the lints as the console draws them after a view (none: no lines)."""
    diagnostics = trace.diagnostics
    return rich_lines(DiagnosticsView(diagnostics), DIAGNOSIS_WIDTH) if diagnostics else []


class TraceTable(GridView):
    """Renders a :class:`~shapetrace.trace.Trace`: op number, ``file:line``, code, op, module and
    output shapes; a line's location and code are written once for consecutive ops on it.
    With a ``filter`` (see :class:`~shapetrace.render.filters.Filter`), only the ops it keeps."""

    columns = (
        Column("#", style="dim", justify="right"),
        Column("line", style="green", give=3, floor=10, least=6, cut="left"),
        Column("code", give=1, floor=20),  # gives way first, down to nothing
        Column("op", style="bold"),
        Column("module", style="blue", give=2, floor=12, cut="left"),
        Column("output shape", wraps=True),  # never cut
    )

    def __init__(self, trace: Trace, title: str | None = None, filter: Filter | None = None) -> None:
        self.trace = trace
        self.title = title
        self.filter = filter or Filter()
        self.dtype, self.device = common_dtype_device(trace.ops)

    def make_rows(self) -> list[Row]:
        trace = self.trace
        ops = self.filter.select(trace) if self.filter else trace.ops
        self._shown = len(ops)
        markers = contract_markers(trace)  # contract violations, before the op they preceded
        positions = sorted(markers)
        rows = []
        for cells, op in zip(self._rows(ops, self.dtype, self.device), ops):
            while positions and positions[0] <= op.index:
                rows.extend(Row(tuple(text_fragments(t) for t in m)) for m in markers[positions.pop(0)])
            rows.append(Row(cells, style=FAILED_ROW if op.failed else None))
        for position in positions:
            rows.extend(Row(tuple(text_fragments(t) for t in m)) for m in markers[position])
        return rows

    def after_lines(self) -> list[Line]:
        return diagnosis_lines(self.trace)

    def footer_lines(self) -> list[Line]:
        lines = text_lines(self._footer(self.dtype, self.device))
        if self.filter:
            shown = f"showing {self._shown} of {len(self.trace.ops)} ops: {self.filter.describe()}"
            lines.append(((shown, "dim"),))
        return lines

    def _rows(self, ops: list[OpRecord], dtype: str | None, device: str | None) -> Iterable[tuple[Cell, ...]]:
        trace = self.trace
        one_file = len({op.file for op in trace.ops}) == 1
        broke_contract = contract_flagged_ops(trace)
        previous: tuple[str, int] | None = None
        for op in ops:
            site = (op.file, op.line)
            same_line = site == previous
            previous = site
            yield (
                cell(str(op.index)),
                cell("" if same_line else str(op.line) if one_file else short_location(op.file, op.line)),
                cell("" if same_line else code_without_comment(op.code)),
                cell(op.op),
                cell(trace.module_label(op.module_index)),
                ((("✗ raised", "bold red"),) if op.failed else shape_fragments(op.outputs, dtype, device))
                + ((" ✗ contract", "bold red"),) * (op.index in broke_contract),
            )

    def _footer(self, dtype: str | None, device: str | None) -> Text:
        trace = self.trace
        files = {op.file for op in trace.ops}
        footer = Text(f"{len(trace.ops)} ops, {len(trace.modules)} module calls", style="dim")
        if len(files) == 1:
            footer.append(f" in {short_location(files.pop(), 0)[:-2]}", style="dim")
        if dtype:
            footer.append(f"; {dtype} on {device} unless shown", style="dim")
        for note in trace.notes:
            footer.append(f"\nnote: {note}", style="yellow")
        footer.append_text(symbolic_footer(trace))
        footer.append_text(contract_footer(trace))
        error = error_line(trace)
        if error:
            footer.append(f"\n{error}", style="bold red")
        return footer
