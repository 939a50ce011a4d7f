"""The trace as a dataflow picture, drawn by Graphviz: ops and module calls are nodes, modules
nested boxes, identical repeated blocks one box (``blocks.0-11 ×12``), each edge labelled with the
shape that flows along it. Dtypes and devices are coloured where they change; the failing op, the
tensors it was given and the diagnosis stand out in red.

The boxes follow the folded module tree (:class:`~shapetrace.render.tree.ModuleTree`): a module
call at most ``depth`` levels below the top-level ones is a box of its own, one at level
``depth`` a single node. Edges come from the tensors themselves: an op's input is drawn from the
node of the op that made it (the last output with that tensor's id before it).
"""

from __future__ import annotations

import html
import os
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import graphviz

from shapetrace.capture.records import ModuleCall, OpRecord, TensorMeta
from shapetrace.capture.source import code_without_comment, short_location
from shapetrace.render.table import common_dtype_device
from shapetrace.render.tree import ModuleTree, Node, module_name

if TYPE_CHECKING:
    from shapetrace.trace import Trace

GRAPH_FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
MAX_NODES = 16  # the automatic depth opens boxes while the picture keeps at most this many nodes (one screen)
RED, DTYPE, DEVICE, GREY, BLUE = "#d62f36", "#a93fc4", "#b07700", "#8a8a8a", "#2f62c9"
FILLS = ("#f7f8fa", "#eef2f8", "#e6edf7", "#dde7f5")  # a box's fill, darker the deeper it nests
FONT = "Helvetica,Arial,DejaVu Sans,sans-serif"
DOT_MISSING = (
    "drawing the picture needs Graphviz's `dot` program: apt-get install graphviz, brew install "
    "graphviz or conda install graphviz (the graph's DOT text, TraceGraph.source, needs nothing)"
)


class GraphvizMissing(RuntimeError):
    """Graphviz's ``dot`` is not installed."""


@dataclass
class _Edge:
    shapes: dict[str, TensorMeta] = field(default_factory=dict)  # shape text -> one tensor with it
    operand: bool = False  # into the failing op
    loop: bool = False  # from a repeated block's end back to its start


