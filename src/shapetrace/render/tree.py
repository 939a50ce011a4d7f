"""The trace as a module tree: each module call with the ops and calls inside it, identical
repeated blocks folded into one entry (``blocks.0-11 ×12``)."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from shapetrace.capture.records import ModuleCall, OpRecord, TensorMeta
from shapetrace.capture.source import code_without_comment, short_location
from shapetrace.render.cells import Cell, Line, cell, text_lines
from shapetrace.render.contracts import footer_lines as contract_footer
from shapetrace.render.filters import Filter, glob_matcher, patterns
from shapetrace.render.grid import FAILED_ROW, Column, GridView, Row
from shapetrace.render.header import header_lines
from shapetrace.render.table import common_dtype_device, diagnosis_lines, error_line, shape_fragments

if TYPE_CHECKING:
    from shapetrace.trace import Trace

MAX_PERIOD = 16  # the longest run of siblings that folds as one repeated unit


@dataclass(eq=False)
class Node:
    """An op, a module call with its ``children``, or (``group``) a repeated run of siblings.

    A folded node stands for ``count`` identical instances: ``instances`` are the first node of
    each (itself first), and it shows the first instance's contents."""

    op: OpRecord | None = None
    call: ModuleCall | None = None
    children: list[Node] = field(default_factory=list)
    sig: int = 0
    count: int = 1
    instances: tuple[Node, ...] = ()
    group: bool = False

    def op_count(self) -> int:
        if self.op is not None:
            return 1
        if self.call is not None:
            return self.call.end_op - self.call.first_op
        return sum(child.op_count() for child in self.children)


class ModuleTree:
    """The folded tree of a trace: ``roots`` are the top-level ops and module calls.

    Siblings with the same signature (op sequence, code sites, shapes, dtypes, devices, submodule
    names; not their own name) fold. Calls matching ``expand`` globs never fold, nor do calls the
    ``filter``'s module patterns match only for some instances; ``fold=False`` folds nothing."""

    def __init__(
        self,
        trace: Trace,
        filter: Filter | None = None,
        expand: str | Iterable[str] | None = None,
        fold: bool = True,
    ) -> None:
        self.trace = trace
        self.filter = filter or Filter()
        self.module_mask = self.filter.module_mask(trace.modules)
        expand_patterns = patterns(expand)
        self._expand = glob_matcher(expand_patterns) if expand_patterns else None
        self._sigs: dict[tuple, int] = {}
        self._unique = 0
        self.flagged = flagged_ops(trace)
        self.roots = self._build()
        self.folds: list[Node] = []
        if fold:
            for node in self.roots:
                self._sign(node)
            self.roots = self._fold_all(self.roots)

    # --- structure ------------------------------------------------------------------------------

    def _build(self) -> list[Node]:
        ops, modules = self.trace.ops, self.trace.modules
        nodes = [Node(call=call) for call in modules]
        roots: list[Node] = []
        next_call = 0

        def attach_calls(position: int) -> None:
            nonlocal next_call
            while next_call < len(modules) and modules[next_call].first_op <= position:
                call = modules[next_call]
                (nodes[call.parent].children if call.parent is not None else roots).append(nodes[next_call])
                next_call += 1

        for op in ops:
            attach_calls(op.index)
            (nodes[op.module_index].children if op.module_index is not None else roots).append(Node(op=op))
        attach_calls(len(ops) + len(modules))
        return roots

    def _sign(self, node: Node) -> int:
        """Give ``node`` (and its subtree) an integer signature: equal signatures fold."""
        op = node.op
        if op is not None:
            key: tuple = (
                op.op, op.qualname, op.file, op.line, op.lasti, op.failed, op.index in self.flagged,
                _metas_key(op.inputs), _metas_key(op.outputs),
            )  # fmt: skip
        else:
            call = node.call
            assert call is not None
            children = tuple((relative_name(child, call), self._sign(child)) for child in node.children)
            if self._expand is not None and (self._expand(call.path) or self._expand(call.type)):
                self._unique -= 1  # never equal to another call's: never folds
                node.sig = self._unique
                return node.sig
            key = (
                call.type, call.file, call.line, call.lasti, call.failed, self.module_mask[call.index],
                _metas_key(call.inputs), _metas_key(call.outputs), children,
            )  # fmt: skip
        node.sig = self._sigs.setdefault(key, len(self._sigs))
        return node.sig

    def _fold_all(self, items: list[Node]) -> list[Node]:
        folded = fold_runs(items)
        for node in folded:
            if node.count > 1:
                self.folds.append(node)
            if node.children:
                node.children = self._fold_all(node.children)
        return folded


