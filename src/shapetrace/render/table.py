"""The trace as a rich table a person reads top to bottom."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich import box
from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from shapetrace.capture.records import OpRecord, TensorMeta
from shapetrace.capture.source import code_without_comment

if TYPE_CHECKING:
    from shapetrace.trace import Trace


def common_dtype_device(ops: Iterable[OpRecord]) -> tuple[str | None, str | None]:
    """The dtype and device most op outputs have; cells show only what differs from them."""
    dtypes: Counter[str] = Counter()
    devices: Counter[str] = Counter()
    for op in ops:
        for meta in op.outputs:
            dtypes[meta.dtype_name] += 1
            devices[meta.device_name] += 1
    return (
        dtypes.most_common(1)[0][0] if dtypes else None,
        devices.most_common(1)[0][0] if devices else None,
    )


def shape_cell(metas: Iterable[TensorMeta], dtype: str | None, device: str | None) -> Text:
    """Output shapes, each with its dtype and device where they differ from the common ones."""
    cell = Text()
    for i, meta in enumerate(metas):
        if i:
            cell.append(", ")
        cell.append(meta.shape_text(), style="bold cyan")
        if meta.dtype_name != dtype:
            cell.append(f" {meta.dtype_name}", style="magenta")
        if meta.device_name != device:
            cell.append(f" {meta.device_name}", style="yellow")
    return cell


def short_location(file: str, line: int) -> str:
    """``name.py:12``: the table shows file names; JSON keeps full paths."""
    return f"{os.path.basename(file) or file}:{line}"


class TraceTable:
    """Renders a :class:`~shapetrace.trace.Trace`: op number, ``file:line``, code, op, module and
    output shapes; a line's location and code are written once for consecutive ops on it."""

    def __init__(self, trace: Trace, title: str | None = None) -> None:
        self.trace = trace
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        trace = self.trace
        dtype, device = common_dtype_device(trace.ops)
        rows = list(self._rows(dtype, device))
        columns = ("#", "line", "code", "op", "module", "output shape")
        widths = [max([len(h)] + [row[i].cell_len for row in rows]) for i, h in enumerate(columns)]
        too_wide = sum(widths) + 2 * len(columns) > options.max_width
        # Too wide for the console: every column keeps its width and the code column is cut.
        table = Table(title=self.title, header_style="bold", box=box.SIMPLE_HEAD, expand=too_wide)
        table.add_column("#", justify="right", style="dim", no_wrap=True, min_width=widths[0])
        table.add_column("line", style="green", no_wrap=True, min_width=widths[1])
        table.add_column("code", no_wrap=True, overflow="ellipsis", ratio=1 if too_wide else None)
        table.add_column("op", style="bold", no_wrap=True, min_width=min(widths[3], 12))
        table.add_column("module", style="blue", no_wrap=True, min_width=min(widths[4], 16))
        table.add_column("output shape", no_wrap=True, min_width=min(widths[5], 40))
        for row, failed in zip(rows, (op.failed for op in trace.ops)):
            table.add_row(*row, style="on grey15" if failed else None)
        yield Group(table, self._footer(dtype, device))

    def _rows(self, dtype: str | None, device: str | None) -> Iterable[tuple[Text, ...]]:
        trace = self.trace
        one_file = len({op.file for op in trace.ops}) == 1
        previous: tuple[str, int] | None = None
        for op in trace.ops:
            site = (op.file, op.line)
            same_line = site == previous
            previous = site
            yield (
                Text(str(op.index)),
                Text("" if same_line else str(op.line) if one_file else short_location(op.file, op.line)),
                Text("" if same_line else code_without_comment(op.code)),
                Text(op.op),
                Text(trace.module_label(op.module_index)),
                Text("✗ raised", style="bold red") if op.failed else shape_cell(op.outputs, dtype, device),
            )

    def _footer(self, dtype: str | None, device: str | None) -> Text:
        trace = self.trace
        files = {op.file for op in trace.ops}
        footer = Text(f"{len(trace.ops)} ops, {len(trace.modules)} module calls", style="dim")
        if len(files) == 1:
            footer.append(f" in {short_location(files.pop(), 0)[:-2]}", style="dim")
        if dtype:
            footer.append(f"; {dtype} on {device} unless shown", style="dim")
        error = trace.error
        if error is not None:
            failing = trace.failing_op()
            where = (
                f"op {failing.index} ({failing.op}) at {short_location(failing.file, failing.line)}"
                if failing
                else "the block"
            )
            footer.append(f"\n✗ {where} raised {error.type}: {error.message}", style="bold red")
        return footer
