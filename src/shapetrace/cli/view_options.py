"""The command line's view options: which view (table, tree, summary), its filters, and the
files it is also written to (docs/views.md)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from rich.console import Console

from shapetrace.render.export import save
from shapetrace.render.graph import GRAPH_FORMATS, TraceGraph
from shapetrace.render.grid import GridView
from shapetrace.render.report import TraceReport
from shapetrace.render.views import TREE_ABOVE_OPS, make_view

if TYPE_CHECKING:
    from shapetrace.trace import Trace

EXPORTS = (("svg", "SVG"), ("markdown", "Markdown"))  # the view shown, as a file: option (= format), label
FILES = ("html", "graph", *(name for name, _ in EXPORTS))  # every option naming a file to write


def _depth(text: str) -> int:
    try:
        depth = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, not {text!r}") from None
    if depth < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, not {depth}")
    return depth


def add_view_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("views (docs/views.md)")
    which = group.add_mutually_exclusive_group()
    which.add_argument(
        "--flat", dest="view", action="store_const", const="table",
        help=f"one row per op (the default up to {TREE_ABOVE_OPS} ops)",
    )  # fmt: skip
    which.add_argument(
        "--tree", dest="view", action="store_const", const="tree",
        help=f"the module tree, identical repeated blocks folded (the default above {TREE_ABOVE_OPS} ops)",
    )  # fmt: skip
    which.add_argument(
        "--summary", dest="view", action="store_const", const="summary",
        help="a torchinfo-style module summary: output shape, parameters, trainable",
    )  # fmt: skip
    group.add_argument(
        "--depth", type=_depth, metavar="N",
        help="show module calls at most N levels below the top-level ones (the tree, the summary, the picture)",
    )  # fmt: skip
    group.add_argument(
        "--module", action="append", metavar="PATTERN",
        help="only ops inside modules whose path or class matches this glob, e.g. 'blocks.*.attn' (repeatable)",
    )  # fmt: skip
    group.add_argument(
        "--op",
        action="append",
        metavar="NAME",
        help="only ops with this name or glob, e.g. softmax, '*conv*' (repeatable)",
    )
    group.add_argument(
        "--changes",
        action="store_true",
        help="only ops whose output shape, dtype or device differs from their input",
    )
    group.add_argument(
        "--expand", action="append", metavar="PATTERN",
        help="never fold module calls matching this glob ('*': fold nothing) (repeatable)",
    )  # fmt: skip
    group.add_argument(
        "--html", metavar="FILE",
        help="also write the interactive report to FILE: one HTML page, no network (module tree, filter, "
        "source, picture, diagnosis)",
    )  # fmt: skip
    group.add_argument(
        "--graph", metavar="FILE",
        help="also draw the dataflow picture to FILE (.svg, .png, .pdf or .dot; needs Graphviz's dot); "
        "--depth N opens N levels of module boxes",
    )  # fmt: skip
    for name, label in EXPORTS:
        group.add_argument(f"--{name}", metavar="FILE", help=f"also write the view shown as {label} to FILE")


def check_view_options(options: argparse.Namespace) -> str | None:
    """A message for options that cannot work together or files that cannot be written (checked
    before the script runs, so nothing is lost), else ``None``."""
    if options.view == "table" and options.depth is not None and options.graph is None:
        return "--depth applies to --tree, --summary and --graph, not to --flat"
    for name in FILES:
        target = getattr(options, name)
        if target is None:
            continue
        folder = Path(target).resolve().parent
        if not folder.is_dir():
            return f"--{name} {target}: no such directory: {folder}"
        if Path(target).is_dir():
            return f"--{name} {target}: is a directory"
    if options.graph is not None and Path(options.graph).suffix.lower() not in GRAPH_FORMATS:
        return f"--graph {options.graph}: name a .svg, .png, .pdf or .dot file"
    return None


def view_from_options(trace: Trace, options: argparse.Namespace) -> GridView:
    return make_view(
        trace, options.view, depth=options.depth, module=options.module, op=options.op,
        changes=options.changes, expand=options.expand,
    )  # fmt: skip


def write_exports(trace: Trace, view: GridView, options: argparse.Namespace, console: Console) -> None:
    """Write the files the options name: the report, the picture, the view as SVG or Markdown."""
    if options.html is not None:
        TraceReport(trace, expand=options.expand).save(options.html)
        console.print(f"[dim]report written to {options.html}[/dim]")
    if options.graph is not None:
        TraceGraph(trace, depth=options.depth, expand=options.expand).save(options.graph)
        console.print(f"[dim]graph written to {options.graph}[/dim]")
    for name, _ in EXPORTS:
        target = getattr(options, name)
        if target is not None:
            save(view, target, name)
            console.print(f"[dim]{name} written to {target}[/dim]")
