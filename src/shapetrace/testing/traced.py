"""One traced call and one-line assertions on the shapes it produced."""

from __future__ import annotations

import dataclasses
import inspect
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from torch import nn

from shapetrace.capture.records import OpRecord, TensorMeta, iter_tensors, tensor_entry
from shapetrace.capture.source import code_without_comment, display_path, source_line
from shapetrace.symbolic.spec import dims_option
from shapetrace.testing.comment_checks import check_trace_comments
from shapetrace.testing.expected import (
    ActualShape,
    ExpectedShape,
    Scope,
    ShapeMismatch,
    match,
    parse_expected,
)
from shapetrace.trace import Trace, trace

Expected = str | Sequence[int | str]
Dims = str | Mapping[str, str] | None
MAX_LISTED = 5  # failing calls shown in one message


@dataclasses.dataclass(frozen=True)
class _Subject:
    """One thing an assertion checks: its tensors, where they were made, and a title."""

    title: str
    metas: tuple[TensorMeta, ...]
    file: str = ""
    line: int = 0
    code: str = ""
    module: str = ""


class TracedCall:
    """A call traced by :func:`trace_call` (or the ``shapes`` fixture): ``output`` is what it
    returned, ``trace`` the :class:`~shapetrace.Trace`, ``dims`` the named dims' sizes.

    Each ``assert_*`` takes the expected shape as a tuple text (``"(B, H*W, C)"``), a dims spec
    (``"B N D"``) or a sequence (``(2, 17, 512)``) -- see :mod:`shapetrace.testing.expected` --
    and raises :class:`ShapeMismatch` with expected and actual shapes and the source line.
    """

    def __init__(self, recorded: Trace, output: Any = None, model: Any = None) -> None:
        self.trace = recorded
        self.output = output
        self.model = model

    def __repr__(self) -> str:
        return f"<TracedCall of {self.label}: {self.trace!r}>"

    @property
    def label(self) -> str:
        """The traced callable's name: the model's class or the function's name."""
        return _label(self.model)

    @property
    def dims(self) -> dict[str, int]:
        """The named dims and constants of the trace at this run (``{"B": 2, "H": 64}``)."""
        return self.trace.dims

    # --- assertions ---------------------------------------------------------------------------

    def assert_output(self, *expected: Expected, at: str | None = None) -> None:
        """The call's output: one expectation for each tensor in it (in the order of
        :func:`~shapetrace.capture.records.iter_tensors`), or one for the tensor at path ``at``
        (``"[0]"``, ``".logits"``, ``"['hidden']"``)."""
        __tracebackhide__ = True
        metas = self.output_metas()
        if at is not None:
            chosen = tuple(meta for meta in metas if meta.path == at)
            if not chosen:
                paths = ", ".join(repr(meta.path) for meta in metas) or "none"
                raise ShapeMismatch(f"the output has no tensor at {at!r}; its tensor paths: {paths}")
            metas = chosen
        producer = self._producer(metas[0].tensor_id) if len(metas) == 1 else None
        subject = _Subject(
            f"output of {self.label}" + (f" at {at}" if at else ""), metas,
            *(self._site(producer) if producer else ("", 0, "", "")),
        )  # fmt: skip
        self._check([subject], expected, f"output of {self.label}")

    def assert_op(
        self, name: str, *expected: Expected, nth: int | None = None, module: str | None = None
    ) -> None:
        """Every op named ``name`` (as the trace names it: ``cat``, ``linear``, ``+``, ``@``,
        or its qualified name ``torch.cat``) -- or only the ``nth`` of them (from 0; negative
        counts from the end), and only those run inside ``module`` and its submodules."""
        __tracebackhide__ = True
        ops = [op for op in self.trace.ops if name in (op.op, op.qualname)]
        if module is not None:
            ops = [op for op in ops if _within(op.module, module)]
        what = f"op {name!r}" + (f" in {module!r}" if module is not None else "")
        if not ops:
            ran = ", ".join(dict.fromkeys(op.op for op in self.trace.ops)) or "none"
            raise ShapeMismatch(f"no {what} ran in the traced call of {self.label}; ops that ran: {ran}")
        ops = _pick(ops, nth, what)
        subjects = [
            _Subject(f"{what} (op {op.index})", op.outputs, *self._site(op))
            for op in ops
        ]  # fmt: skip
        self._check(subjects, expected, what)

    def assert_module(self, path: str, *expected: Expected, call: int | None = None) -> None:
        """The output of module ``path`` (as in ``model.named_modules()``, ``""`` for the
        model itself): every call of it, or call number ``call`` (from 1)."""
        __tracebackhide__ = True
        calls = [m for m in self.trace.modules if m.path == path]
        what = f"module {path or self.label!r}"
        if not calls:
            known = ", ".join(repr(p) for p in dict.fromkeys(m.path for m in self.trace.modules)) or "none"
            raise ShapeMismatch(f"{what} was not called in the traced call; modules called: {known}")
        if call is not None:
            calls = [m for m in calls if m.call == call]
            if not calls:
                raise ShapeMismatch(f"{what} has no call {call}")
        subjects = [
            _Subject(
                f"output of {what} (call {m.call})", m.outputs, m.file, m.line, m.code,
                self.trace.module_label(m.parent) if m.parent is not None else "",
            )
            for m in calls
        ]  # fmt: skip
        self._check(subjects, expected, f"output of {what}")

    def assert_line(self, line: int | str, *expected: Expected, file: str | None = None) -> None:
        """What a source line of the user's files produced, as its shape comment says it (and
        ``shapetrace --check`` reads it: docs/comments.md): the tensors its ops, module calls and
        the functions it called made and did not consume themselves; a ``forward``'s only
        ``return``, the module's output. ``line`` is a line number, or text that appears in
        exactly one traced line (``"torch.cat("``); ``file`` (a path or its end,
        ``"patch_embed.py"``) is needed only when that is ambiguous."""
        __tracebackhide__ = True
        from shapetrace.comments.files import runs_by_line

        runs = runs_by_line(self.trace)
        site = self._find_line(line, file, list(runs))
        subjects = [
            _Subject(
                f"line {display_path(site[0])}:{site[1]}" + (f" (run {i + 1})" if len(runs[site]) > 1 else ""),
                run.outputs, site[0], site[1], source_line(*site),
                self.trace.module_label(run.context) if run.context is not None else "",
            )
            for i, run in enumerate(runs[site])
            if run.outputs
        ]  # fmt: skip
        if not subjects:
            raise ShapeMismatch(f"line {display_path(site[0])}:{site[1]} produced no tensor")
        self._check(subjects, expected, f"line {display_path(site[0])}:{site[1]}")

    def assert_comments(self, strict: bool = False) -> None:
        """The ``# (B, C, H*W)`` shape comments of the files the call ran through agree with
        what ran (as ``shapetrace --check`` compares them; see :func:`assert_shape_comments`)."""
        __tracebackhide__ = True
        check_trace_comments(self.trace, f"the traced call of {self.label}", strict)

    # --- reading the trace -------------------------------------------------------------------

    def output_metas(self) -> tuple[TensorMeta, ...]:
        """The tensors of the output, with their symbolic shapes where the trace has them."""
        root = self._root_call()
        by_path = {meta.path: meta for meta in root.outputs} if root is not None else {}
        metas = []
        for path, tensor in iter_tensors(self.output):
            meta = by_path.get(path)
            if meta is None or meta.tensor_id != id(tensor):
                producer = self._producer(id(tensor))
                found = (
                    next((m for m in producer.outputs if m.tensor_id == id(tensor)), None)
                    if producer
                    else None
                )
                meta = found or TensorMeta.from_entry(tensor_entry(tensor))
            metas.append(dataclasses.replace(meta, path=path))
        return tuple(metas)

    def _site(self, op: OpRecord) -> tuple[str, int, str, str]:
        return op.file, op.line, op.code, self.trace.module_label(op.module_index)

    def _root_call(self):
        roots = [m for m in self.trace.modules if m.parent is None and m.path == ""]
        return roots[-1] if roots and isinstance(self.model, nn.Module) else None

    def _producer(self, tensor_id: int) -> OpRecord | None:
        """The latest op that output the tensor (a live tensor's id is its own)."""
        for op in reversed(self.trace.ops):
            if any(meta.tensor_id == tensor_id for meta in op.outputs):
                return op
        return None

    def _find_line(self, line: int | str, file: str | None, sites: list[tuple[str, int]]) -> tuple[str, int]:
        if file is not None:
            sites = [site for site in sites if _same_file(site[0], file)]
        if isinstance(line, int):
            found = [site for site in sites if site[1] == line]
            if len(found) > 1:
                preferred = _model_file(self.model)
                found = [
                    site for site in found if preferred and os.path.samefile(site[0], preferred)
                ] or found
        else:
            found = [site for site in sites if line in source_line(*site)]
        if len(found) == 1:
            return found[0]
        where = f" of {file}" if file else ""
        if not found:
            raise ShapeMismatch(f"no traced line{where} is {line!r}; traced lines:\n{_list_sites(sites)}")
        raise ShapeMismatch(
            f"{line!r} matches several traced lines; pass file= or more text:\n{_list_sites(found)}"
        )

    # --- checking -----------------------------------------------------------------------------

    def _check(self, subjects: list[_Subject], expected: tuple[Expected, ...], what: str) -> None:
        __tracebackhide__ = True
        if not expected:
            raise TypeError(f"assert on {what}: give the expected shape")
        shapes = [parse_expected(e) for e in expected]
        failures = []
        for subject in subjects:
            problems = _problems(subject, shapes, self.dims)
            if problems:
                failures.append((subject, problems))
        if failures:
            raise ShapeMismatch(self._message(what, shapes, subjects, failures))

    def _message(
        self, what: str, shapes: list[ExpectedShape], subjects: list[_Subject], failures: list
    ) -> str:
        count = f" ({len(failures)} of {len(subjects)})" if len(subjects) > 1 else ""
        lines = [f"shape of {what} does not match{count}"]
        for subject, problems in failures[:MAX_LISTED]:
            if len(subjects) > 1:
                lines.append(f"{subject.title}:")
            lines.append("  expected " + ", ".join(shape.text for shape in shapes))
            actual = [ActualShape.of(meta) for meta in subject.metas]
            lines.append("  actual   " + ", ".join(a.text for a in actual) + _sizes_note(actual))
            lines.extend(f"  {problem}" for problem in problems)
            if subject.file:
                module = f" in {subject.module}" if subject.module else ""
                lines.append(f"  at {display_path(subject.file)}:{subject.line}{module}")
                if subject.code:
                    lines.append(f"      {code_without_comment(subject.code)}")
        if len(failures) > MAX_LISTED:
            lines.append(f"... and {len(failures) - MAX_LISTED} more")
        if self.dims:
            lines.append("dims: " + ", ".join(f"{name}={size}" for name, size in self.dims.items()))
        return "\n".join(lines)


