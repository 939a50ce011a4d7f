"""The symbolic pass over a finished trace: the traced block is replayed, event by event, on fake
tensors whose sizes are symbols named after the user's dims; nothing of the user's script runs
again except the ``forward`` of each root module call (see docs/symbolic.md, "How it runs").

Events, in the order they happened:
- an op outside any module call is repeated alone from its recorded arguments (plain values;
  tensors become fakes shaped by what produced them). A factory call whose sizes are variables,
  ``torch.rand(B, C, H, W)``, makes a tensor whose dims are named after them;
- a root module call runs ``forward`` again on fakes, under a :class:`ReplayRecorder`, so that
  its ops line up one to one with the concrete ones (same function, same call site, same sizes
  at the traced values); the first op that does not line up, or raises, ends the symbolic part
  of the call. The effect guard stops the call where it would do something observable
  (:mod:`.effects`), and a block identical to one already replayed is not run again
  (:mod:`.reuse`).

The pass has a time budget; past it, the events not yet reached keep their concrete sizes.
Every op whose sizes the pass could not compute keeps its concrete sizes, named by value only
where one name fits (``B?``).
"""

from __future__ import annotations

import bisect
import inspect
import os
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import sympy
import torch
from torch import nn

from shapetrace._private import torch_symbolic as ts
from shapetrace.capture.names import op_names
from shapetrace.capture.source import line_of, source_line
from shapetrace.symbolic.bridge import OUT_OF_TIME, FakeRun, Replacement, ReplayRecorder
from shapetrace.symbolic.dims import Context, Names, Shape, make_context, render, render_by_value
from shapetrace.symbolic.effects import EffectGuard, StopReplay, kept_apart
from shapetrace.symbolic.job import Job, Progress
from shapetrace.symbolic.naming import factory_dim_names, forward_dim_specs, is_factory
from shapetrace.symbolic.printer import expr_text
from shapetrace.symbolic.result import (
    FAILED,
    PARTIAL,
    RAN,
    Specialization,
    SymbolicResult,
    SymbolicStatus,
)
from shapetrace.symbolic.reuse import BlockReuse, Fingerprints, all_modules, concrete_groups
from shapetrace.symbolic.skeleton import TensorRef, TensorSlot, has_opaque, rebuild, slots
from shapetrace.symbolic.spec import DimSpec

# Raw layouts: see capture/recorder.py.
_OP_FUNC, _OP_MODULE, _OP_CODE, _OP_LASTI, _OP_INPUTS, _OP_OUTPUTS, _OP_FAILED = 0, 1, 2, 3, 4, 5, 6
_CALL_PATH, _CALL_TYPE, _CALL_PARENT, _CALL_FIRST, _CALL_END, _CALL_INPUTS, _CALL_OUTPUTS, _CALL_FAILED = 1, 2, 4, 6, 7, 8, 9, 10
_CALL_CODE, _CALL_LASTI = 11, 12

# Functions torch calls on SymInts/SymFloats only (a concrete run never records them).
SYMBOLIC_ONLY = frozenset(
    getattr(torch, name) for name in dir(torch) if name.startswith("sym_") and callable(getattr(torch, name))
)

PROGRESS_EVERY = 0.1  # seconds between progress reports


def run_pass(job: Job, progress: Progress | None = None) -> SymbolicResult:
    """The symbolic result of a finished trace; never raises (a failure is the result's status).
    Torch's symbolic machinery is imported before the budget's clock starts."""
    try:
        with ts.isolated(), kept_apart():  # another trace records nothing; torch's log records dropped too
            ts.warm_up()  # the first pass in a process imports torch._dynamo and fills torch's tables: seconds
            return _Replay(job, progress).run()
    except Exception as error:  # a failure here must not cost the user the concrete trace
        return SymbolicResult(SymbolicStatus(FAILED, f"{type(error).__name__}: {_short(error)}"))


@dataclass
class _CallResult:
    """A root call's symbolic part, kept to reuse for later calls with the same arguments."""

    aligned: int
    ops: list[tuple[list, list] | None] = field(default_factory=list)  # per aligned op: (inputs, outputs)
    calls: dict[int, tuple] = field(default_factory=dict)  # position -> (type, op span, inputs, outputs)
    outputs: dict[str, Shape] = field(default_factory=dict)  # root call outputs by path
    context: Context = field(default_factory=Context)
    reason: str = ""
    signature: tuple = ()
    out_of_time: bool = False
    concrete_of: list[int] = field(default_factory=list)  # fake position -> concrete position (see _read_call)
    skipped: dict[int, str] = field(default_factory=dict)  # concrete position -> why it has no symbolic sizes


