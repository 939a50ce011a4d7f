"""The trace as a rich table a person reads top to bottom."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rich.console import Console, ConsoleOptions, Group, RenderResult
from rich.table import Table
from rich.text import Text

from shapetrace.capture.records import OpRecord, TensorMeta
from shapetrace.capture.source import display_path

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


class TraceTable:
    """Renders a :class:`~shapetrace.trace.Trace`: op number, ``file:line``, code, op, module and
    output shapes; a line's location and code are written once for consecutive ops on it."""

    def __init__(self, trace: Trace, title: str | None = None) -> None:
        self.trace = trace
        self.title = title

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        trace = self.trace
        ops = trace.ops
        dtype, device = common_dtype_device(ops)
        table = Table(title=self.title, header_style="bold", pad_edge=False, expand=False)
        table.add_column("#", justify="right", style="dim")
        table.add_column("line", style="green", no_wrap=True)
        table.add_column("code", overflow="fold")
        table.add_column("op", style="bold")
        table.add_column("module", style="blue")
        table.add_column("output shape", overflow="fold")
        previous: tuple[str, int] | None = None
        for op in ops:
            site = (op.file, op.line)
            same_line = site == previous
            previous = site
            table.add_row(
                str(op.index),
                "" if same_line else f"{display_path(op.file)}:{op.line}",
                Text("" if same_line else op.code),
                Text(op.op),
                Text(trace.module_label(op.module_index)),
                Text("✗ raised", style="bold red") if op.failed else shape_cell(op.outputs, dtype, device),
                style="on grey15" if op.failed else None,
            )
        yield Group(table, self._footer(dtype, device))

    def _footer(self, dtype: str | None, device: str | None) -> Text:
        trace = self.trace
        footer = Text(f"{len(trace.ops)} ops, {len(trace.modules)} module calls", style="dim")
        if dtype:
            footer.append(f"; {dtype} on {device} unless shown", style="dim")
        error = trace.error
        if error is not None:
            failing = trace.failing_op()
            where = (
                f"op {failing.index} ({failing.op}) at {display_path(failing.file)}:{failing.line}"
                if failing
                else "the block"
            )
            footer.append(f"\n✗ {where} raised {error.type}: {error.message}", style="bold red")
        return footer
