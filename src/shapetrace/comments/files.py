"""The user's files a trace ran through, each with what every line produced."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy

from shapetrace.capture.source import code_without_comment, display_path
from shapetrace.comments.bindings import Resolver, SourceNames
from shapetrace.comments.calls import CallGraph
from shapetrace.comments.grammar import NotAShape, parse_shape
from shapetrace.comments.runs import Run, call_site_runs, line_runs
from shapetrace.comments.source import SourceError, SourceFile, is_user_file

if TYPE_CHECKING:
    from shapetrace.trace import Trace


@dataclass
class TracedFile:
    """A user's file, and the runs of each of its lines (line -> runs, in the order they ran)."""

    source: SourceFile
    runs: dict[int, list[Run]]
    resolver: Resolver

    @property
    def path(self) -> str:
        return self.source.path

    @property
    def display(self) -> str:
        return display_path(self.source.path)


def traced_files(trace: Trace) -> tuple[list[TracedFile], list[str]]:
    """The user's files the trace ran through (first-run order), and one message per traced
    file that was skipped (unreadable, or changed since it ran)."""
    ran_code = _ran_code(trace)
    order = list(dict.fromkeys([*(op.file for op in trace.ops), *(m.file for m in trace.modules)]))
    sources: dict[str, SourceFile] = {}
    skipped = []
    for file in order:
        if not is_user_file(file):
            continue
        try:
            source = SourceFile.read(file)
        except SourceError as error:
            skipped.append(f"{display_path(file)}: skipped: {error}")
            continue
        changed = [
            line
            for line, code in ran_code[file].items()
            if code and code_without_comment(source.line_text(line).strip()) != code_without_comment(code)
        ]
        if changed:
            skipped.append(f"{display_path(file)}: skipped: changed since it ran (line {changed[0]})")
            continue
        sources[file] = source
    by_file: dict[str, dict[int, list[Run]]] = defaultdict(dict)
    graph = CallGraph(sources)
    found_runs = line_runs(trace, graph.is_callee, graph.calls_at)
    found_runs.update(call_site_runs(trace, graph.sole_caller, set(found_runs)))  # `loss = vae_loss(...)`
    for (file, line), runs in found_runs.items():
        by_file[file][line] = runs
    dims = dict(getattr(trace, "dims", None) or {})
    specialised = _specialised(trace)
    divisible = dict(getattr(getattr(trace, "symbolic", None), "divisible", None) or {})
    found = []
    for file, source in sources.items():
        assert source.tree is not None
        names = SourceNames(source.tree)
        runs = by_file[file]
        _add_return_runs(runs, names, trace)
        found.append(TracedFile(source, runs, Resolver(names, trace.modules, dims, specialised, divisible)))
    return found, skipped


def runs_by_line(trace: Trace) -> dict[tuple[str, int], list[Run]]:
    """``(file, line) -> runs`` for the user's files, as shape comments describe lines: through
    the functions a line calls, and a ``forward``'s only ``return`` as the module's output."""
    files, _ = traced_files(trace)
    return {(traced.path, line): runs for traced in files for line, runs in traced.runs.items()}


def _specialised(trace: Trace) -> dict[str, sympy.Expr]:
    """Each dim torch fixed during the symbolic pass (``Trace.specializations``), and to what."""
    fixed = {}
    for specialization in getattr(trace, "specializations", None) or ():
        try:
            fixed[specialization.dim] = parse_shape(f"({specialization.expr},)")[0]
        except NotAShape:
            fixed[specialization.dim] = sympy.Integer(specialization.value)
    return fixed


def _ran_code(trace: Trace) -> dict[str, dict[int, str]]:
    code: dict[str, dict[int, str]] = defaultdict(dict)
    for record in (*trace.ops, *trace.modules):
        code[record.file][record.line] = record.code
    return code


def _add_return_runs(runs: dict[int, list[Run]], names: SourceNames, trace: Trace) -> None:
    """The only ``return`` of a ``forward`` returns the module call's output (``return h, h.mean(-1)``,
    ``return t``): its runs are the outputs of that class's calls that ran this very forward."""
    modules = trace.modules
    for line, scope in names.returns.items():
        contexts = {
            run.context
            for inner in range(scope.first_line, scope.last_line + 1)
            for run in runs.get(inner, ())
            if run.context is not None and modules[run.context].type == scope.class_name
        }
        if contexts:
            calls = [modules[index] for index in sorted(contexts)]
            runs[line] = [Run(call.outputs, call.index, call.failed, call.first_op) for call in calls]
