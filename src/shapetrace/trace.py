"""The facade users reach for: ``trace()``, the context manager that wires capture to the
analyses, and ``Trace``, what it recorded, with every analysis and view computed when first read.

Nothing below this module imports it: capture produces a :class:`Recording`; the analyses
(symbolic, contracts, diagnose) and the views (render, comments) take it and each other's
results; ``Trace`` ties them together lazily.
"""

from __future__ import annotations

import io
import json
import os
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from types import TracebackType
from typing import Any

from rich.console import Console
from torch import nn

from shapetrace._private.torch_api import torch_function_mode_depth
from shapetrace.capture.collector import gc_paused
from shapetrace.capture.interrupts import interrupts_deferred
from shapetrace.capture.parameters import TracedModels, summarize, traced_modules
from shapetrace.capture.recorder import Recorder, new_recorder
from shapetrace.capture.recording import Recording
from shapetrace.capture.records import ErrorRecord, ModuleCall, OpRecord, Summary
from shapetrace.contracts import ContractCall, ContractViolation, UnresolvedHint
from shapetrace.contracts.session import ContractSession, check_on_violation
from shapetrace.diagnose import Diagnostic, attach_note, diagnose
from shapetrace.diagnose.evidence import Evidence, EvidenceListener, collect_evidence
from shapetrace.render.console import output_console, print_views
from shapetrace.render.diagnostics import DiagnosticsView
from shapetrace.render.graph import TraceGraph
from shapetrace.render.json import trace_to_dict, write_json
from shapetrace.render.report import TraceReport
from shapetrace.render.table import TraceTable
from shapetrace.render.views import make_view
from shapetrace.symbolic.job import Job, Progress, check_budget
from shapetrace.symbolic.listener import ArgumentKeeper
from shapetrace.symbolic.result import PASS_OFF, Specialization, SymbolicResult, SymbolicStatus, skipped
from shapetrace.symbolic.shapes import run_on_specs
from shapetrace.symbolic.spec import DimsOption, dims_option


