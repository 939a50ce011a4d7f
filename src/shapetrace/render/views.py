"""Which view shows a trace: the flat table, the module tree or the module summary, as the
command line and a notebook pick them."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from shapetrace.render.filters import Filter
from shapetrace.render.grid import GridView
from shapetrace.render.summary import ModuleSummary
from shapetrace.render.table import TraceTable
from shapetrace.render.tree import TraceTree

if TYPE_CHECKING:
    from shapetrace.trace import Trace

TREE_ABOVE_OPS = 500  # longer traces show as the folded module tree unless the table is asked for
VIEWS = ("table", "tree", "summary")


def make_view(
    trace: Trace,
    view: str | None = None,
    *,
    depth: int | None = None,
    module: str | Iterable[str] | None = None,
    op: str | Iterable[str] | None = None,
    changes: bool = False,
    expand: str | Iterable[str] | None = None,
) -> GridView:
    """The ``view`` (``table``, ``tree`` or ``summary``) of ``trace`` with these filters. Without
    ``view``: the tree when ``depth`` is given or the trace has more than 500 ops, else the table."""
    if view is None:
        view = "tree" if depth is not None or len(trace) > TREE_ABOVE_OPS else "table"
    if view not in VIEWS:
        raise ValueError(f"view must be one of {', '.join(VIEWS)}, not {view!r}")
    if depth is not None and depth < 0:
        raise ValueError(f"depth must be 0 or more, not {depth}")
    selection = Filter.of(module, op, changes)
    if view == "table":
        return TraceTable(trace, filter=selection)
    if view == "tree":
        return TraceTree(trace, depth=depth, filter=selection, expand=expand)
    return ModuleSummary(trace, depth=depth, filter=selection, expand=expand)
