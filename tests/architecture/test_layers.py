"""The package's import structure: no cycles, and function-level imports only where they keep
an expensive import (torch's fake tensors and sympy, the pytest plugin's dependencies) lazy."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

grimp = pytest.importorskip("grimp")  # comes with import-linter, a test dependency

SOURCE = Path(__file__).parents[2] / "src" / "shapetrace"

# module -> what it imports inside functions, and why that import is deferred.
LAZY_IMPORTS = {
    "shapetrace.trace": {"shapetrace.comments"},  # sympy: when comments are asked for
    "shapetrace.symbolic.job": {"shapetrace.symbolic.engine"},  # torch's fake tensors, sympy: when a pass runs
    "shapetrace.symbolic.shapes": {  # likewise, for trace_shapes
        "shapetrace.symbolic.bridge", "shapetrace.symbolic.dims", "shapetrace.symbolic.engine",
        "shapetrace.symbolic.effects", "shapetrace.symbolic.reuse", "shapetrace._private",
        "shapetrace._private.torch_symbolic",
    },
    # torch's sympy functions (they import torch's symbolic machinery): when a size needs them
    "shapetrace.symbolic.naming": {"shapetrace._private.torch_symbolic"},
    "shapetrace.symbolic.printer": {"shapetrace._private.torch_symbolic"},
    # the command line's start-up: the comment modules (rich's syntax highlighting, pygments) for
    # --annotate/--write/--check only
    "shapetrace.cli.comment_modes": {
        "shapetrace.comments.annotate", "shapetrace.comments.check", "shapetrace.comments.write",
    },
    "shapetrace.testing.comment_checks": {"shapetrace.cli.runner", "shapetrace.comments"},  # `import shapetrace.testing` stays light
    "shapetrace.testing.report": {"shapetrace.render.diagnostics"},
    "shapetrace.testing.traced": {"shapetrace.comments.files"},
}


def test_the_package_has_no_import_cycle():
    graph = grimp.build_graph("shapetrace", exclude_type_checking_imports=True)
    cycles = {
        tuple(sorted((module, *graph.find_shortest_chain(imported, module))))
        for module in graph.modules
        for imported in graph.find_modules_directly_imported_by(module)
        if graph.find_shortest_chain(imported, module)
    }
    assert not cycles


def test_function_level_imports_are_only_the_listed_lazy_ones():
    found: dict[str, set[str]] = {}
    for path in SOURCE.rglob("*.py"):
        module = ".".join(("shapetrace", *path.relative_to(SOURCE).with_suffix("").parts)).removesuffix(".__init__")
        tree = ast.parse(path.read_text())
        for function in ast.walk(tree):
            if isinstance(function, ast.FunctionDef | ast.AsyncFunctionDef):
                for node in ast.walk(function):
                    if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shapetrace"):
                        found.setdefault(module, set()).add(node.module)
    unexpected = {m: names - LAZY_IMPORTS.get(m, set()) for m, names in found.items()}
    assert {m: names for m, names in unexpected.items() if names} == {}