class Trace:
    """The ops and module calls of one traced block, in order, and the error that ended it.

    Records are built from the recording the first time they are read, with the symbolic
    pass's shapes when it has names to work with.
    """

    def __init__(self) -> None:
        self.recording = Recording()
        self.finished = False
        self.contracts: list[ContractViolation] = []  # violations, in the order found (docs/contracts.md)
        self.contract_warnings: list[UnresolvedHint] = []  # annotations that could not be checked
        self._contract_session: ContractSession | None = None
        self._symbolic_job: Job | None = None  # the symbolic pass to run when shapes are first read
        self._symbolic_result: SymbolicResult | None = None
        self._models: TracedModels | None = None  # the traced modules, weakly: read for the two below
        self._heard: EvidenceListener | None = None  # what the failing op's arguments were
        self._summary: Summary | None = None
        self._evidence: Evidence | None = None

    @property
    def summary(self) -> Summary:
        """The model and its parameter counts, read from the model when first asked for (empty, with
        ``freed``, when the model was freed before)."""
        if self._summary is None:
            if not self.finished:
                return Summary()
            self._read_modules()
        assert self._summary is not None
        return self._summary

    @property
    def evidence(self) -> Evidence | None:
        """Live-object facts for diagnostics (:mod:`shapetrace.diagnose.evidence`): taken when the
        block raised, else when first asked for, from the traced modules if they are alive."""
        if self._evidence is None and self.finished:
            self._read_modules()
        return self._evidence

    def _read_modules(self) -> None:
        """Take the parameter counts and the evidence not taken yet from the traced modules, in one
        walk of them (none when they were freed)."""
        models = self._models
        trees = models.trees() if models is not None else None
        if self._summary is None:
            if models is None or trees is None:
                self._summary = Summary(freed=models is not None)
            else:
                self._summary = summarize(trees, of_model=models.of_model)
        if self._evidence is None:
            self._evidence = collect_evidence(traced_modules(trees or []), self._heard)

    @property
    def notes(self) -> tuple[str, ...]:
        """What the trace could not record: TorchScript modules, compiled code."""
        return self.recording.notes

    @property
    def error(self) -> ErrorRecord | None:
        """The exception that ended the block, as a record; ``None`` when it did not raise."""
        return self.recording.error

    # --- records ----------------------------------------------------------------------------

    @cached_property
    def modules(self) -> list[ModuleCall]:
        """Every module call, in the order the calls began."""
        exprs = self._symbolic()
        with gc_paused():
            return self.recording.module_records(exprs.module_inputs, exprs.module_outputs)

    @cached_property
    def ops(self) -> list[OpRecord]:
        """Every torch-level op, in the order it ran."""
        modules = self.modules
        exprs = self._symbolic()
        with gc_paused():
            return self.recording.op_records(modules, exprs.op_inputs, exprs.op_outputs)

    @property
    def contract_calls(self) -> list[ContractCall]:
        """Every call checked against its annotations, with the dims it bound."""
        session = self._contract_session
        return session.call_records() if session is not None else []

    # --- symbolic shapes (docs/symbolic.md) -------------------------------------------------

    @property
    def symbolic(self) -> SymbolicStatus:
        """How the symbolic pass went: ``ran``, ``partial``, ``failed`` or ``skipped``, and why."""
        return self._symbolic().status

    @property
    def dims(self) -> dict[str, int]:
        """Every named dim and named constant, with its size in this run."""
        return dict(self._symbolic().dims)

    @property
    def specializations(self) -> list[Specialization]:
        """The named dims torch fixed to a number (or to another dim), each with the op and line
        whose guard fixed it."""
        return list(self._symbolic().specializations)

    def compute_shapes(self, progress: Progress | None = None) -> SymbolicStatus:
        """Run the symbolic pass now, if it has not run (reading shapes runs it anyway);
        ``progress(done_ops, total_ops)`` hears how far it is (the CLI shows a bar)."""
        return self._symbolic(progress).status

    def _symbolic(self, progress: Progress | None = None) -> SymbolicResult:
        """The symbolic pass's result, run the first time it is needed (after the block ends)."""
        if self._symbolic_result is None:
            if self._symbolic_job is None:
                return skipped("the trace has not ended" if not self.finished else PASS_OFF)
            job, self._symbolic_job = self._symbolic_job, None
            self._symbolic_result = job.run(progress)
        if self._models is not None and self._models.holding:
            self._read_modules()  # all the trace reads of the modules, now: then let them go
            self._models.release()
        return self._symbolic_result

    def __len__(self) -> int:
        return len(self.recording.ops)

    def __repr__(self) -> str:
        state = f", error={self.error.type}" if self.error else ""
        return f"<Trace {len(self)} ops, {len(self.recording.modules)} module calls{state}>"

    # --- queries ----------------------------------------------------------------------------

    @cached_property
    def module_call_counts(self) -> Counter[str]:
        """How many times each module path ran."""
        return Counter(m.path for m in self.modules)

    def module_label(self, module_index: int | None) -> str:
        """A module call's path, with ``#call`` when that module ran more than once; the root
        module shows as its class name."""
        if module_index is None:
            return ""
        call = self.modules[module_index]
        label = call.path or call.type
        return f"{label}#{call.call}" if self.module_call_counts[call.path] > 1 else label

    def failing_op(self) -> OpRecord | None:
        """The op that raised the error that ended the block, if an op did."""
        if self.error is None or self.error.op_index is None:
            return None
        return self.ops[self.error.op_index]

    @cached_property
    def diagnostics(self) -> list[Diagnostic]:
        """The failure explained (first, when an op raised), then the device lints, each at its
        line (docs/diagnostics.md)."""
        with gc_paused():
            return diagnose(self)

    # --- output -----------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The trace as plain data, schema ``shapetrace.trace/1`` (see docs/json-schema.md)."""
        return trace_to_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        """The trace as JSON text: with ``indent`` (the default), one op, module call or diagnostic
        per line; ``indent=None``, on one line. :meth:`save_json` writes it to a file, streamed."""
        if indent is None:
            return json.dumps(self.to_dict())
        out = io.StringIO()
        write_json(self, out)
        return out.getvalue()

    def save_json(self, path: str | os.PathLike) -> None:
        """Write :meth:`to_json`'s text to ``path`` as it is made (also for a million ops)."""
        with open(path, "w", encoding="utf-8") as out:
            write_json(self, out)

    def table(self) -> TraceTable:
        """The trace as a rich table, read top to bottom."""
        return TraceTable(self)

    def __rich__(self) -> TraceTable:
        return self.table()

    def view(self, view: str | None = None, **options: Any):
        """The trace as ``"table"``, ``"tree"`` (module tree, repeated blocks folded) or ``"summary"``
        (torchinfo-style), with ``depth=``, ``module=``, ``op=``, ``changes=``, ``expand=``; without
        ``view``, the tree above 500 ops, else the table. Print it, or ``.save("trace.html")``
        (``.svg``, ``.md``, ``.txt``); see docs/views.md."""
        return make_view(self, view, **options)

    def tree(self, **options: Any):
        """The module tree: :meth:`view` ``("tree")``."""
        return self.view("tree", **options)

    def module_summary(self, **options: Any):
        """The torchinfo-style module summary: :meth:`view` ``("summary")``."""
        return self.view("summary", **options)

    def graph(self, depth: int | None = None, expand: str | Iterable[str] | None = None) -> TraceGraph:
        """The dataflow picture: ops and module calls as nodes, modules as nested boxes, repeated
        blocks folded, edges labelled with shapes (Graphviz; ``.save("net.svg")``, shown inline in
        notebooks). ``depth`` opens boxes that many levels deep (default: as deep as fits)."""
        return TraceGraph(self, depth=depth, expand=expand)

    def report(self, expand: str | Iterable[str] | None = None) -> TraceReport:
        """The interactive report: one self-contained HTML page (``.save("trace.html")``) with the
        module tree, a filter box, each row's source, the picture and the diagnosis."""
        return TraceReport(self, expand=expand)

    def _repr_html_(self) -> str:
        """A notebook shows the trace as the HTML of :meth:`view`'s default view."""
        return self.view().to_html(page=False)

    def annotate(self):
        """The traced source with each line's output shape as an aligned ``# (B, C, H*W)``
        comment: ``str()`` of it is plain text, and rich prints it (see docs/comments.md)."""
        from shapetrace.comments import annotate  # sympy: imported when comments are asked for

        return annotate(self)

    def print(self, console: Console | None = None) -> None:
        """Print the table, and the diagnosis when there is one, to ``console`` (a rich ``Console``;
        by default stdout, at the terminal's width: :func:`~shapetrace.render.console.output_console`)."""
        diagnosis = [DiagnosticsView(self.diagnostics)] if self.diagnostics else []
        print_views(console or output_console(), self.table(), *diagnosis)

    # --- lifecycle --------------------------------------------------------------------------

    def _finish(
        self, recorder: Recorder, exc: BaseException | None, heard: EvidenceListener, hold_modules: bool = True
    ) -> None:
        """Take what the ended block recorded from ``recorder`` (before it is released); the
        traced modules until the trace is first read (``hold_modules``), else by weak reference."""
        recorder.close_open_calls()
        error = ErrorRecord(_type_name(exc), str(exc), _failing_op_index(recorder, exc)) if exc is not None else None
        self.recording = Recording(recorder.ops, recorder.modules, recorder.indirect_calls, error, tuple(recorder.notes))
        self.finished = True
        self._models = TracedModels(recorder.trees, of_model=recorder.model is not None, hold=hold_modules)
        self._heard = heard
        self._summary = self._evidence = None
        for name in ("ops", "modules", "module_call_counts", "diagnostics"):
            self.__dict__.pop(name, None)
        if exc is not None:  # the diagnosis goes onto the exception now: its evidence too
            self._evidence = collect_evidence(traced_modules(recorder.trees), heard, exc)
            attach_note(self, exc)

    def _attach_symbolic(self, job: Job | None, result: SymbolicResult | None = None) -> None:
        """Give the ended trace its symbolic pass to run (``job``) or its ``result``, else none."""
        self._symbolic_job = job
        if result is None and job is None:
            result = skipped(PASS_OFF)
        self._symbolic_result = result
        for name in ("ops", "modules"):
            self.__dict__.pop(name, None)