class TraceGraph:
    """The dataflow picture of a trace (``Trace.graph()``). ``depth``: module calls at most that
    many levels below the top-level ones are boxes, those at ``depth`` single nodes (``None``:
    the deepest level that keeps the picture to :data:`MAX_NODES` nodes); ``expand``: module
    calls matching these globs are never folded (as in the tree). The module calls around a
    failed op are always opened down to it.

    ``source`` is the DOT text; :meth:`save` writes SVG, PNG, PDF or DOT; notebooks show it inline."""

    def __init__(
        self, trace: Trace, depth: int | None = None, expand: str | Iterable[str] | None = None,
        tree: ModuleTree | None = None,
    ) -> None:  # fmt: skip
        """``tree``: the trace's folded module tree with these ``expand`` globs, when the caller has it."""
        if depth is not None and depth < 0:
            raise ValueError(f"depth must be 0 or more, not {depth}")
        self.trace = trace
        self.tree = tree if tree is not None else ModuleTree(trace, expand=expand)
        self.failing = trace.failing_op()
        self._failing_path = self._calls_around(self.failing)
        self.depth = self._auto_depth() if depth is None else depth

    # --- what is drawn ----------------------------------------------------------------------------

    def _calls_around(self, op: OpRecord | None) -> set[int]:
        """The module calls enclosing ``op`` (opened whatever the depth)."""
        calls: set[int] = set()
        index = op.module_index if op is not None else None
        while index is not None:
            calls.add(index)
            index = self.trace.modules[index].parent
        return calls

    def _opened(self, node: Node, level: int, depth: int) -> bool:
        call = node.call
        return (
            call is not None and bool(node.children) and (level < depth or call.index in self._failing_path)
        )

    def _count_nodes(self, nodes: list[Node], level: int, depth: int) -> int:
        count = 0
        for node in nodes:
            if node.group:
                count += self._count_nodes(node.children, level, depth)
            elif node.op is None and not _one_op(node) and self._opened(node, level, depth):
                count += self._count_nodes(node.children, level + 1, depth)
            else:
                count += 1
        return count

    def _auto_depth(self) -> int:
        depth, count = 0, self._count_nodes(self.tree.roots, 0, 0)
        while True:
            deeper = self._count_nodes(self.tree.roots, 0, depth + 1)
            if deeper > MAX_NODES or deeper == count:
                return depth
            depth, count = depth + 1, deeper

    # --- the graph --------------------------------------------------------------------------------

    @cached_property
    def digraph(self) -> graphviz.Digraph:
        """The picture as a ``graphviz.Digraph``."""
        trace = self.trace
        self._node_of: list[str | None] = [None] * len(trace.ops)
        self._first_op: dict[str, int] = {}  # node -> its first op: an edge to an earlier node loops back
        self._boxes = 0
        self.dtype, self.device = common_dtype_device(trace.ops)
        graph = graphviz.Digraph(
            "shapetrace",
            graph_attr={
                "rankdir": "TB", "nodesep": "0.25", "ranksep": "0.32", "fontname": FONT, "fontsize": "11",
                "labeljust": "l", "bgcolor": "white", "newrank": "true", "compound": "true",
            },
            node_attr={
                "shape": "box", "style": "rounded,filled", "fillcolor": "white", "color": "#9aa3ad",
                "fontname": FONT, "fontsize": "11", "height": "0.3", "margin": "0.12,0.04",
            },
            edge_attr={"fontname": FONT, "fontsize": "9", "color": "#7d8794", "arrowsize": "0.6", "fontcolor": "#3b4450"},
        )  # fmt: skip
        self._draw(graph, self.tree.roots, 0, None)
        self._draw_edges(graph)
        return graph

    @property
    def source(self) -> str:
        """The DOT text of the picture."""
        return self.digraph.source

    def _draw(
        self, graph: graphviz.Digraph, nodes: list[Node], level: int, parent: ModuleCall | None
    ) -> None:
        for node in nodes:
            if node.op is not None:
                self._op_node(graph, node)
            elif node.group:
                self._boxes += 1
                with graph.subgraph(name=f"cluster_group{self._boxes}") as box:
                    self._box_style(box, f"<<b>×{node.count}</b> repeated>", level)
                    self._draw(box, node.children, level, parent)
                self._repeat(node)
            elif _one_op(node) or not self._opened(node, level, self.depth):
                self._call_node(graph, node, parent)
            else:
                call = node.call
                assert call is not None
                with graph.subgraph(name=f"cluster_call{call.index}") as box:
                    self._box_style(box, self._call_label(node, parent, box=True), level)
                    self._draw(box, node.children, level + 1, call)
                self._repeat(node)

    def _box_style(self, box: graphviz.Digraph, label: str, level: int) -> None:
        box.attr(
            label=label, style="rounded,filled", fillcolor=FILLS[min(level, len(FILLS) - 1)], color="#b8c2cc",
            fontname=FONT, fontsize="11", margin="10",
        )  # fmt: skip

    def _op_node(self, graph: graphviz.Digraph, node: Node) -> None:
        op = node.op
        assert op is not None
        name = f"op{op.index}"
        label = f"<b>{_escape(op.op)}</b>" + (
            f' <font color="{DTYPE}">×{node.count}</font>' if node.count > 1 else ""
        )
        attributes = {"tooltip": _tooltip(op.file, op.line, op.code)}
        change = self._change(op.inputs, op.outputs)
        self._node(
            graph,
            name,
            label,
            change,
            attributes,
            op.failed,
            op.index,
            self._holds_failing(op.index, op.index + 1),
        )
        for instance in node.instances or (node,):
            if instance.op is not None:
                self._node_of[instance.op.index] = name

    def _call_node(self, graph: graphviz.Digraph, node: Node, parent: ModuleCall | None) -> None:
        call = node.call
        assert call is not None
        name = f"call{call.index}"
        kind = f"{_escape(call.type)} · " if call.path else ""  # a root's label is its class already
        if _one_op(node):
            op = node.children[0].op
            assert op is not None
            detail = kind + _escape(op.op)
        else:
            ops = call.end_op - call.first_op
            detail = kind + f"{ops} op{'s' if ops != 1 else ''}"
        label = self._call_label(node, parent) + f'<br/><font point-size="9" color="{GREY}">{detail}</font>'
        attributes = {"tooltip": _tooltip(call.file, call.line, call.code)}
        change = self._change(call.inputs, call.outputs)
        failing = self._holds_failing(call.first_op, call.end_op)
        self._node(graph, name, label, change, attributes, call.failed, call.first_op, failing)
        for instance in node.instances or (node,):
            assert instance.call is not None
            for index in range(instance.call.first_op, instance.call.end_op):
                self._node_of[index] = name

    def _call_label(self, node: Node, parent: ModuleCall | None, box: bool = False) -> str:
        call = node.call
        assert call is not None
        name = module_name(node, parent) if call.path or node.count > 1 else call.type
        label = f'<font color="{BLUE}"><b>{_escape(name)}</b></font>'
        if node.count > 1:
            label += f' <font color="{DTYPE}"><b>×{node.count}</b></font>'
        if box:
            label += f"  {_escape(call.type)}" if call.path else ""
            return f"<{label}>"
        return label

    def _node(
        self, graph: graphviz.Digraph, name: str, label: str, change: str, attributes: dict[str, str],
        failed: bool, first_op: int, failing: bool,
    ) -> None:  # fmt: skip
        if change:
            label += f"<br/>{change}"
        if failed:
            label = f'<font color="{RED}"><b>✗</b></font> ' + label
            attributes.update(color=RED, fillcolor="#fde2e1", penwidth="2")
        elif change:
            attributes.update(color=DEVICE if DEVICE in change else DTYPE, penwidth="1.6")
        graph.node(name, f"<{label}>", id=f"node-{name}", **attributes)  # the report finds rows by these ids
        self._first_op[name] = first_op
        if failing:
            self._diagnosis(graph, name)

    def _holds_failing(self, start: int, end: int) -> bool:
        return self.failing is not None and start <= self.failing.index < end

    def _change(self, inputs: tuple[TensorMeta, ...], outputs: tuple[TensorMeta, ...]) -> str:
        """``float32 → float16`` / ``cpu → cuda:0`` (HTML) when the first output's dtype or device is
        not its first input's; for a tensor made from none, its dtype or device when not the common one."""
        if not outputs:
            return ""
        out, first = outputs[0], inputs[0] if inputs else None
        parts = []
        for before, after, common, colour in (
            (first and first.dtype_name, out.dtype_name, self.dtype, DTYPE),
            (first and first.device_name, out.device_name, self.device, DEVICE),
        ):
            if before is None and after != common:
                parts.append(f'<font point-size="9" color="{colour}">{_escape(after)}</font>')
            elif before is not None and after != before:
                parts.append(f'<font point-size="9" color="{colour}">{_escape(f"{before} → {after}")}</font>')
        return " ".join(parts)

    def _repeat(self, node: Node) -> None:
        """Ops of a folded entry's other instances map to the first instance's nodes."""
        if node.count < 2:
            return
        first_start = _start(node.instances[0])
        length = _extent(node)[1] - _extent(node)[0] if node.group else None
        for instance in node.instances[1:]:
            start = _start(instance)
            end = start + length if length is not None else _end(instance)
            for index in range(start, end):
                self._node_of[index] = self._node_of[first_start + index - start]

    # --- edges ------------------------------------------------------------------------------------

    def _draw_edges(self, graph: graphviz.Digraph) -> None:
        trace, node_of = self.trace, self._node_of
        roots = [call for call in trace.modules if call.parent is None]
        # the model's inputs by their place in its arguments ([0], [1]): one node each, however often it ran
        model_inputs = {meta.tensor_id: meta.path for call in roots for meta in call.inputs}
        failing = self.failing.index if self.failing is not None else None
        producer: dict[int, int] = {}
        edges: dict[tuple[str, str], _Edge] = {}
        inputs: dict[str, str] = {}  # node -> label
        for op in trace.ops:
            target = node_of[op.index]
            for meta in op.inputs:
                made_by = producer.get(meta.tensor_id)
                if made_by is not None:
                    source = node_of[made_by]
                elif meta.tensor_id in model_inputs or op.module_index is None:
                    path = model_inputs.get(meta.tensor_id)
                    source = f"input{path}" if path is not None else f"input_t{meta.tensor_id}"
                    inputs[source] = "input" if path in (None, "", "[0]") else f"input {path}"
                else:
                    continue  # a parameter or buffer
                if source is None or target is None or source == target:
                    continue
                edge = edges.setdefault((source, target), _Edge())
                edge.shapes.setdefault(self._shape(meta), meta)
                edge.operand |= op.index == failing
                edge.loop |= (
                    made_by is not None and self._first_op[source] >= self._first_op[target]
                )  # into a repeat
            for meta in op.outputs:
                producer[meta.tensor_id] = op.index
        for name, label in inputs.items():
            graph.node(
                name,
                label,
                shape="ellipse",
                style="filled",
                fillcolor="#eef6ee",
                color="#7fb48a",
                fontsize="10",
            )
        outputs: set[str] = set()
        for call in roots:  # the model's outputs: one node for each node that makes one
            made = {
                meta.tensor_id: i for i in range(call.first_op, call.end_op) for meta in trace.ops[i].outputs
            }
            for meta in call.outputs:
                made_by = made.get(meta.tensor_id)
                source = node_of[made_by] if made_by is not None else None
                if source is None:
                    continue
                name = f"output_{source}"
                if name not in outputs:
                    outputs.add(name)
                    graph.node(
                        name, "output", shape="ellipse", style="filled", fillcolor="#eef3fb", color="#8aa6d6",
                        fontsize="10",
                    )  # fmt: skip
                edges.setdefault((source, name), _Edge()).shapes.setdefault(self._shape(meta), meta)
        for (source, target), edge in edges.items():
            self._edge(graph, source, target, edge)

    def _shape(self, meta: TensorMeta) -> str:
        text = meta.shape_text()
        if meta.dtype_name != self.dtype:
            text += f" {meta.dtype_name}"
        if meta.device_name != self.device:
            text += f" {meta.device_name}"
        return text

    def _edge(self, graph: graphviz.Digraph, source: str, target: str, edge: _Edge) -> None:
        shapes = list(edge.shapes)
        label = "\n".join(shapes[:3]) + (f"\n+{len(shapes) - 3} more" if len(shapes) > 3 else "")
        metas = list(edge.shapes.values())
        attributes = {"label": f" {label}"} if label else {}
        if any(m.device_name != self.device for m in metas):
            attributes.update(color=DEVICE, fontcolor=DEVICE, penwidth="1.6")
        elif any(m.dtype_name != self.dtype for m in metas):
            attributes.update(color=DTYPE, fontcolor=DTYPE, penwidth="1.6")
        if edge.operand:
            attributes.update(color=RED, fontcolor=RED, penwidth="2.2")
        if edge.loop:
            attributes.update(style="dashed", constraint="false")
        graph.edge(source, target, **attributes)

    # --- the diagnosis ----------------------------------------------------------------------------

    def _diagnosis(self, graph: graphviz.Digraph, failed: str) -> None:
        """The diagnosis in a note beside the failed node, in the same box."""
        assert self.failing is not None
        diagnosis = next((d for d in self.trace.diagnostics if d.op_index == self.failing.index), None)
        error = self.trace.error
        lines = [f"✗ {diagnosis.kind}" if diagnosis else f"✗ {error.type if error else 'raised'}"]
        message = diagnosis.message if diagnosis else (error.message if error else "")
        lines += textwrap.wrap(message, 56, break_long_words=False)[:8]
        if diagnosis and diagnosis.fix:
            lines += textwrap.wrap(f"Fix: {diagnosis.fix}", 56, break_long_words=False)[:4]
        label = '<br align="left"/>'.join(_escape(line) for line in lines) + '<br align="left"/>'
        label = label.replace(_escape(lines[0]), f"<b>{_escape(lines[0])}</b>", 1)
        graph.node(
            "diagnosis", f"<{label}>", id="node-diagnosis", shape="note", style="filled", fillcolor="#fff5f5", color=RED,
            fontcolor="#5a1014", fontsize="10",
        )  # fmt: skip
        graph.edge(failed, "diagnosis", style="dashed", color=RED, arrowhead="none")
        with graph.subgraph() as row:
            row.attr(rank="same")
            row.node(failed)
            row.node("diagnosis")

    # --- output -----------------------------------------------------------------------------------

    def pipe(self, format: str = "svg") -> bytes:
        """The picture rendered by Graphviz (``svg``, ``png``, ``pdf``)."""
        try:
            return self.digraph.pipe(format=format)
        except graphviz.ExecutableNotFound:
            raise GraphvizMissing(DOT_MISSING) from None

    def to_svg(self) -> str:
        return self.pipe("svg").decode("utf-8")

    def save(self, path: str | Path, format: str | None = None) -> Path:
        """Write the picture to ``path`` as ``svg``, ``png``, ``pdf`` or ``dot`` (by default, by suffix)."""
        path = Path(path)
        format = format or GRAPH_FORMATS.get(path.suffix.lower())
        if format not in set(GRAPH_FORMATS.values()):
            raise ValueError(
                f"cannot tell the format of {path}: use a .svg, .png, .pdf or .dot name, or format="
            )
        content = self.source.encode("utf-8") if format == "dot" else self.pipe(format)
        partial = path.with_name(path.name + ".partial")
        partial.write_bytes(content)
        os.replace(partial, path)
        return path

    def _repr_svg_(self) -> str:
        return self.to_svg()

    def _repr_html_(self) -> str:
        """Inline in a notebook or a page: the SVG element (no XML prolog), scrolled when wider."""
        svg = self.to_svg()
        return f'<div style="max-width:100%;overflow:auto">{svg[svg.index("<svg") :]}</div>'


