"""A torchinfo-style module summary (output shape, parameters, trainable) under the header."""

from __future__ import annotations

from functools import cached_property
from typing import Any

from shapetrace.capture.records import ModuleCall, ParameterCount
from shapetrace.render.cells import Cell, Line, cell
from shapetrace.render.filters import Filter, module_changes_something
from shapetrace.render.grid import FAILED_ROW, Column, Row
from shapetrace.render.table import shape_fragments
from shapetrace.render.tree import ModuleTreeView, Node, fold_label, relative_name, tree_prefix

# --- the module summary -----------------------------------------------------------------------------


class ModuleSummary(ModuleTreeView):
    """One row per module call, as torchinfo prints them: the call (``name (Type)``, indented under
    its parent), its output shape (symbolic where the trace has it), its parameters and whether
    they are trainable. A row whose submodules are shown counts the parameters the module holds
    itself (``--`` for none); a row shown alone counts them with its submodules'. Repeated
    identical calls fold (``blocks.0-11 ×12``, parameters ``12 × 3,280``); rows inside a fold
    describe one instance."""

    columns = (
        Column("Layer (type)", give=1, floor=24, least=12),
        Column("Output Shape", wraps=True),  # never cut
        Column("Param #", justify="right"),
        Column("Trainable"),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.counts = self.trace.summary.modules

    # --- visibility -----------------------------------------------------------------------------

    @cached_property
    def _hits(self) -> list[bool]:
        """Module calls the filter keeps on their own (their parents show as context)."""
        trace, flt = self.trace, self.filter
        hits = list(self.tree.module_mask)
        if flt.ops:
            has_op = [False] * len(trace.modules)
            for op, keep in zip(trace.ops, Filter(ops=flt.ops).op_mask(trace)):
                index = op.module_index
                while keep and index is not None and not has_op[index]:
                    has_op[index] = True
                    index = trace.modules[index].parent
            hits = [a and b for a, b in zip(hits, has_op)]
        if flt.changes:
            hits = [hit and module_changes_something(call) for hit, call in zip(hits, trace.modules)]
        return hits

    def _visible(self, node: Node) -> bool:
        if node.op is not None:
            return False
        known = self._seen.get(id(node))
        if known is None:
            known = any([self._visible(child) for child in node.children]) or (
                node.call is not None and (not self.filter or self._hits[node.call.index])
            )
            self._seen[id(node)] = known
        return known

    def _children(self, node_list: list[Node]) -> list[Node]:
        return [node for node in node_list if self._visible(node)]

    # --- rows -----------------------------------------------------------------------------------

    def make_rows(self) -> list[Row]:
        rows: list[Row] = []
        self._emit(self._children(self.tree.roots), None, 0, (), rows, top=True)
        return rows

    def _emit(
        self, nodes: list[Node], parent: ModuleCall | None, level: int, guides: tuple[bool, ...], rows: list[Row],
        top: bool = False,
    ) -> None:  # fmt: skip
        for position, node in enumerate(nodes):
            last = position == len(nodes) - 1
            prefix = "" if top else tree_prefix(guides, last)
            inner = guides if top else (*guides, not last)
            if node.group:
                label: Cell = ((prefix, "dim"),) if prefix else ()
                rows.append(
                    Row(
                        (
                            label + cell(f"×{node.count}", "bold magenta") + cell(" repeated", "dim"),
                            (),
                            (),
                            (),
                        )
                    )
                )
                self._emit(self._children(node.children), parent, level, inner, rows)
                continue
            call = node.call
            assert call is not None
            children = [] if self.depth is not None and level >= self.depth else self._children(node.children)
            rows.append(self._row(node, parent, prefix, expanded=bool(children)))
            self._emit(children, call, level + 1, inner, rows)

    def _row(self, node: Node, parent: ModuleCall | None, prefix: str, expanded: bool) -> Row:
        call = node.call
        assert call is not None
        if node.count > 1:
            names = [relative_name(i, parent) or i.call.type for i in node.instances]
            name = fold_label(names, [i.call for i in node.instances])
        else:
            name = relative_name(node, parent) or ""
        label: Cell = ((prefix, "dim"),) if prefix else ()
        if call.path:
            label += cell(name, "blue")
        elif node.count > 1:
            label += cell(name, "bold")
        times = cell(f" ×{node.count}", "bold magenta") if node.count > 1 else ()
        if call.path:
            label += times + cell(f" ({call.type})", "dim")
        else:  # a root: its class, with its call numbers when folded
            label += times if node.count > 1 else cell(call.type, "bold")
        count = self._count(call)
        if count is None:
            params, trainable = "?", "?"
        else:
            number, grad = (
                (count.own, count.own_trainable) if expanded else (count.total, count.total_trainable)
            )
            params = f"{number:,}" if number else "--"
            if number and node.count > 1:  # a folded entry: each of its instances holds that many
                params = f"{node.count} × {params}"
            trainable = (
                "--" if not number else "True" if grad == number else "False" if not grad else "Partial"
            )
        shapes = (("✗ raised", "bold red"),) if call.failed else shape_fragments(call.outputs, *self.common)
        return Row(
            (label, shapes, cell(params), cell(trainable, "green" if trainable == "True" else None)),
            style=FAILED_ROW if call.failed else None,
        )

    def _count(self, call: ModuleCall) -> ParameterCount | None:
        count = self.counts.get(call.path)
        return count if count is not None and count.type == call.type else None

    def footer_lines(self) -> list[Line]:
        summary = self.trace.summary
        lines: list[Line] = []
        rule = ("─" * 48, "dim")
        lines.append((rule,))
        if summary.parameters is None:
            lines.append((("Parameters unknown: pass the model, trace(model), to count them", "dim"),))
        else:
            trainable = summary.trainable if summary.trainable is not None else summary.parameters
            lines.append((("Total params: ", None), (f"{summary.parameters:,}", "bold")))
            lines.append((("Trainable params: ", None), (f"{trainable:,}", "bold")))
            lines.append((("Non-trainable params: ", None), (f"{summary.parameters - trainable:,}", "bold")))
        lines.append((rule,))
        dtype, device = self.common
        if dtype:
            lines.append(((f"output shapes are {dtype} on {device} unless shown", "dim"),))
        if self.tree.folds:
            lines.append(
                (
                    (
                        "rows inside a folded entry (×N) describe one instance; --expand PATTERN shows each",
                        "dim",
                    ),
                )
            )
        if self.filter:
            lines.append(((f"filter: {self.filter.describe()}", "dim"),))
        return lines
