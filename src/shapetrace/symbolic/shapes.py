"""``trace_shapes(model, x="B C H W", B=8, ...)``: a trace from input *shapes* alone. The forward
runs once, on fake tensors whose sizes are the named symbols: no activation is allocated, and a
model built on the ``meta`` device (no weights in memory) traces as well as a real one."""

from __future__ import annotations

import inspect
import sys
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from shapetrace.symbolic.result import PARTIAL, RAN, SymbolicResult, SymbolicStatus
from shapetrace.symbolic.spec import DimsError, TensorSpec, check_size, parse_spec, spec_tokens

if TYPE_CHECKING:  # sympy is imported when a pass runs, not with shapetrace
    from shapetrace.symbolic.dims import Names, Shape


def trace_shapes(model: nn.Module, /, *args: Any, **kwargs: Any):
    """Trace ``model(*args, **kwargs)`` with tensors given by their dims, on fake tensors.

    >>> t = trace_shapes(model, x="B C H W", B=8, C=3, H=128, W=128)
    >>> t.print()

    An argument of ``forward`` (by position or by name) may be a dims spec (``"B C H W"``: a
    tensor of the default dtype on the model's device), a :class:`TensorSpec` (``TensorSpec("B T",
    dtype=torch.long)``), a tensor (its sizes, unnamed), or any other value (passed as is). Other
    keyword arguments give sizes: every dim a spec names needs one; the rest are named constants.
    Returns the :class:`~shapetrace.Trace`, its shapes at these sizes and as expressions; if the
    forward raises, the trace ends there and ``Trace.error`` says why (nothing is raised).
    """
    from shapetrace._private import torch_symbolic as ts
    from shapetrace.symbolic.bridge import FakeRun, ReplayRecorder
    from shapetrace.symbolic.dims import Names
    from shapetrace.symbolic.effects import EffectGuard, StopReplay
    from shapetrace.symbolic.reuse import BlockReuse, Fingerprints, all_modules, model_groups
    from shapetrace.trace import Trace, _summarize

    parameters = inspect.signature(model.forward).parameters
    arguments = {name: value for name, value in kwargs.items() if name in parameters}
    sizes = {name: check_size(name, value) for name, value in kwargs.items() if name not in parameters}
    specs = [(f"argument {i}", value) for i, value in enumerate(args)] + list(arguments.items())
    names = Names()
    used: dict[str, None] = {}  # in order of appearance
    parsed: dict[int, tuple[Any, list[str | int]]] = {}
    for where, value in specs:
        spec = value.dims if isinstance(value, TensorSpec) else value if isinstance(value, str) else None
        if spec is None:
            continue
        dims = [int(t) if t.isdigit() else t for t in spec_tokens(spec)]
        parse_spec(spec)  # the same rules as dims=: names, numbers, no expressions
        if any(d in ("_", "...", "*") for d in dims):
            raise DimsError(f"{where}: {spec!r}: trace_shapes needs every dim, as a name or a number")
        missing = [d for d in dims if isinstance(d, str) and d not in sizes]
        if missing:
            raise DimsError(f"{where}: {spec!r} names {', '.join(missing)}: give each a size, e.g. {missing[0]}=8")
        used.update(dict.fromkeys(d for d in dims if isinstance(d, str)))
        parsed[id(value)] = (value, dims)
    names.constants = {name: size for name, size in sizes.items() if name not in used}
    for name in used:
        names.bind(name, sizes[name], "in trace_shapes")

    run = FakeRun(names)
    guard = EffectGuard(list(all_modules(model)))
    recorder = ReplayRecorder(run, guard)
    traced = Trace(recorder, _summarize(model))
    guard.position = lambda: len(recorder.ops)
    run.position = lambda: len(recorder.ops) - 1 if recorder.ops else None
    groups = model_groups(model, Fingerprints())
    reuse = BlockReuse(recorder, run.mode, lambda module, _: groups.get(id(module)))
    device = _device_of(model)
    error: BaseException | None = None

    def module_call(called: nn.Module, call_args: tuple, call_kwargs: dict) -> Any:
        caller = sys._getframe(1).f_back
        return reuse.call(called, call_args, call_kwargs, lambda: ts.plain_call(called, call_args, call_kwargs), caller)

    with run.running(torch.is_grad_enabled()):

        def make(value: Any) -> Any:
            found = parsed.get(id(value))
            if found is None:
                if isinstance(value, torch.Tensor):
                    return run.tensor(tuple(value.shape), tuple(value.shape), value.dtype, value.device)
                return value
            spec, dim_names = found
            shape = tuple(_symbol_or_size(names, n) for n in dim_names)
            concrete = tuple(n if isinstance(n, int) else names.all[n] for n in dim_names)
            dtype = getattr(spec, "dtype", None) or torch.get_default_dtype()
            where = getattr(spec, "device", None) or device
            return run.tensor(shape, concrete, dtype, torch.device(where), getattr(spec, "requires_grad", False))

        call_args = [make(value) for value in args]
        call_kwargs = {name: make(value) for name, value in arguments.items()}
        recorder.hook_modules(model)
        try:
            with ts.module_calls_through(module_call), guard.watching(), recorder:
                model(*call_args, **call_kwargs)
        except (Exception, StopReplay) as raised:
            error = raised
        finally:
            recorder.close_open_calls()
        if guard.effect is not None:
            error = guard.effect
        shapes = _concretize(recorder, run)
    try:
        traced._finish(error)
    finally:
        recorder.release()
    traced._attach_symbolic(None, _result(recorder, run, names, shapes, traced, reuse.reused))
    return traced


