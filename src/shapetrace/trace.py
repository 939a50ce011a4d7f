"""``trace()``: the context manager users reach for, and ``Trace``: what it recorded."""

from __future__ import annotations

import gc
import json
import time
import warnings
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from functools import cached_property
from types import CodeType, TracebackType
from typing import Any

from torch import nn

from shapetrace.capture.names import op_names
from shapetrace.capture.parameters import summarize, summarize_roots
from shapetrace.capture.recorder import Recorder
from shapetrace.capture.records import ModuleCall, OpRecord, Summary, TensorMeta, TraceError, build
from shapetrace.capture.source import line_of, operator_at, source_line
from shapetrace.contracts.records import ContractCall, ContractViolation, UnresolvedHint
from shapetrace.contracts.session import ON_VIOLATION, ContractSession
from shapetrace.diagnose import Diagnostic, DiagnosticsView, Evidence, attach_note, collect_evidence, diagnose
from shapetrace.symbolic.job import Job, Progress, check_budget
from shapetrace.symbolic.result import Specialization, SymbolicResult, SymbolicStatus, skipped
from shapetrace.symbolic.spec import dims_option


class Trace:
    """The ops and module calls of one traced block, in order, and the error that ended it.

    Records are built from the recorder's raw tuples the first time they are read.
    """

    def __init__(self, recorder: Recorder, summary: Summary) -> None:
        self._recorder = recorder
        self.summary = summary
        self.error: TraceError | None = None
        self.finished = False
        self._evidence: Evidence | None = None  # live-object facts for diagnostics, taken at the end
        self.contracts: list[ContractViolation] = []  # violations, in the order found (docs/contracts.md)
        self.contract_warnings: list[UnresolvedHint] = []  # annotations that could not be checked
        self._contract_session: ContractSession | None = None
        self._symbolic_job: Job | None = None  # the symbolic pass to run when shapes are first read
        self._symbolic_result: SymbolicResult | None = None

    # --- records ----------------------------------------------------------------------------

    @cached_property
    def modules(self) -> list[ModuleCall]:
        """Every module call, in the order the calls began."""
        exprs = self._symbolic()
        with gc_paused():
            return self._build_modules(exprs)

    def _build_modules(self, exprs: SymbolicResult) -> list[ModuleCall]:
        calls = []
        for i, raw in enumerate(self._recorder.modules):
            (
                _,
                path,
                type_name,
                call,
                parent,
                depth,
                first_op,
                end_op,
                inputs,
                outputs,
                failed,
                code,
                lasti,
            ) = raw
            file, line = _site(code, lasti)
            calls.append(
                build(
                    ModuleCall,
                    index=i, path=path, type=type_name, call=call, parent=parent, depth=depth,
                    first_op=first_op, end_op=first_op if end_op is None else end_op,
                    inputs=_metas(inputs, exprs.module_inputs.get(i)),
                    outputs=_metas(outputs, exprs.module_outputs.get(i)), failed=failed,
                    file=file, line=line, code=source_line(file, line), lasti=lasti,
                )
            )  # fmt: skip
        return calls

    @cached_property
    def ops(self) -> list[OpRecord]:
        """Every torch-level op, in the order it ran."""
        modules = self.modules
        exprs = self._symbolic()
        with gc_paused():
            return self._build_ops(modules, exprs)

    def _build_ops(self, modules: list[ModuleCall], exprs: SymbolicResult) -> list[OpRecord]:
        records = []
        for i, (func, module_index, code, lasti, inputs, outputs, failed) in enumerate(self._recorder.ops):
            name, qualname = op_names(func)
            if code is not None:
                name = operator_at(code, lasti) or name
            file, line = _site(code, lasti)
            module = modules[module_index] if module_index is not None else None
            records.append(
                build(
                    OpRecord,
                    index=i, op=name, qualname=qualname,
                    module=module.path if module else None, module_call=module.call if module else None,
                    module_index=module_index, file=file, line=line, code=source_line(file, line),
                    inputs=_metas(inputs, exprs.op_inputs.get(i)), outputs=_metas(outputs, exprs.op_outputs.get(i)),
                    failed=failed, lasti=lasti,
                )
            )  # fmt: skip
        return records

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

    def _symbolic(self, progress: Progress | None = None) -> SymbolicResult:
        """The symbolic pass's result, run the first time it is needed (after the block ends);
        ``progress(done_ops, total_ops)`` hears how far it is (the CLI shows it)."""
        if self._symbolic_result is None:
            if self._symbolic_job is None:
                return skipped("the trace has not ended" if not self.finished else "the symbolic pass is off")
            job, self._symbolic_job = self._symbolic_job, None
            self._symbolic_result = job.run(progress)
        return self._symbolic_result

    def _attach_symbolic(self, job: Job | None, result: SymbolicResult | None = None) -> None:
        """Give the ended trace its symbolic pass to run (``job``) or its ``result``, else none;
        records are rebuilt with it."""
        self._symbolic_job = job
        if result is None and job is None:
            result = skipped("the symbolic pass is off")
        self._symbolic_result = result
        for name in ("ops", "modules"):
            self.__dict__.pop(name, None)

    def __len__(self) -> int:
        return len(self._recorder.ops)

    def __repr__(self) -> str:
        state = f", error={self.error.type}" if self.error else ""
        return f"<Trace {len(self)} ops, {len(self._recorder.modules)} module calls{state}>"

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
        from shapetrace.render.json import trace_to_dict

        return trace_to_dict(self)

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def table(self):
        """The trace as a rich table, read top to bottom."""
        from shapetrace.render.table import TraceTable

        return TraceTable(self)

    def __rich__(self):
        return self.table()

    def view(self, view: str | None = None, **options: Any):
        """The trace as ``"table"``, ``"tree"`` (module tree, repeated blocks folded) or ``"summary"``
        (torchinfo-style), with ``depth=``, ``module=``, ``op=``, ``changes=``, ``expand=``; without
        ``view``, the tree above 500 ops, else the table. Print it, or ``.save("trace.html")``
        (``.svg``, ``.md``, ``.txt``); see docs/views.md."""
        from shapetrace.render.views import make_view

        return make_view(self, view, **options)

    def tree(self, **options: Any):
        """The module tree: :meth:`view` ``("tree")``."""
        return self.view("tree", **options)

    def module_summary(self, **options: Any):
        """The torchinfo-style module summary: :meth:`view` ``("summary")``."""
        return self.view("summary", **options)

    def _repr_html_(self) -> str:
        """A notebook shows the trace as the HTML of :meth:`view`'s default view."""
        return self.view().to_html(page=False)

    def annotate(self):
        """The traced source with each line's output shape as an aligned ``# (B, C, H*W)``
        comment: ``str()`` of it is plain text, and rich prints it (see docs/comments.md)."""
        from shapetrace.comments import annotate

        return annotate(self)

    def print(self, console=None) -> None:
        """Print the table to ``console`` (a rich ``Console``; stdout by default)."""
        from rich.console import Console

        console = console or Console()
        console.print(self.table())
        if self.diagnostics:
            console.print(DiagnosticsView(self.diagnostics))

    # --- lifecycle --------------------------------------------------------------------------

    def _finish(self, exc: BaseException | None) -> None:
        recorder = self._recorder
        recorder.close_open_calls()
        if exc is not None:
            self.error = TraceError(_type_name(exc), str(exc), _failing_op_index(recorder, exc))
        self.finished = True
        if self.summary.model_type is None:  # traced without a model: the roots that hold parameters
            self.summary = summarize_roots(recorder.root_modules())
        for name in ("ops", "modules", "module_call_counts", "diagnostics"):
            self.__dict__.pop(name, None)
        self._evidence = collect_evidence(recorder)
        if exc is not None:
            attach_note(self, exc)


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
        dims: str | Mapping[str, str] | None = None,
        symbolic: bool = True,
        symbolic_budget: float | None = None,
        **sizes: int,
    ) -> None:
        self.dim_names = dims_option(dims, sizes)  # a bad spec raises here, before anything runs
        self.symbolic = symbolic
        self.symbolic_budget = check_budget(symbolic_budget)
        self._started = 0.0
        if on_violation not in ON_VIOLATION:
            raise ValueError(f"on_violation must be one of {', '.join(ON_VIOLATION)}, not {on_violation!r}")
        self.model = model
        self.contracts = list(contracts)  # functions checked besides annotated forwards
        self.on_violation = on_violation
        self._trace: Trace | None = None

    def __enter__(self) -> Trace:
        recorder = Recorder()
        recorder.keep_arguments = self.symbolic
        self._trace = Trace(recorder, _summarize(self.model))
        recorder.hook_modules(self.model)
        session = self._trace._contract_session = ContractSession(
            self.on_violation, recorder, self._trace.contracts, self._trace.contract_warnings
        )
        try:
            session.install(self.model, self.contracts)
            self._started = time.perf_counter()
            recorder.__enter__()
        except BaseException:
            session.remove()
            recorder.release()
            raise
        return self._trace

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        assert self._trace is not None, "trace.__exit__ without __enter__"
        trace = self._trace
        recorder = trace._recorder
        block_seconds = time.perf_counter() - self._started
        try:
            recorder.__exit__(None, None, None)
        finally:
            recorder.remove_hooks()  # nothing of ours stays installed, whatever happens below
            try:
                trace._contract_session.remove()
                trace._finish(exc)
                if trace.summary.extras.get("uninitialised"):  # lazy modules: counted once initialised
                    trace.summary = _summarize(self.model)
                job = Job.capture(recorder, self.dim_names, self.model, self.symbolic_budget, block_seconds)
                trace._attach_symbolic(job if self.symbolic else None)
            except Exception as error:  # a bug of ours must not replace the user's exception
                warnings.warn(
                    f"shapetrace could not finish this trace ({type(error).__name__}: {error}); "
                    "the ops recorded so far are kept",
                    RuntimeWarning,
                    stacklevel=2,
                )
            finally:
                recorder.release()
        return False


def _site(code: CodeType | None, lasti: int) -> tuple[str, int]:
    return (code.co_filename, line_of(code, lasti)) if code is not None else ("<unknown>", 0)


def _metas(raw: Any, exprs: tuple[tuple[str, str], ...] | None = None) -> tuple[TensorMeta, ...]:
    if exprs is None or len(exprs) != len(raw):
        return tuple([TensorMeta.from_raw(r) for r in raw])
    return tuple([TensorMeta.from_raw(r, *texts) for r, texts in zip(raw, exprs)])


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while records or diagnostics are built from a trace:
    they form no cycles, and each collection would rescan the whole growing trace (measured:
    records 2.5x, diagnostics 5.5x faster without it)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _summarize(model: nn.Module | None) -> Summary:
    return Summary() if model is None else summarize(model)  # per-module counts: the module summary


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