class _Replay:
    def __init__(self, job: Job, progress: Progress | None = None) -> None:
        self.job = job
        self.progress = progress
        self.started = time.perf_counter()
        self.deadline = self.started + job.seconds
        self.out_of_time = False
        self.fingerprints = Fingerprints()
        self.reused_calls = 0
        self._reported = 0.0
        self._rendered: dict[tuple, str] = {}
        self._values: dict[sympy.Expr, int | None] = {}  # names are bound before any value is asked
        self.names = Names(constants=dict(job.option.sizes))
        self.by_id: dict[int, Shape] = {}  # tensor id -> canonical shape of its latest producer
        self.op_in: dict[int, list[Shape | None]] = {}
        self.op_out: dict[int, list[Shape | None]] = {}
        self.call_in: dict[int, list[Shape | None]] = {}
        self.call_out: dict[int, list[Shape | None]] = {}
        self.contexts: dict[int, Context] = {}  # op index -> naming context
        self.call_contexts: dict[int, Context] = {}
        self.fallback: dict[int, str] = {}  # op index -> why it has no symbolic sizes
        self.reason = ""
        self.specializations: list[Specialization] = []
        self._op_cache: dict[Any, tuple[list[Shape], Context]] = {}
        self._call_cache: dict[Any, _CallResult] = {}

    # --- the walk ------------------------------------------------------------------------------

    def run(self) -> SymbolicResult:
        ops, modules = self.job.ops, self.job.modules
        roots = [i for i, raw in enumerate(modules) if raw[_CALL_PARENT] is None]
        events = [((modules[r][_CALL_FIRST], 0), r) for r in roots]
        events += [((j, 1), j) for j, raw in enumerate(ops) if raw[1] is None]
        events.sort(key=lambda event: event[0])
        ends = {r: (roots[k + 1] if k + 1 < len(roots) else len(modules)) for k, r in enumerate(roots)}
        for (first, kind), index in events:
            if time.perf_counter() > self.deadline:
                self.out_of_time = True
            self._report(first)
            if kind == 0:
                self._root_call(index, ends[index])
            else:
                self._top_op(index)
        self._report(len(ops))
        return self._result()

    def _report(self, done: int) -> None:
        """Tell ``progress`` how far the pass is (at most every PROGRESS_EVERY seconds)."""
        if self.progress is None:
            return
        now = time.perf_counter()
        if now - self._reported >= PROGRESS_EVERY or done >= len(self.job.ops):
            self._reported = now
            self.progress(done, len(self.job.ops))

    def _budget_reason(self) -> str:
        return (f"the symbolic pass stopped at its budget of {self.job.seconds:.3g} s "
                f"(symbolic_budget=, --symbolic-budget)")  # fmt: skip

    # --- tensors between events --------------------------------------------------------------

    def _known(self, tensor_id: int, concrete: Iterable[int]) -> Shape:
        """The canonical shape of a tensor the replay made before (checked against its sizes
        now), else its concrete sizes."""
        concrete = tuple(int(v) for v in concrete)
        shape = self.by_id.get(tensor_id)
        if shape is not None and self._matches(shape, concrete):
            return shape
        return concrete

    def _matches(self, shape: Shape, concrete: tuple[int, ...]) -> bool:
        return len(shape) == len(concrete) and all(
            size is None or self._value_of(size) == value for size, value in zip(shape, concrete)
        )

    def _value_of(self, size: sympy.Expr | int) -> int | None:
        if isinstance(size, int):
            return size
        found = self._values.get(size, self)
        if found is self:
            found = self._values[size] = self.names.value_of(size)
        return found

    def _free_names(self, shapes: Iterable[Shape | None]) -> set[str]:
        found = set()
        for shape in shapes:
            for size in shape or ():
                if isinstance(size, sympy.Expr):
                    found.update(s.name for s in size.free_symbols)
        return found

    # --- ops outside module calls ------------------------------------------------------------

    def _top_op(self, j: int) -> None:
        func, _, code, lasti, inputs, outputs, failed = self.job.ops[j]
        name = op_names(func)[0]
        shapes_in = [self._known(raw[4], raw[0]) for raw in inputs]
        self.op_in[j] = shapes_in
        if failed or not outputs:  # nothing to compute (`loss.backward()`, `x.item()`)
            return
        if self.out_of_time:
            self._fall_back(j, self._budget_reason())
            return
        live = self._free_names(shapes_in)
        if not inputs or is_factory(name):  # a new tensor (`x.new_zeros(B, N)`: x gives only dtype, device)
            created = [self._created(code, lasti, name, raw) for raw in outputs]
            self._set_outputs(j, outputs, created, make_context(self.names))
            return
        if not live:  # every input has fixed sizes: so have the outputs, as they ran
            static = [tuple(int(v) for v in raw[0]) for raw in outputs]
            self._set_outputs(j, outputs, static, make_context(self.names))
            return
        skeleton = self.job.top_args.get(j)
        if skeleton is None:
            self._fall_back(j, "its arguments were not recorded")
            return
        opaque = has_opaque(skeleton)
        if opaque is not None:
            self._fall_back(j, f"its arguments include a {opaque.type_name}, which the replay does not repeat")
            return
        metas = {raw[4]: raw for raw in inputs}
        key = self._op_key(func, code, lasti, skeleton, metas)
        cached = self._op_cache.get(key) if key is not None else None
        if cached is not None:
            self._set_outputs(j, outputs, *cached)
            return
        run = FakeRun(self.names)
        run.position = lambda: 0
        made: dict[int, Any] = {}

        def tensor_for(ref: TensorRef) -> Any:
            if ref.id not in made:
                shape, dtype, device, requires_grad, _ = metas[ref.id][:5]  # KeyError: not replayed
                concrete = tuple(int(v) for v in shape)
                made[ref.id] = run.tensor(self._known(ref.id, concrete), concrete, dtype, device, requires_grad)
            return made[ref.id]

        try:
            with run.running():
                args = rebuild(skeleton[0], tensor_for, run.copy_object)
                kwargs = rebuild(skeleton[1], tensor_for, run.copy_object) if skeleton[1] else {}
                result = _call_op(func, args, kwargs)
                fakes = _tensors_of(result)
                shapes = [run.shape(fake.shape) for fake in fakes]
        except KeyError:
            self._fall_back(j, "a tensor in its arguments was not recorded")
            return
        except Exception as error:
            self._fall_back(j, f"{name} did not run on fake tensors ({_short(error)})")
            return
        if len(shapes) != len(outputs) or not all(
            self._matches(s, tuple(raw[0])) for s, raw in zip(shapes, outputs)
        ):
            self._fall_back(j, "its symbolic sizes disagree with the sizes it ran with")
            return
        context = make_context(self.names, run.specialised, live)
        self._add_specializations(run, lambda position: j)
        if key is not None:
            self._op_cache[key] = (shapes, context)
        self._set_outputs(j, outputs, shapes, context)

    def _created(self, code: Any, lasti: int, name: str, raw: tuple) -> Shape:
        """A new tensor's shape: its dims named after the factory's size variables, if any."""
        concrete = tuple(int(v) for v in raw[0])
        dim_names = factory_dim_names(code, lasti, name, len(concrete)) if is_factory(name) else None
        if not dim_names:
            return concrete
        where = f"at {_site_text(code, lasti)}"
        return tuple(
            (self.names.bind(n, v, where) or v) if n is not None else v for n, v in zip(dim_names, concrete)
        )

    def _set_outputs(self, j: int, outputs: list, shapes: list[Shape], context: Context) -> None:
        self.op_out[j] = list(shapes)
        self.contexts[j] = context
        for raw, shape in zip(outputs, shapes):
            self.by_id[raw[4]] = shape

    def _fall_back(self, j: int, reason: str) -> None:
        self.fallback[j] = reason
        if not self.reason:
            raw = self.job.ops[j]
            self.reason = f"op {j} ({op_names(raw[_OP_FUNC])[0]}) at {_site_text(raw[2], raw[3])}: {reason}"

    def _op_key(self, func: Any, code: Any, lasti: int, skeleton: tuple, metas: dict) -> Any:
        def shaped(ref: TensorRef) -> tuple:
            shape, dtype, device, requires_grad = metas[ref.id][:4]
            return self._known(ref.id, shape), dtype, device, requires_grad

        try:
            key = (func, code, lasti, _freeze(skeleton, shaped))
            hash(key)
        except (TypeError, KeyError):
            return None
        return key

    # --- root module calls ---------------------------------------------------------------------

    def _root_call(self, r: int, next_root: int) -> None:
        raw = self.job.modules[r]
        first, end = raw[_CALL_FIRST], raw[_CALL_END] if raw[_CALL_END] is not None else len(self.job.ops)
        entry = self.job.root_calls.get(r)
        module = entry[0] if entry is not None else None
        why_not = (
            self._budget_reason() if self.out_of_time
            else "its module call's arguments were not recorded" if entry is None
            else f"{type(module).__name__} is a TorchScript module: its forward runs in TorchScript's "
                 "interpreter, which the replay does not enter" if ts.is_torchscript(module)
            else f"{type(module).__name__}.training changed since the call (train()/eval()): "
                 "the replay would have to switch it back" if module.training != entry[4]
            else None
        )  # fmt: skip
        if why_not is not None:
            for j in range(first, end):
                if not self.job.ops[j][_OP_FAILED]:
                    self._fall_back(j, why_not)
            if first == end:  # no op to carry the reason (a TorchScript module records none)
                self._note(f"{raw[_CALL_PATH] or raw[_CALL_TYPE]}: {why_not}; its shapes are concrete")
            return
        module, args, kwargs, grad, training = entry
        plan, live = self._plan_inputs(module, args, kwargs)
        signature = tuple((c[_OP_FUNC], c[_OP_CODE], c[_OP_LASTI]) for c in self.job.ops[first:end])
        key = self._call_key(module, args, kwargs, grad, training, plan)
        result = self._call_cache.get(key) if key is not None else None
        if result is None or result.signature != signature:
            result = self._run_call(r, next_root, module, args, kwargs, grad, plan, live, signature)
            if key is not None and not result.out_of_time:
                self._call_cache[key] = result
        self._apply_call(r, next_root, first, end, result)

    def _plan_inputs(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[dict[int, Shape], set]:
        """``id(slot) -> canonical shape`` for the call's tensors: named by the user's dims, else by
        jaxtyping hints on ``forward``, else shaped by whatever made them."""
        specs = self._argument_specs(module, args, kwargs)
        plan: dict[int, Shape] = {}
        for slot in slots((args, kwargs)):
            shape = self._known(slot.id, slot.shape)
            named = specs.get(id(slot))
            if named is not None:
                shape = self._named(slot, shape, *named)
            plan[id(slot)] = shape
        return plan, self._free_names(plan.values())

    def _argument_specs(self, module: nn.Module, args: tuple, kwargs: dict) -> dict[int, tuple[DimSpec, str]]:
        option = self.job.option
        applies = self.job.model is None or module is self.job.model
        specs: dict[int, tuple[DimSpec, str]] = {}
        owner = f"{type(module).__name__}.forward"
        try:
            bound = inspect.signature(module.forward).bind_partial(*args, **kwargs).arguments
        except (TypeError, ValueError):
            bound = {}
        for argument, spec in forward_dim_specs(module).items():
            if isinstance(bound.get(argument), TensorSlot):
                specs[id(bound[argument])] = (spec, f"{argument} of {owner} (jaxtyping)")
        if applies and option.spec is not None:
            first = next(iter(slots((args, kwargs))), None)
            argument = next((a for a, v in bound.items() if v is first), "the first tensor")
            if first is not None:
                specs[id(first)] = (option.spec, f"{argument} of {owner} (dims=)")
        if applies:
            for argument, spec in option.by_argument.items():
                value = bound.get(argument)
                if isinstance(value, TensorSlot):
                    specs[id(value)] = (spec, f"{argument} of {owner} (dims=)")
                else:
                    what = "is not a tensor" if argument in bound else "is not an argument of this call"
                    self._note(f"dims names {argument!r}, which {what} of {owner}")
        return specs

    def _named(self, slot: TensorSlot, shape: Shape, spec: DimSpec, where: str) -> Shape:
        dim_names = spec.for_rank(len(slot.shape))
        if dim_names is None:
            self._note(f"{spec.text!r} names {len(spec.named)} dims but {where} has {len(slot.shape)}")
            return shape
        named = list(shape)
        for i, (name, value) in enumerate(zip(dim_names, slot.shape)):
            if name is None:
                continue
            if name.startswith("#"):  # jaxtyping broadcastable dim: a 1 here is a broadcast
                if value == 1:
                    continue
                name = name[1:]
            found = self.names.bind(name, int(value), f"in {where}")
            named[i] = found if found is not None else int(value)
        return tuple(named)

    def _call_key(self, module, args, kwargs, grad, training, plan) -> Any:
        def shaped(slot: TensorSlot) -> tuple:
            return plan[id(slot)], slot.dtype, slot.device, slot.requires_grad

        try:
            key = (id(module), grad, training, _freeze((args, kwargs), shaped))
            hash(key)
        except TypeError:
            return None
        return key

    def _run_call(self, r: int, next_root: int, module: nn.Module, args: tuple, kwargs: dict, grad: bool,
                  plan: dict, live: set, signature: tuple) -> _CallResult:  # fmt: skip
        raw = self.job.modules[r]
        first, site = raw[_CALL_FIRST], (raw[_CALL_CODE], raw[_CALL_LASTI])
        run = FakeRun(self.names)
        guard = EffectGuard(list(all_modules(self.job.model or module)))
        recorder = ReplayRecorder(run, guard, self.deadline, lambda done: self._report(first + done))
        guard.position = lambda: len(recorder.ops)
        run.position = lambda: len(recorder.ops) - 1 if recorder.ops else None
        groups = concrete_groups(self.job.ops, self.job.modules, r, next_root, module, self.fingerprints)
        reuse = BlockReuse(recorder, run.mode, lambda _, offset: groups.get(offset), rename=False)
        made: dict[int, Any] = {}

        def tensor_for(slot: TensorSlot) -> Any:
            if slot.id not in made:
                shape = plan.get(id(slot), tuple(slot.shape))
                made[slot.id] = run.tensor(shape, slot.shape, slot.dtype, slot.device, slot.requires_grad)
            return made[slot.id]

        def module_call(called: nn.Module, call_args: tuple, call_kwargs: dict) -> Any:
            caller = sys._getframe(1).f_back  # the line that called the module (through nn.Module.__call__)
            original = ts.compiled_original(called)
            if original is not None:  # torch.compile(module): its original, never compiled here
                return _through_compiled(recorder, called, original, call_args, call_kwargs)
            if ts.is_torchscript(called):
                raise StopReplay(f"calls TorchScript module {type(called).__name__}, whose ops the replay "
                                 "does not follow", *_frame_site(caller))  # fmt: skip
            return reuse.call(called, call_args, call_kwargs, lambda: ts.plain_call(called, call_args, call_kwargs),
                              caller)  # fmt: skip

        error: BaseException | None = None
        with run.running(grad):
            try:
                call_args = rebuild(args, tensor_for, run.copy_object)
                call_kwargs = rebuild(kwargs, tensor_for, run.copy_object)
                recorder.hook_modules(self.job.model)
                with ts.module_calls_through(module_call), guard.watching(), recorder:
                    module(*call_args, **call_kwargs)
            except (Exception, StopReplay) as raised:  # the forward's error, an effect, the budget
                error = raised
            finally:
                recorder.release()
        self.reused_calls += reuse.reused
        positions = _op_positions(recorder.ops)
        result = self._read_call(run, recorder, positions, first, signature, live, site)
        self._stopped(result, module, guard, error, positions)
        if result.out_of_time:
            self.out_of_time = True

        def op_index(position: int | None) -> int | None:
            fake = positions.get(position) if position is not None else None
            if fake is None or fake >= len(result.concrete_of):
                return None
            return first + result.concrete_of[fake]

        self._add_specializations(run, op_index, recorder)
        return result

    def _stopped(self, result: _CallResult, module: nn.Module, guard: EffectGuard, error: BaseException | None,
                 positions: dict[int, int]) -> None:  # fmt: skip
        """Say why the fake run of a call ended early: an effect it would have had (the ops after it
        lose their symbolic sizes, even if they ran: the effect was found after the call), the
        budget, or an error."""
        ops_count = len(result.signature)
        effect = guard.effect
        if effect is not None:
            stopped_at = 0  # found after the call: none of it counts
            if guard.stopped_at is not None:
                before = _aligned_before(positions, guard.stopped_at)
                stopped_at = result.concrete_of[before] if before < len(result.concrete_of) else result.aligned
            if stopped_at < result.aligned or result.aligned < ops_count:
                result.aligned = min(result.aligned, stopped_at)
                del result.ops[result.aligned :]
                result.calls = {k: call for k, call in result.calls.items() if call[1][1] <= result.aligned}
                if 0 not in result.calls:
                    result.outputs = {}
                later = "the call's later shapes are concrete" if stopped_at else "shapes of this call are concrete"
                result.reason = f"{effect.describe()}: {later}"
            else:  # every op was replayed: say it where no op can
                self._note(f"{type(module).__name__}: {effect.describe()}; the replay stopped there")
        elif isinstance(error, StopReplay):
            result.out_of_time = error.what == OUT_OF_TIME
            if result.aligned < ops_count:
                result.reason = self._budget_reason() if result.out_of_time else error.describe()
            elif not result.out_of_time:
                self._note(f"{type(module).__name__}: {error.describe()}; the replay stopped there")
        elif error is not None and result.aligned < ops_count:  # what stopped it, rather than where
            result.reason = f"{type(module).__name__}.forward did not run on fake tensors ({_short(error)})"

    def _read_call(self, run: FakeRun, recorder: ReplayRecorder, positions: dict[int, int], first: int,
                   signature: tuple, live: set, site: tuple) -> _CallResult:  # fmt: skip
        ops = self.job.ops
        fakes = [recorder.ops[raw] for raw in sorted(positions, key=positions.__getitem__)]
        # Ops of library code (an nn.Linear called as the root) are placed at the line that called
        # the root module: the user's line in the concrete run, the pass's caller in the fake one.
        fake_site = (recorder.modules[0][_CALL_CODE], recorder.modules[0][_CALL_LASTI]) if recorder.modules else None
        result = _CallResult(aligned=0, signature=signature)

        def same_op(k: int, p: int) -> bool:
            if k >= len(signature) or p >= len(fakes):
                return False
            fake = fakes[p]
            fake_at = (fake[_OP_CODE], fake[_OP_LASTI])
            func, code, lasti = signature[k]
            return (fake[_OP_FUNC], site if fake_at == fake_site else fake_at) == (func, (code, lasti))

        k = p = 0  # the next concrete op, the next fake op
        while k < len(signature):
            concrete = ops[first + k]
            if not same_op(k, p):
                if self._initialises_lazy_module(first + k):  # ran once, in the traced call: static sizes
                    result.ops.append(_static(concrete))
                    k = result.aligned = k + 1
                    continue
                skip = _resynchronised(same_op, k, p, len(signature), len(fakes)) if p < len(fakes) else None
                if skip is None:
                    result.reason = result.reason or (
                        "the fake run stopped before this op" if p >= len(fakes)
                        else "the fake run took another path here (the code depends on values)"
                    )  # fmt: skip
                    break
                # The runs part and meet again (code that checks for fake tensors, as transformers'
                # `is_tracing` does, or branches on values): the concrete ops in between keep their
                # sizes, the fake ones are dropped; the ops after are checked as every op is.
                concrete_skip, fake_skip = skip
                for j in range(k, k + concrete_skip):
                    skipped = ops[first + j]
                    if all(len(m[0]) == 0 for m in skipped[_OP_OUTPUTS]):  # a scalar or nothing: no size to name
                        result.ops.append(([None] * len(skipped[_OP_INPUTS]), [() for _ in skipped[_OP_OUTPUTS]]))
                    else:
                        result.ops.append(None)
                        result.skipped[j] = "the fake run took another path here (the code depends on values)"
                result.concrete_of.extend([k + concrete_skip] * fake_skip)
                k, p = k + concrete_skip, p + fake_skip
                result.aligned = k
                continue
            fake = fakes[p]
            if fake[_OP_FAILED] or concrete[_OP_FAILED]:
                break
            outputs = run.shapes(fake[_OP_OUTPUTS])
            if len(outputs) != len(concrete[_OP_OUTPUTS]) or not all(
                self._matches(s, m[0]) for s, m in zip(outputs, concrete[_OP_OUTPUTS])
            ):
                result.reason = "its symbolic sizes disagree with the sizes it ran with"
                break
            inputs = run.shapes(fake[_OP_INPUTS])
            if len(inputs) != len(concrete[_OP_INPUTS]):
                inputs = [None] * len(concrete[_OP_INPUTS])
            result.ops.append((inputs, outputs))
            result.concrete_of.append(k)
            k = result.aligned = k + 1
            p += 1
        kept = sorted(positions)
        concrete_of = result.concrete_of

        def concrete_position(raw: int) -> int:
            """The concrete position of the first kept op at or after a recorder index."""
            fake = bisect.bisect_left(kept, raw)
            return concrete_of[fake] if fake < len(concrete_of) else result.aligned

        for k, call in enumerate(recorder.modules):
            end = call[_CALL_END] if call[_CALL_END] is not None else len(recorder.ops)
            span = (concrete_position(call[_CALL_FIRST]), concrete_position(end))
            if span[0] > result.aligned:
                break
            inputs = [run.shape(m[0]) for m in call[_CALL_INPUTS]]
            done = span[1] <= result.aligned and not call[_CALL_FAILED]
            outputs = [run.shape(m[0]) for m in call[_CALL_OUTPUTS]] if done else None
            result.calls[k] = (call[_CALL_TYPE], span, inputs, outputs)
            if k == 0 and outputs is not None:
                result.outputs = {m[5] if len(m) > 5 else "": s for m, s in zip(call[_CALL_OUTPUTS], outputs)}
        result.context = make_context(self.names, run.specialised, live)
        return result

    def _initialises_lazy_module(self, j: int) -> bool:
        """Whether op ``j`` ran inside a lazy module's call that the replay finds initialised:
        the ops that made its parameters ran once, in the traced call, and not in the replay."""
        module = self.job.ops[j][_OP_MODULE]
        return module is not None and self.job.modules[module][_CALL_TYPE].startswith("Lazy")

    def _apply_call(self, r: int, next_root: int, first: int, end: int, result: _CallResult) -> None:
        ops, modules = self.job.ops, self.job.modules
        for k in range(end - first):
            j = first + k
            if k < result.aligned and result.ops[k] is None:
                self._fall_back(j, result.skipped[k])
            elif k < result.aligned:
                inputs, outputs = result.ops[k]
                self.op_in[j] = inputs
                self.op_out[j] = outputs
                self.contexts[j] = result.context
                for raw, shape in zip(ops[j][_OP_OUTPUTS], outputs):
                    self.by_id[raw[4]] = shape
            elif not ops[j][_OP_FAILED]:
                self._fall_back(j, result.reason or "the fake run stopped before this op")
        for i in range(r, next_root):
            raw = modules[i]
            found = result.calls.get(i - r)
            self.call_contexts[i] = result.context
            if found is None or found[0] not in (raw[_CALL_TYPE], raw[_CALL_TYPE].removeprefix("Lazy")):
                continue
            if found[1][0] != raw[_CALL_FIRST] - first and not all(
                self._initialises_lazy_module(j) for j in range(raw[_CALL_FIRST], first + found[1][0])
            ):  # its first ops may be a lazy module's initialisation, which the replay does not repeat
                continue
            _, _, inputs, outputs = found
            if len(inputs) == len(raw[_CALL_INPUTS]) and all(
                self._matches(s, tuple(m[0])) for s, m in zip(inputs, raw[_CALL_INPUTS])
            ):
                self.call_in[i] = inputs
            if outputs is not None and len(outputs) == len(raw[_CALL_OUTPUTS]) and all(
                self._matches(s, tuple(m[0])) for s, m in zip(outputs, raw[_CALL_OUTPUTS])
            ):
                self.call_out[i] = outputs
        for meta in modules[r][_CALL_OUTPUTS]:  # what the call returned, for the ops after it
            shape = result.outputs.get(meta[5] if len(meta) > 5 else "")
            if shape is not None and self._matches(shape, tuple(meta[0])):
                self.by_id[meta[4]] = shape

    # --- specialisations -----------------------------------------------------------------------

    def _add_specializations(self, run: FakeRun, op_index: Any, recorder: ReplayRecorder | None = None) -> None:
        for replacement in run.replacements:
            index = op_index(replacement.position)
            self.specializations.append(self._specialization(run, replacement, index, recorder))

    def _specialization(self, run: FakeRun, rep: Replacement, index: int | None, recorder) -> Specialization:
        if index is not None:
            raw = self.job.ops[index]
            op = op_names(raw[_OP_FUNC])[0]
            file, line = _site(raw[_OP_CODE], raw[_OP_LASTI])
        else:
            fake = recorder.ops[rep.position] if recorder is not None and rep.position is not None else None
            op = op_names(fake[_OP_FUNC])[0] if fake is not None else None
            file, line = rep.file, rep.line
        return specialization(run, rep, self.names.all[rep.name], op, index, file, line)

    # --- the result ----------------------------------------------------------------------------

    def _texts(self, raws: list, shapes: list | None, context: Context | None) -> tuple[str | None, ...]:
        """The texts of a record's tensors (each shape rendered once per naming context)."""
        texts = []
        for k, raw in enumerate(raws):
            concrete = tuple(int(v) for v in raw[0])
            shape = shapes[k] if shapes is not None and k < len(shapes) else None
            if shape is None or len(shape) != len(concrete):
                shape = None
            key = (shape, concrete, id(context))
            text = self._rendered.get(key)
            if text is None:
                text = self._rendered[key] = (
                    render(shape, concrete, self.names, context) if shape is not None
                    else render_by_value(concrete, self.names, context)
                )  # fmt: skip
            texts.append(text)
        return tuple(texts)

    def _note(self, note: str) -> None:
        if note not in self.names.notes:
            self.names.notes.append(note)

    def _result(self) -> SymbolicResult:
        ops, modules, names = self.job.ops, self.job.modules, self.names
        result = SymbolicResult(SymbolicStatus(RAN))
        for j, raw in enumerate(ops):
            context = self.contexts.get(j)
            result.op_inputs[j] = self._texts(raw[_OP_INPUTS], self.op_in.get(j), context)
            result.op_outputs[j] = self._texts(raw[_OP_OUTPUTS], self.op_out.get(j), context)
        for i, raw in enumerate(modules):
            context = self.call_contexts.get(i)
            result.module_inputs[i] = self._texts(raw[_CALL_INPUTS], self.call_in.get(i), context)
            result.module_outputs[i] = self._texts(raw[_CALL_OUTPUTS], self.call_out.get(i), context)
        for name, where in names.fixed.items():
            value = names.values[name]
            result.specializations.append(
                Specialization(name, value, str(value), None, "", 0, f"torch keeps sizes 0 and 1 constant (named {where})")
            )
        seen = set()
        for spec in self.specializations:  # one record per dim, op and guard
            key = (spec.dim, spec.expr, spec.op_index, spec.reason)
            if key not in seen:
                seen.add(key)
                result.specializations.append(spec)
        result.dims = names.all
        symbolic = len(self.op_out)
        fallback = len(self.fallback)
        state = RAN if not fallback else PARTIAL if symbolic else FAILED
        reason = self.reason if fallback else ""
        if self.out_of_time:
            late = sum(1 for why in self.fallback.values() if why == self._budget_reason())
            reason = f"{self._budget_reason()}: {late} ops not reached keep their concrete sizes"
        seconds = time.perf_counter() - self.started
        result.status = SymbolicStatus(state, reason, symbolic, fallback, tuple(names.notes), seconds,
                                       self.reused_calls)  # fmt: skip
        return result


# --- helpers -----------------------------------------------------------------------------------


def _op_positions(recorded: list) -> dict[int, int]:
    """``recorder index -> position`` of the ops a fake run recorded that a concrete run records
    too: ``torch.sym_float`` and kin run only on symbolic numbers."""
    positions: dict[int, int] = {}
    for raw, entry in enumerate(recorded):
        if entry[_OP_FUNC] not in SYMBOLIC_ONLY:
            positions[raw] = len(positions)
    return positions


RESYNC_WINDOW = 64  # ops searched, on each side, for where two runs that parted meet again
RESYNC_RUN = 4  # ops that must match in a row there


def _resynchronised(same_op: Any, k: int, p: int, concrete_count: int, fake_count: int) -> tuple[int, int] | None:
    """``(concrete ops, fake ops)`` to skip so that both runs go on together for ``RESYNC_RUN``
    ops (or to their ends), fewest skipped first; ``None`` when they do not meet again nearby."""
    for total in range(1, 2 * RESYNC_WINDOW + 1):
        for concrete_skip in range(max(0, total - RESYNC_WINDOW), min(total, RESYNC_WINDOW) + 1):
            fake_skip = total - concrete_skip
            start_k, start_p = k + concrete_skip, p + fake_skip
            if start_k >= concrete_count or start_p > fake_count:
                continue
            run = min(RESYNC_RUN, concrete_count - start_k)
            if all(same_op(start_k + i, start_p + i) for i in range(run)):
                return concrete_skip, fake_skip
    return None


def _static(raw: list) -> tuple[list, list]:
    """An op's own sizes as its symbolic ones (constants)."""
    return [tuple(m[0]) for m in raw[_OP_INPUTS]], [tuple(m[0]) for m in raw[_OP_OUTPUTS]]


def _call_op(func: Any, args: tuple, kwargs: dict) -> Any:
    """``func(*args, **kwargs)`` on fakes, with torch's Python dispatcher where the op needs it
    (or when it rejects symbolic sizes without it), as the replay recorder does."""
    if func in ts.python_dispatched():
        with ts.python_dispatcher():
            return func(*args, **kwargs)
    try:
        return func(*args, **kwargs)
    except Exception:
        with ts.python_dispatcher():
            return func(*args, **kwargs)


def _aligned_before(positions: dict[int, int], recorded: int) -> int:
    """How many aligned ops the fake run recorded before its op number ``recorded``."""
    return sum(1 for raw in positions if raw < recorded)


def _through_compiled(recorder: ReplayRecorder, wrapper: nn.Module, original: nn.Module, args: tuple,
                      kwargs: dict) -> Any:  # fmt: skip
    """A call of a ``torch.compile`` wrapper, recorded as the wrapper's call around its original
    module's (as a traced run records it), without compiling anything."""
    recorder._global_enter(wrapper, args)
    output = None
    try:
        output = original(*args, **kwargs)
    finally:
        recorder._global_exit(wrapper, args, kwargs, output)
    return output


def _frame_site(frame: Any) -> tuple[str, int]:
    return (frame.f_code.co_filename, frame.f_lineno) if frame is not None else ("", 0)


def _tensors_of(result: Any) -> list:
    if isinstance(result, torch.Tensor):
        return [result]
    if isinstance(result, (list, tuple)):
        return [item for item in result if isinstance(item, torch.Tensor)]
    return []


def _freeze(value: Any, shape_of: Any) -> Any:
    """A hashable image of a skeleton, tensors as ``shape_of(tensor)`` (canonical shape and type)."""
    if type(value) is TensorSlot or type(value) is TensorRef:
        return ("tensor", *shape_of(value))
    if isinstance(value, (tuple, list)):
        return (type(value).__name__, *(_freeze(item, shape_of) for item in value))
    if isinstance(value, dict):
        return ("dict", *((key, _freeze(item, shape_of)) for key, item in value.items()))
    if isinstance(value, slice):
        return ("slice", value.start, value.stop, value.step)
    hash(value)
    return value if isinstance(value, (int, float, str, bool, type(None))) or value is ... else ("id", id(value))


def specialization(run: FakeRun, rep: Replacement, value: int, op: str | None, index: int | None, file: str,
                   line: int) -> Specialization:  # fmt: skip
    """The record of one replacement: ``op`` is the op whose guard made it (``None``: Python code
    between ops, like ``if C != 3:``, whose source line then stands for it)."""
    guard = run.guard_for(rep)
    needs = relation_text(guard) if guard is not None else f"{rep.name} == {expr_text(rep.target)}"
    who = op if op is not None else f"`{source_line(file, line)}`" if file else "the code"
    return Specialization(rep.name, value, expr_text(rep.target), index, file, line, f"{who} needs {needs}")


def relation_text(relation: sympy.Basic) -> str:
    """``Eq(D, 512)`` -> ``D == 512``."""
    symbols = {sympy.Eq: "==", sympy.Ne: "!=", sympy.Ge: ">=", sympy.Gt: ">", sympy.Le: "<=", sympy.Lt: "<"}
    for kind, text in symbols.items():
        if isinstance(relation, kind):
            return f"{expr_text(relation.lhs)} {text} {expr_text(relation.rhs)}"
    return expr_text(relation)


def _site(code: Any, lasti: int) -> tuple[str, int]:
    return (code.co_filename, line_of(code, lasti)) if code is not None else ("<unknown>", 0)


def _site_text(code: Any, lasti: int) -> str:
    file, line = _site(code, lasti)
    return f"{os.path.basename(file)}:{line}"


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return first if len(first) <= 160 else first[:157] + "..."