def fold_runs(items: list[Node]) -> list[Node]:
    """Fold runs of siblings that repeat: ``a a a`` becomes ``a ×3``; ``a b a b`` a group ``(a b) ×2``.
    At each position the unit (up to ``MAX_PERIOD`` siblings) that covers the most siblings wins."""
    sigs = [node.sig for node in items]
    count = len(items)
    folded: list[Node] = []
    i = 0
    while i < count:
        best_period, best_repeats, best_cover = 0, 1, 0
        for period in range(1, min(MAX_PERIOD, (count - i) // 2) + 1):
            if sigs[i + period] != sigs[i]:
                continue
            unit = sigs[i : i + period]
            repeats = 1
            while (
                i + (repeats + 1) * period <= count
                and sigs[i + repeats * period : i + (repeats + 1) * period] == unit
            ):
                repeats += 1
            if repeats >= 2 and repeats * period > best_cover:
                best_period, best_repeats, best_cover = period, repeats, repeats * period
                if best_cover == count - i:
                    break
        if not best_cover:
            folded.append(items[i])
            i += 1
            continue
        starts = items[i : i + best_cover : best_period]
        node = items[i] if best_period == 1 else Node(children=items[i : i + best_period], group=True)
        node.count, node.instances = best_repeats, tuple(starts)
        folded.append(node)
        i += best_cover
    return folded


def _metas_key(metas: tuple[TensorMeta, ...]) -> tuple:
    return tuple((tuple(m.shape), m.dtype, m.device, m.requires_grad, m.expr, m.path) for m in metas)


def flagged_ops(trace: Trace) -> dict[int, str]:
    """Ops a contract violation or a diagnostic points at, and the mark they get."""
    marks: dict[int, str] = {}
    for diagnostic in getattr(trace, "diagnostics", None) or ():
        index = getattr(diagnostic, "op_index", None)
        if index is not None:
            marks[index] = f"⚠ {getattr(diagnostic, 'kind', 'diagnostic')}"
    for violation in getattr(trace, "contracts", None) or ():
        index = getattr(violation, "op_index", None)
        if index is not None:
            marks[index] = "✗ contract"
    return marks


# --- names ------------------------------------------------------------------------------------------


def relative_name(node: Node, parent: ModuleCall | None) -> str | None:
    """A module call's path relative to its parent call (``attn`` under ``blocks.0``); ``None`` for an op."""
    call = node.call
    if call is None:
        return None
    if parent is not None and parent.path and call.path.startswith(parent.path + "."):
        return call.path[len(parent.path) + 1 :]
    return call.path


_NUMBERED = re.compile(r"^(.*?)(\d+)$")


def fold_label(names: Sequence[str], calls: Sequence[ModuleCall]) -> str:
    """``blocks.0-11`` for ``blocks.0`` … ``blocks.11``; ``block#1-3`` for three calls of ``block``."""
    if len(set(names)) == 1:
        numbers = [call.call for call in calls]
        return f"{names[0]}#{_number_range(numbers)}"
    parts = [_NUMBERED.match(name) for name in names]
    if all(parts) and len({p.group(1) for p in parts}) == 1:
        return parts[0].group(1) + _number_range([int(p.group(2)) for p in parts])
    return ", ".join(names) if len(names) <= 3 else f"{names[0]}, …, {names[-1]}"


def _number_range(numbers: list[int]) -> str:
    if numbers == list(range(numbers[0], numbers[0] + len(numbers))):
        return f"{numbers[0]}-{numbers[-1]}"
    return ",".join(map(str, numbers)) if len(numbers) <= 6 else f"{numbers[0]},{numbers[1]},…,{numbers[-1]}"


def module_name(node: Node, parent: ModuleCall | None) -> str:
    """What a module row shows as its name: relative path, fold range, or the class for a root."""
    call = node.call
    assert call is not None
    if node.count > 1:
        names = [relative_name(instance, parent) or instance.call.type for instance in node.instances]
        return fold_label(names, [instance.call for instance in node.instances])
    return relative_name(node, parent) or ""


def tree_prefix(guides: tuple[bool, ...], last: bool) -> str:
    """``│  ├─ ``: a guide for each open ancestor, then this row's branch."""
    return "".join("│  " if more else "   " for more in guides) + ("└─ " if last else "├─ ")


# --- the view ---------------------------------------------------------------------------------------


class ModuleTreeView(GridView):
    """What the tree and the module summary share: the folded module tree of a trace, built
    when first needed, with its filter, depth and header."""

    def __init__(
        self,
        trace: Trace,
        depth: int | None = None,
        filter: Filter | None = None,
        expand: str | Iterable[str] | None = None,
        fold: bool = True,
        header: bool = True,
        title: str | None = None,
    ) -> None:
        self.trace = trace
        self.depth = depth
        self.filter = filter or Filter()
        self.show_header = header
        self.title = title
        self._expand, self._fold = expand, fold
        self._seen: dict[int, bool] = {}

    # built when first needed: a view made but not shown costs nothing

    @cached_property
    def tree(self) -> ModuleTree:
        return ModuleTree(self.trace, self.filter, self._expand, self._fold)

    @cached_property
    def common(self) -> tuple[str | None, str | None]:
        """The dtype and device shown only where an output differs from them."""
        return common_dtype_device(self.trace.ops)

    def header_lines(self) -> list[Line]:
        if not self.show_header:
            return []
        return header_lines(self.trace)

    def after_lines(self) -> list[Line]:
        return diagnosis_lines(self.trace)


class TraceTree(ModuleTreeView):
    """The module tree as rows: a module call shows its name, class, op count and output shape,
    and the ops and calls inside it below, indented; a module call that ran one op is one row.
    ``depth`` shows module calls at most that many levels below the top-level ones (deeper calls
    are summarized on their parent's row); a folded entry shows one instance's contents."""

    columns = (
        Column("#", style="dim", justify="right"),
        Column("line", style="green", give=2, floor=10, least=6, cut="left"),
        Column("module / code", give=1, floor=24, least=12),  # the tree's guides, names and code
        Column("op", style="bold"),
        Column("output shape", wraps=True),  # never cut
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.shown_ops = 0

    # built when first needed: a view made but not shown costs nothing

    @cached_property
    def op_mask(self) -> list[bool]:
        return self.filter.op_mask(self.trace, self.tree.module_mask)

    @cached_property
    def one_file(self) -> bool:
        return len({op.file for op in self.trace.ops} | {call.file for call in self.trace.modules}) <= 1

    # --- visibility -----------------------------------------------------------------------------

    def _visible(self, node: Node) -> bool:
        known = self._seen.get(id(node))
        if known is not None:
            return known
        if node.op is not None:
            visible = self.op_mask[node.op.index]
        else:
            visible = any([self._visible(child) for child in node.children]) or (
                node.call is not None
                and not (self.filter.ops or self.filter.changes)
                and self.tree.module_mask[node.call.index]
            )
        self._seen[id(node)] = visible
        return visible

    def _visible_children(self, nodes: list[Node]) -> list[Node]:
        if not self.filter:
            return nodes
        return [node for node in nodes if self._visible(node)]

    # --- rows -----------------------------------------------------------------------------------

    def make_rows(self) -> list[Row]:
        rows: list[Row] = []
        self._previous_site: tuple[str, int] | None = None
        self.outline: list[
            tuple[int | None, Node]
        ] = []  # each row's parent row and node (the report folds them)
        self._parents: list[int] = []
        self._emit(self._visible_children(self.tree.roots), None, 0, (), rows, top=True)
        return rows

    def _add(self, rows: list[Row], row: Row, node: Node) -> int:
        self.outline.append((self._parents[-1] if self._parents else None, node))
        rows.append(row)
        return len(rows) - 1

    def _emit(
        self, nodes: list[Node], parent: ModuleCall | None, level: int, guides: tuple[bool, ...], rows: list[Row],
        top: bool = False,
    ) -> None:  # fmt: skip
        for position, node in enumerate(nodes):
            last = position == len(nodes) - 1
            prefix = "" if top else tree_prefix(guides, last)
            inner_guides = guides if top else (*guides, not last)
            if node.op is not None:
                self._add(rows, self._op_row(node, prefix), node)
            elif node.group:
                self._parents.append(self._add(rows, self._group_row(node, prefix), node))
                self._previous_site = None
                self._emit(self._visible_children(node.children), parent, level, inner_guides, rows)
                self._parents.pop()
            else:
                self._module(node, parent, level, prefix, inner_guides, rows)

    def _module(
        self,
        node: Node,
        parent: ModuleCall | None,
        level: int,
        prefix: str,
        guides: tuple[bool, ...],
        rows: list[Row],
    ) -> None:
        call = node.call
        assert call is not None
        children = self._visible_children(node.children)
        only = node.children[0] if len(node.children) == 1 else None
        if only is not None and only.op is not None and only.count == 1 and children:
            self._add(
                rows, self._leaf_row(node, only.op, parent, prefix), node
            )  # a module that ran one op: one row
            return
        collapsed = self.depth is not None and level >= self.depth
        self._parents.append(
            self._add(
                rows, self._module_row(node, parent, prefix, expanded=bool(children) and not collapsed), node
            )
        )
        self._previous_site = None
        if not collapsed:
            self._emit(children, call, level + 1, guides, rows)
        self._parents.pop()

    def _site(self, file: str, line: int) -> str:
        return str(line) if self.one_file else short_location(file, line)

    def _op_row(self, node: Node, prefix: str) -> Row:
        op = node.op
        assert op is not None
        self.shown_ops += 1
        site = (op.file, op.line)
        new_line = site != self._previous_site
        self._previous_site = site
        tree: Cell = ((prefix, "dim"),) if prefix else ()
        if new_line:
            tree += cell(code_without_comment(op.code))
        name: Cell = cell(op.op) + (((f" ×{node.count}", "magenta"),) if node.count > 1 else ())
        return Row(
            (
                cell(str(op.index)),
                cell(self._site(op.file, op.line) if new_line else ""),
                tree,
                name,
                self._shapes(op),
            ),
            style=FAILED_ROW if op.failed else None,
        )

    def _leaf_row(self, node: Node, op: OpRecord, parent: ModuleCall | None, prefix: str) -> Row:
        self.shown_ops += 1
        call = node.call
        assert call is not None
        self._previous_site = None
        return Row(
            (
                cell(str(op.index)),
                cell(self._site(call.file, call.line)),
                self._module_label(node, parent, prefix, glyph=""),
                cell(op.op),
                self._shapes(op),
            ),
            style=FAILED_ROW if op.failed else None,
        )

    def _module_row(self, node: Node, parent: ModuleCall | None, prefix: str, expanded: bool) -> Row:
        call = node.call
        assert call is not None
        count = call.end_op - call.first_op
        shapes: Cell = (
            (("✗ raised", "bold red"),) if call.failed else shape_fragments(call.outputs, *self.common)
        )
        return Row(
            (
                cell(""),
                cell(self._site(call.file, call.line) if call.line else ""),
                self._module_label(node, parent, prefix, glyph="▾ " if expanded else "▸ "),
                cell(f"{count} op{'s' if count != 1 else ''}", "dim"),
                shapes,
            ),
            style=FAILED_ROW if call.failed else None,
        )

    def _module_label(self, node: Node, parent: ModuleCall | None, prefix: str, glyph: str) -> Cell:
        call = node.call
        assert call is not None
        label: Cell = ((prefix, "dim"),) if prefix else ()
        label += cell(glyph, "dim")
        times = cell(f" ×{node.count}", "bold magenta") if node.count > 1 else ()
        if not call.path:  # a root module: its class, and its call numbers when folded
            name = module_name(node, parent) if node.count > 1 else call.type
            return label + cell(name, "bold") + times
        return label + cell(module_name(node, parent), "blue") + times + cell(f"  {call.type}", "dim")

    def _group_row(self, node: Node, prefix: str) -> Row:
        label: Cell = ((prefix, "dim"),) if prefix else ()
        label += cell("▾ ", "dim") + cell(f"×{node.count}", "bold magenta") + cell(" repeated", "dim")
        first, last = node.instances[0], node.instances[-1]
        ops = node.op_count()
        return Row(
            (
                cell(""),
                cell(""),
                label,
                cell(f"{ops} op{'s' if ops != 1 else ''}", "dim"),
                cell(f"from op {_first_op(first)} to op {_first_op(last)}", "dim"),
            )
        )

    def _shapes(self, op: OpRecord) -> Cell:
        if op.failed:
            shapes: Cell = (("✗ raised", "bold red"),)
        else:
            shapes = shape_fragments(op.outputs, *self.common)
        mark = self.tree.flagged.get(op.index)
        return shapes + (((f" {mark}", "bold red" if mark.startswith("✗") else "yellow"),) if mark else ())

    # --- footer ---------------------------------------------------------------------------------

    def footer_lines(self) -> list[Line]:
        trace = self.trace
        line = f"{len(trace.ops)} ops, {len(trace.modules)} module calls"
        dtype, device = self.common
        if dtype:
            line += f"; {dtype} on {device} unless shown"
        lines: list[Line] = [((line, "dim"),)]
        if self.tree.folds:
            hidden = sum(node.count - 1 for node in self.tree.folds)
            folds = len(self.tree.folds)
            lines.append(
                (
                    (f"{folds} repeated entr{'ies' if folds != 1 else 'y'} folded ({hidden} identical "
                     "repeats not shown); --expand PATTERN (expand=) shows them one by one", "dim"),
                )
            )  # fmt: skip
        if self.filter:
            lines.append(((f"{self.shown_ops} op rows match: {self.filter.describe()}", "dim"),))
        if self.depth is not None:
            lines.append(((f"module calls deeper than depth {self.depth} are summarized on one row", "dim"),))
        lines.extend(text_lines(contract_footer(trace)))  # each violation in full, as under the table
        error = error_line(trace)
        if error:
            lines.append(((error, "bold red"),))
        return lines


def _first_op(node: Node) -> int:
    while node.op is None and node.children:
        node = node.children[0]
    if node.op is not None:
        return node.op.index
    return node.call.first_op if node.call is not None else 0