class trace:
    """Record every torch-level op and module call made inside the block.

    >>> with trace(model) as t:
    ...     y = model(x)
    >>> t.print()

    With ``model``, its submodules are hooked and named as in ``model.named_modules()``;
    without, every module called in the block is hooked. Everything installed is removed on
    exit, also when the block raises; the exception reaches the caller unchanged.

    ``dims="B C H W"`` names the dims of the model's first tensor argument (``dims={"x": "B C H W",
    "mask": "B N"}``: by argument), ``D=512`` names a size; with names (from these, jaxtyping hints
    on ``forward``, or ``torch.rand(B, C, H, W)`` in the block) each tensor's ``expr`` is its shape
    over them, ``(B, H*W, C)``, computed when the trace is first read (docs/symbolic.md).
    ``symbolic=False`` turns that pass off; ``symbolic_budget`` caps its time in seconds (default:
    the larger of 2 s and 5x the traced forward; ops not reached keep their concrete sizes).

    The trace keeps the model (without one, the root modules it saw) until its shapes are first
    read: the symbolic pass, parameter counts and the debugger's evidence read them then, and
    let go (it keeps no tensor: metadata only). ``hold_modules=False`` keeps only weak references
    from the start, so an unread trace keeps nothing alive; read it while the model is alive.

    Contracts (docs/contracts.md): every module ``forward`` with jaxtyping hints, functions
    decorated with ``@shapetrace.contract`` and those listed in ``contracts=[fn, ...]`` are
    checked on each call; a violation is recorded in ``Trace.contracts`` and, by
    ``on_violation``, warned about (``"warn"``, the default), raised (``"raise"``: a
    ``ContractError``, a ``TypeError``) or only recorded (``"record"``).
    """

    def __init__(
        self,
        model: nn.Module | None = None,
        *,
        contracts: Iterable[Callable] = (),
        on_violation: str = "warn",
        dims: str | Mapping[str, str] | DimsOption | None = None,
        symbolic: bool = True,
        symbolic_budget: float | None = None,
        hold_modules: bool = True,
        **sizes: int,
    ) -> None:
        self.hold_modules = hold_modules
        self.dim_names = dims_option(dims, sizes)  # a bad spec raises here, before anything runs
        self.symbolic = symbolic
        self.symbolic_budget = check_budget(symbolic_budget)
        check_on_violation(on_violation)
        self.model = model
        self.contracts = list(contracts)  # functions checked besides annotated forwards
        self.on_violation = on_violation
        self._trace: Trace | None = None
        self._recorder: Recorder | None = None
        self._mode_depth = 0  # TorchFunctionModes active before ours
        self._started = 0.0  # when the block began (the symbolic pass's budget scales with it)
        self._heard: EvidenceListener | None = None
        self._kept: ArgumentKeeper | None = None

    def __enter__(self) -> Trace:
        trace = self._trace = Trace()
        try:
            with interrupts_deferred():  # a Ctrl-C now waits until everything is installed...
                self._start(trace)
        except BaseException:  # ...and, delivered then, the block never runs: take it all out again
            with interrupts_deferred():
                self._undo()
            raise
        return trace

    def _start(self, trace: Trace) -> None:
        """Wire the recorder and its listeners and install everything (undone by :meth:`_undo`)."""
        recorder = self._recorder = new_recorder()
        trace.recording = Recording(recorder.ops, recorder.modules, recorder.indirect_calls)  # readable while running
        self._heard = EvidenceListener()
        session = trace._contract_session = ContractSession(
            self.on_violation, recorder, trace.contracts, trace.contract_warnings
        )
        self._kept = ArgumentKeeper() if self.symbolic else None
        listeners: list = [self._heard]
        if self._kept is not None:
            listeners.append(self._kept)
        if self.model is None:
            listeners.append(session)  # finds annotated modules as they are called
        recorder.listeners = tuple(listeners)
        self._mode_depth = torch_function_mode_depth()
        recorder.hook_modules(self.model)
        session.install(recorder.trees[0].modules if recorder.trees else (), self.contracts)
        self._started = time.perf_counter()
        recorder.__enter__()

    def _undo(self) -> None:
        """Remove whatever :meth:`_start` installed, however far it got."""
        recorder, trace = self._recorder, self._trace
        if recorder is None or trace is None:
            return
        try:
            if torch_function_mode_depth() > self._mode_depth:
                recorder.__exit__(None, None, None)
        finally:
            recorder.release()
            if trace._contract_session is not None:
                trace._contract_session.remove()
            self._recorder = self._heard = self._kept = None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._trace is not None, "trace.__exit__ without __enter__"
        block_seconds = time.perf_counter() - self._started
        with interrupts_deferred():
            self._stop(self._trace, exc, block_seconds)

    def _stop(self, trace: Trace, exc: BaseException | None, block_seconds: float) -> None:
        """Remove everything installed, then hand the recording to ``trace`` (a failure of ours
        becomes a warning, never the user's exception)."""
        recorder, heard, session = self._recorder, self._heard, trace._contract_session
        assert recorder is not None and heard is not None and session is not None, "trace not started"
        try:
            recorder.__exit__(None, None, None)
        finally:
            recorder.remove_hooks()  # the watch on module calls off: nothing of ours stays installed
            try:
                session.remove()
                trace._finish(recorder, exc, heard, self.hold_modules)
                kept = self._kept
                job = (
                    Job.capture(recorder, kept, self.dim_names, self.model, self.symbolic_budget, block_seconds)
                    if kept is not None else None
                )  # fmt: skip
                trace._attach_symbolic(job)
            except Exception as error:  # a bug of ours must not replace the user's exception
                warnings.warn(
                    f"shapetrace could not finish this trace ({type(error).__name__}: {error}); "
                    "the ops recorded so far are kept",
                    RuntimeWarning,
                    stacklevel=3,
                )
            finally:
                recorder.release()
                self._heard = self._kept = None


