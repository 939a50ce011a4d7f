"""What ``trace_shapes(model, x="B C H W", B=8, ...)`` runs: a trace from input *shapes* alone. The forward
runs once, on fake tensors whose sizes are the named symbols: no activation is allocated, and a
model built on the ``meta`` device (no weights in memory) traces as well as a real one."""

from __future__ import annotations

import dataclasses
import inspect
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from shapetrace.capture.names import op_names
from shapetrace.capture.recorder import Listener, Recorder
from shapetrace.capture.recording import site
from shapetrace.capture.records import ErrorRecord, TensorEntry
from shapetrace.symbolic.result import PARTIAL, RAN, SymbolicResult, SymbolicStatus
from shapetrace.symbolic.spec import DimsError, TensorSpec, check_size, parse_spec, spec_tokens

if TYPE_CHECKING:  # sympy is imported when a pass runs, not with shapetrace
    from shapetrace.symbolic.dims import Names, Shape


def run_on_specs(
    model: nn.Module, args: tuple, kwargs: dict[str, Any], listeners: tuple[Listener, ...] = ()
) -> tuple[Recorder, BaseException | None, Callable[[ErrorRecord | None], SymbolicResult]]:
    """Run ``model`` on fake tensors made from dims specs (``trace_shapes``, in shapetrace.trace,
    documents the arguments), under a recorder with these ``listeners``. Returns the recorder (its
    entries hold the sizes at the given values), the exception the forward raised, if any, and a
    function giving the pass's result once the trace's error record is made."""
    from shapetrace._private import torch_symbolic as ts  # torch's fake tensors: imported when used
    from shapetrace.symbolic.bridge import FakeRun, ReplayRecorder
    from shapetrace.symbolic.dims import Names
    from shapetrace.symbolic.effects import EffectGuard, StopReplay
    from shapetrace.symbolic.reuse import BlockReuse, Fingerprints, all_modules, model_groups

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
    recorder.listeners = listeners
    guard.position = run.position = recorder.ops.__len__  # the op running now: appended when it returns
    groups = model_groups(model, Fingerprints())
    reuse = BlockReuse(recorder, run.mode, lambda module, _: groups.get(id(module)))
    device = _device_of(model)
    error: BaseException | None = None

    def module_call(called: nn.Module, call_args: tuple, call_kwargs: dict) -> Any:
        caller = sys._getframe(1).f_back
        # the reuse bookkeeping is the pass's own; the recorder watches forward
        return guard.unwatched(reuse.call, called, call_args, call_kwargs,
                               lambda: ts.plain_call(called, call_args, call_kwargs), caller)  # fmt: skip

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
    return recorder, error, lambda trace_error: _result(recorder, run, names, shapes, trace_error, reuse.reused)


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

    def concrete(entries: tuple[TensorEntry, ...]) -> tuple[TensorEntry, ...]:
        out = []
        for entry in entries:
            sizes = sizes_of.get(id(entry.shape))
            if sizes is None:
                values = tuple(v if v is not None else "?" for v in (size_hint(s) for s in entry.shape))
                sizes = sizes_of[id(entry.shape)] = torch.Size(values) if all(isinstance(v, int) for v in values) else values
            new = entry._replace(shape=sizes)
            shapes[id(new)] = run.shape(entry.shape)
            out.append(new)
        return tuple(out)

    for i, op in enumerate(recorder.ops):
        recorder.ops[i] = op._replace(inputs=concrete(op.inputs), outputs=concrete(op.outputs))
    for i, call in enumerate(recorder.modules):
        recorder.modules[i] = call._replace(inputs=concrete(call.inputs), outputs=concrete(call.outputs))
    return shapes


def _result(
    recorder: Recorder, run: Any, names: Names, shapes: dict[int, Shape], error: ErrorRecord | None, reused: int
) -> SymbolicResult:
    from shapetrace.symbolic.dims import Context, Rendering
    from shapetrace.symbolic.engine import specialization

    outputs = [shapes[id(m)] for op in recorder.ops for m in op.outputs]
    kept = {s.name for shape in outputs for size in shape if size is not None and not isinstance(size, int)
            for s in size.free_symbols}  # fmt: skip
    standing = set(run.specialised) - kept
    context = Context(frozenset(set(names.values) - standing), frozenset(standing))
    rendering = Rendering.of(names, shapes.values())

    def texts(entries: tuple[TensorEntry, ...]) -> tuple[tuple[str, str], ...]:
        return tuple(rendering.shape(shapes[id(e)], e.shape, context) for e in entries)

    result = SymbolicResult(SymbolicStatus(RAN, symbolic_ops=len(recorder.ops)), dims=names.all)
    for j, op in enumerate(recorder.ops):
        result.op_inputs[j], result.op_outputs[j] = texts(op.inputs), texts(op.outputs)
    for i, call in enumerate(recorder.modules):
        result.module_inputs[i], result.module_outputs[i] = texts(call.inputs), texts(call.outputs)
    for rep in run.replacements:
        op = recorder.ops[rep.position] if rep.position is not None else None
        name = op_names(op.func)[0] if op is not None else None
        file, line = site(op.code, op.lasti) if op is not None and op.code else (rep.file, rep.line)
        result.specializations.append(specialization(run, rep, names.all[rep.name], name, rep.position, file, line))
    if error is not None:
        where = f" at op {error.op_index}" if error.op_index is not None else ""
        reason = f"the forward raised {error.type}{where}: {error.message.splitlines()[0][:160]}"
        result.status = SymbolicStatus(PARTIAL, reason, len(recorder.ops))
    result.status = dataclasses.replace(result.status, divisible=rendering.divisible, reused_calls=reused)
    return result