def _symbol_or_size(names: Names, name: str | int) -> Any:
    from shapetrace.symbolic.dims import symbol

    if isinstance(name, int):
        return name
    value = names.all[name]
    return value if value in (0, 1) else symbol(name)


def _device_of(model: nn.Module) -> torch.device:
    for tensor in (*model.parameters(), *model.buffers()):
        return tensor.device
    return torch.device("cpu")


def _concretize(recorder: Any, run: Any) -> dict[int, Shape]:
    """Turn every recorded (symbolic) size into its value at the given sizes, in place, and keep
    the canonical shapes by ``id()`` of the raw meta they came from."""
    from shapetrace._private.torch_symbolic import size_hint

    shapes: dict[int, Shape] = {}
    sizes_of: dict[int, Any] = {}  # id(symbolic sizes) -> concrete sizes (a repeated block shares them)

    def concrete(metas: list) -> list:
        out = []
        for meta in metas:
            sizes = sizes_of.get(id(meta[0]))
            if sizes is None:
                values = tuple(v if v is not None else "?" for v in (size_hint(s) for s in meta[0]))
                sizes = sizes_of[id(meta[0])] = torch.Size(values) if all(isinstance(v, int) for v in values) else values
            new = (sizes, *meta[1:])
            shapes[id(new)] = run.shape(meta[0])
            out.append(new)
        return out

    for entry in recorder.ops:
        entry[4] = concrete(entry[4])
        entry[5] = concrete(entry[5])
    for call in recorder.modules:
        call[8] = concrete(call[8])
        call[9] = concrete(call[9])
    return shapes


def _result(recorder: Any, run: Any, names: Names, shapes: dict[int, Shape], traced: Any,
            reused: int) -> SymbolicResult:  # fmt: skip
    from shapetrace.capture.names import op_names
    from shapetrace.capture.source import line_of
    from shapetrace.symbolic.dims import make_context, render
    from shapetrace.symbolic.engine import specialization

    context = make_context(names, run.specialised, names.values)
    rendered: dict[tuple, str] = {}

    def text(shape: Shape, sizes: Any) -> str:
        key = (shape, tuple(sizes))
        found = rendered.get(key)
        if found is None:
            found = rendered[key] = render(shape, sizes, names, context)
        return found

    def texts(metas: list) -> tuple[str | None, ...]:
        return tuple(text(shapes[id(m)], m[0]) for m in metas)

    result = SymbolicResult(SymbolicStatus(RAN, symbolic_ops=len(recorder.ops), reused_calls=reused), dims=names.all)
    for j, entry in enumerate(recorder.ops):
        result.op_inputs[j], result.op_outputs[j] = texts(entry[4]), texts(entry[5])
    for i, call in enumerate(recorder.modules):
        result.module_inputs[i], result.module_outputs[i] = texts(call[8]), texts(call[9])
    for rep in run.replacements:
        op = recorder.ops[rep.position] if rep.position is not None else None
        name = op_names(op[0])[0] if op is not None else None
        file, line = (op[2].co_filename, line_of(op[2], op[3])) if op is not None and op[2] else (rep.file, rep.line)
        result.specializations.append(specialization(run, rep, names.all[rep.name], name, rep.position, file, line))
    if traced.error is not None:
        where = f" at op {traced.error.op_index}" if traced.error.op_index is not None else ""
        reason = f"the forward raised {traced.error.type}{where}: {traced.error.message.splitlines()[0][:160]}"
        result.status = SymbolicStatus(PARTIAL, reason, len(recorder.ops), reused_calls=reused)
    return result