def _problems(subject: _Subject, shapes: list[ExpectedShape], dims: dict[str, int]) -> list[str]:
    metas = subject.metas
    if not metas:
        return ["produced no tensor"]
    if len(shapes) == 1 and len(metas) > 1:
        shapes = shapes * len(metas)  # one expectation for each of several tensors
    if len(shapes) != len(metas):
        return [f"{len(shapes)} expected shapes for {len(metas)} tensors"]
    scope = Scope(dims)  # one binding scope for the tensors of one op, run or output
    problems = []
    for i, (shape, meta) in enumerate(zip(shapes, metas)):
        label = f"{meta.path or f'[{i}]'} " if len(metas) > 1 else ""
        problems.extend(match(shape, ActualShape.of(meta), scope, label))
    return problems


def _sizes_note(actual: list[ActualShape]) -> str:
    if not any(a.is_symbolic for a in actual):
        return ""
    return "  = " + ", ".join(a.sizes_text for a in actual) + " here"


def _pick(records: list, nth: int | None, what: str) -> list:
    if nth is None:
        return records
    try:
        return [records[nth]]
    except IndexError:
        raise ShapeMismatch(f"nth={nth}, but {what} ran {len(records)} times") from None


def _within(path: str | None, module: str) -> bool:
    path = path or ""
    return module == "" or path == module or path.startswith(module + ".")