# --- helpers ----------------------------------------------------------------------------------------


def _one_op(node: Node) -> bool:
    """A module call that ran exactly one op: drawn as one node, as the tree shows it as one row."""
    return (
        node.call is not None
        and len(node.children) == 1
        and node.children[0].op is not None
        and node.children[0].count == 1
    )


def _start(node: Node) -> int:
    """The first op of ``node`` (a group: of its first member)."""
    if node.op is not None:
        return node.op.index
    if node.call is not None:
        return node.call.first_op
    return _start(node.children[0])


def _end(node: Node) -> int:
    """One past the last op of ``node`` alone (not its repeats)."""
    if node.op is not None:
        return node.op.index + 1
    if node.call is not None:
        return node.call.end_op
    return _extent(node.children[-1])[1]


def _extent(node: Node) -> tuple[int, int]:
    """The ops ``node`` covers with all its repeats (a group: one repetition of its unit)."""
    if node.group:
        return _start(node.children[0]), _extent(node.children[-1])[1]
    last = node.instances[-1] if node.count > 1 else node
    return _start(node), _end(last)


def _escape(text: str) -> str:
    return html.escape(text, quote=True)


def _tooltip(file: str, line: int, code: str) -> str:
    return f"{short_location(file, line)}  {code_without_comment(code)}" if line else ""