def trace_shapes(model: nn.Module, /, *args: Any, **kwargs: Any) -> Trace:
    """Trace ``model(*args, **kwargs)`` with tensors given by their dims, on fake tensors.

    >>> t = trace_shapes(model, x="B C H W", B=8, C=3, H=128, W=128)
    >>> t.print()

    An argument of ``forward`` (by position or by name) may be a dims spec (``"B C H W"``: a
    tensor of the default dtype on the model's device), a :class:`TensorSpec` (``TensorSpec("B T",
    dtype=torch.long)``), a tensor (its sizes, unnamed), or any other value (passed as is). Other
    keyword arguments give sizes: every dim a spec names needs one; the rest are named constants.
    Returns the :class:`Trace`, its shapes at these sizes and as expressions; if the forward
    raises, the trace ends there and ``Trace.error`` says why (nothing is raised).
    """
    traced = Trace()
    heard = EvidenceListener()
    recorder, error, result = run_on_specs(model, args, kwargs, (heard,))
    try:
        traced._finish(recorder, error, heard)
        traced._attach_symbolic(None, result(traced.error))
    finally:
        recorder.release()
    return traced


def _type_name(exc: BaseException) -> str:
    cls = type(exc)
    return cls.__qualname__ if cls.__module__ == "builtins" else f"{cls.__module__}.{cls.__qualname__}"


def _failing_op_index(recorder: Recorder, exc: BaseException) -> int | None:
    """Index of the op whose exception (or one it caused) ended the block."""
    if recorder.failure is None:
        return None
    seen = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        if link is recorder.failure:
            return recorder.failure_index
        seen.add(id(link))
        link = link.__cause__ or link.__context__
    return None