def _same_file(path: str, wanted: str) -> bool:
    """``wanted`` names ``path``: the same file, or the end of its path (``"patch_embed.py"``)."""
    path, wanted = os.path.normpath(path), os.path.normpath(wanted)
    return path == os.path.abspath(wanted) or path.endswith(os.sep + wanted.lstrip(os.sep))


def _list_sites(sites: list[tuple[str, int]]) -> str:
    shown = sorted(sites)[:30]
    text = "\n".join(f"  {display_path(file)}:{line}: {source_line(file, line)}" for file, line in shown)
    return text + ("\n  ..." if len(sites) > len(shown) else "") if sites else "  (none)"


def _model_file(model: Any) -> str | None:
    target = type(model).forward if isinstance(model, nn.Module) else model
    try:
        return inspect.getsourcefile(inspect.unwrap(target))
    except (TypeError, OSError):
        return None


def _label(model: Any) -> str:
    if isinstance(model, nn.Module):
        return type(model).__name__
    return getattr(model, "__qualname__", None) or type(model).__name__


# --- running a call under a trace ----------------------------------------------------------------


@contextmanager
def traced(
    model: nn.Module | None = None,
    dims: Dims = None,
    sizes: Mapping[str, int] | None = None,
    on_violation: str = "raise",
    on_start: Callable[[Trace], None] | None = None,
) -> Iterator[TracedCall]:
    """``with traced(model, dims="B C H W") as t: ...``: the block under
    :func:`shapetrace.trace` (``dims`` and the named ``sizes`` as it takes them); ``t`` is a
    :class:`TracedCall` whose ``output`` the block may set. ``on_start`` gets the trace before
    the block runs (the pytest plugin keeps it to attach it to a failing test's report)."""
    __tracebackhide__ = True
    with trace(model, on_violation=on_violation, dims=dims_option(dims, sizes or {})) as recorded:
        if on_start is not None:
            on_start(recorded)
        yield TracedCall(recorded, model=model)


def trace_call(
    fn: Callable,
    *args: Any,
    dims: Dims = None,
    sizes: Mapping[str, int] | None = None,
    on_violation: str = "raise",
    **kwargs: Any,
) -> TracedCall:
    """``fn(*args, **kwargs)`` under a trace: ``trace_call(model, x, dims="B C H W")``.

    ``fn`` is a module (its submodules are named as in ``named_modules()``) or any callable.
    ``dims`` names the input dims and ``sizes`` names constants (``{"D": 512}``), as
    :func:`shapetrace.trace` takes them. Contract violations raise by default
    (``on_violation``). An exception from the call reaches the caller unchanged.
    """
    __tracebackhide__ = True
    return _run(fn, args, kwargs, dims, sizes, on_violation, None)


def _run(
    fn: Callable,
    args: tuple,
    kwargs: dict,
    dims: Dims,
    sizes: Mapping[str, int] | None,
    on_violation: str,
    on_start: Callable[[Trace], None] | None,
) -> TracedCall:
    __tracebackhide__ = True
    model = fn if isinstance(fn, nn.Module) else None
    with traced(model, dims, sizes, on_violation, on_start) as call:
        call.output = fn(*args, **kwargs)
    call.model = fn
    return call
