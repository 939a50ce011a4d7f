"""``trace()``: the context manager users reach for, and ``Trace``: what it recorded."""

from __future__ import annotations

import json
from collections import Counter
from functools import cached_property
from types import CodeType, TracebackType
from typing import Any

from torch import nn

from shapetrace.capture.names import op_names
from shapetrace.capture.recorder import Recorder
from shapetrace.capture.records import ModuleCall, OpRecord, Summary, TensorMeta, TraceError
from shapetrace.capture.source import line_of, operator_at, source_line


class Trace:
    """The ops and module calls of one traced block, in order, and the error that ended it.

    Records are built from the recorder's raw tuples the first time they are read.
    """

    def __init__(self, recorder: Recorder, summary: Summary) -> None:
        self._recorder = recorder
        self.summary = summary
        self.error: TraceError | None = None
        self.finished = False

    # --- records ----------------------------------------------------------------------------

    @cached_property
    def modules(self) -> list[ModuleCall]:
        """Every module call, in the order the calls began."""
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
                ModuleCall(
                    index=i, path=path, type=type_name, call=call, parent=parent, depth=depth,
                    first_op=first_op, end_op=first_op if end_op is None else end_op,
                    inputs=_metas(inputs), outputs=_metas(outputs), failed=failed,
                    file=file, line=line, code=source_line(file, line),
                )
            )  # fmt: skip
        return calls

    @cached_property
    def ops(self) -> list[OpRecord]:
        """Every torch-level op, in the order it ran."""
        modules = self.modules
        records = []
        for i, (func, module_index, code, lasti, inputs, outputs, failed) in enumerate(self._recorder.ops):
            name, qualname = op_names(func)
            if code is not None:
                name = operator_at(code, lasti) or name
            file, line = _site(code, lasti)
            module = modules[module_index] if module_index is not None else None
            records.append(
                OpRecord(
                    index=i, op=name, qualname=qualname,
                    module=module.path if module else None, module_call=module.call if module else None,
                    module_index=module_index, file=file, line=line, code=source_line(file, line),
                    inputs=_metas(inputs), outputs=_metas(outputs), failed=failed,
                )
            )  # fmt: skip
        return records

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

    def print(self, console=None) -> None:
        """Print the table to ``console`` (a rich ``Console``; stdout by default)."""
        from rich.console import Console

        (console or Console()).print(self.table())

    # --- lifecycle --------------------------------------------------------------------------

    def _finish(self, exc: BaseException | None) -> None:
        recorder = self._recorder
        recorder.close_open_calls()
        if exc is not None:
            self.error = TraceError(_type_name(exc), str(exc), _failing_op_index(recorder, exc))
        self.finished = True
        for name in ("ops", "modules", "module_call_counts"):
            self.__dict__.pop(name, None)


class trace:
    """Record every torch-level op and module call made inside the block.

    >>> with trace(model) as t:
    ...     y = model(x)
    >>> t.print()

    With ``model``, its submodules are hooked and named as in ``model.named_modules()``;
    without, every module called in the block is hooked. Everything installed is removed on
    exit, also when the block raises; the exception reaches the caller unchanged.
    """

    def __init__(self, model: nn.Module | None = None) -> None:
        self.model = model
        self._trace: Trace | None = None

    def __enter__(self) -> Trace:
        recorder = Recorder()
        self._trace = Trace(recorder, _summarize(self.model))
        recorder.hook_modules(self.model)
        try:
            recorder.__enter__()
        except BaseException:
            recorder.release()
            raise
        return self._trace

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool:
        assert self._trace is not None, "trace.__exit__ without __enter__"
        recorder = self._trace._recorder
        try:
            recorder.__exit__(None, None, None)
        finally:
            self._trace._finish(exc)
            recorder.release()
        return False


def _site(code: CodeType | None, lasti: int) -> tuple[str, int]:
    return (code.co_filename, line_of(code, lasti)) if code is not None else ("<unknown>", 0)


def _metas(raw: Any) -> tuple[TensorMeta, ...]:
    return tuple(TensorMeta.from_raw(r) for r in raw)


def _summarize(model: nn.Module | None) -> Summary:
    if model is None:
        return Summary()
    return Summary(type(model).__name__, sum(p.numel() for p in model.parameters()))


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
