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
import dataclasses
import inspect
import operator
import re
import sys
import time
from collections.abc import Hashable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sympy
import torch
from torch import nn

from shapetrace._private import torch_symbolic as ts
from shapetrace._private.torch_api import own_tensors
from shapetrace._private.torch_logging import drop_idle_trace_handler
from shapetrace.capture.collector import long_lived
from shapetrace.capture.names import op_names
from shapetrace.capture.recording import site
from shapetrace.capture.records import CallEntry, OpEntry, TensorEntry
from shapetrace.capture.source import short_location, source_line
from shapetrace.symbolic.bridge import OUT_OF_TIME, FakeRun, Replacement, ReplayRecorder, traced_values
from shapetrace.symbolic.carried import carried
from shapetrace.symbolic.dims import Context, Fixed, Names, Rendering, Shape, symbol
from shapetrace.symbolic.effects import EffectGuard, StopReplay, kept_apart
from shapetrace.symbolic.naming import (
    NOT_LITERAL,
    factory_dim_names,
    forward_dim_specs,
    forward_statement_specs,
    is_factory,
    literal_index,
    script_constants,
    size_expression,
    subscript_at,
)
from shapetrace.symbolic.printer import expr_text
from shapetrace.symbolic.result import (
    FAILED,
    PARTIAL,
    RAN,
    Exprs,
    Specialization,
    SymbolicResult,
    SymbolicStatus,
)
from shapetrace.symbolic.reuse import BlockReuse, Fingerprints, Splice, all_modules, concrete_groups
from shapetrace.symbolic.skeleton import TensorRef, TensorSlot, has_opaque, rebuild, slots
from shapetrace.symbolic.spec import DimSpec

if TYPE_CHECKING:  # job.py imports this module when a pass runs
    from shapetrace.symbolic.job import Job, Progress

# Functions torch calls on SymInts/SymFloats only (a concrete run never records them).
SYMBOLIC_ONLY = frozenset(
    getattr(torch, name) for name in dir(torch) if name.startswith("sym_") and callable(getattr(torch, name))
)

PROGRESS_EVERY = 0.1  # seconds between progress reports


def run_pass(job: Job, progress: Progress | None = None) -> SymbolicResult:
    """The symbolic result of a finished trace; never raises (a failure is the result's status).
    Torch's symbolic machinery is imported before the budget's clock starts. Both run with the
    collector paused (``long_lived``): the imports make no garbage to look for (a collection
    would scan their million objects once more: 0.1-0.2 s), the replay fills torch's and sympy's
    caches; its own objects (recorders, guards, fake runs, this replay) form no reference cycles,
    so they are freed as it ends, and the collection at its end scans what is left young."""
    try:
        with ts.isolated(), kept_apart():  # another trace records nothing; torch's log records dropped too
            drop_idle_trace_handler()  # which a first record would have removed: torch logs nothing for it
            with long_lived():
                ts.warm_up()  # the first pass in a process imports torch._dynamo and fills torch's tables: seconds
            with long_lived(garbage=True):
                return _Replay(job, progress).run()
    except Exception as error:  # a failure here must not cost the user the concrete trace
        return SymbolicResult(SymbolicStatus(FAILED, f"{type(error).__name__}: {_short(error)}"))


@dataclass(frozen=True)
class _Signature:
    """What a root call's concrete ops ran, in order: their funcs, and the code and instruction
    that called each (the fake ops must line up with them)."""

    funcs: tuple
    codes: tuple
    lastis: tuple

    @classmethod
    def of(cls, ops: list[OpEntry]) -> _Signature:
        return cls(tuple(map(_FUNC, ops)), tuple(map(_CODE, ops)), tuple(map(_LASTI, ops)))

    def __len__(self) -> int:
        return len(self.funcs)


@dataclass
class _CallResult:
    """A root call's symbolic part, kept to reuse for later calls with the same arguments."""

    aligned: int
    ops: list[tuple[list, list] | None] = field(default_factory=list)  # per aligned op: (inputs, outputs)
    calls: dict[int, tuple] = field(default_factory=dict)  # position -> (type, op span, inputs, outputs)
    outputs: dict[str, Shape] = field(default_factory=dict)  # root call outputs by path
    contexts: list[Context] = field(default_factory=list)  # per aligned op
    reason: str = ""
    signature: _Signature = field(default_factory=lambda: _Signature((), (), ()))
    out_of_time: bool = False
    concrete_of: list[int] = field(default_factory=list)  # fake position -> concrete position (see _read_call)
    skipped: dict[int, str] = field(default_factory=dict)  # concrete position -> why it has no symbolic sizes


@dataclass
class _Twins:
    """The calls a root call's fake run spliced from a replayed twin (:class:`BlockReuse`), and the
    concrete groups that let it: ``root`` is the root call's index, groups are by offset from it."""

    root: int
    spliced: list[Splice]
    groups: dict[int, Hashable]

    def copies(self, kept: list[int]) -> dict[int, tuple[int, int, Splice]]:
        """``fake position of a spliced call's first op -> (its ops, fake position of the first op
        it copies, the splice)``, for the calls whose concrete call is in its source's group;
        ``kept`` is the recorder index of each fake position."""
        found = {}
        for splice in self.spliced:
            group = self.groups.get(splice.first_call)
            if group is None or group != self.groups.get(splice.source_call):
                continue
            start = bisect.bisect_left(kept, splice.first_op)
            count = bisect.bisect_left(kept, splice.first_op + splice.ops) - start
            if count:
                found[start] = (count, bisect.bisect_left(kept, splice.source_op), splice)
        return found


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
        self._rendered: dict[tuple, tuple[str, str]] = {}
        self._record_texts: dict[tuple[int, int], tuple[tuple, Exprs]] = {}  # see _texts
        self._values: dict[sympy.Expr, int | None] = {}  # names are bound before any value is asked
        self.names = Names(constants=dict(job.option.sizes))
        # the finished trace's entries, read once (each read through the recorder's lists costs a call)
        self.ops: list[OpEntry] = list(job.ops)
        self.modules: list[CallEntry] = list(job.modules)
        codes = {op.code for op in self.ops} | {call.code for call in self.modules}
        files = {code.co_filename for code in codes if code is not None}
        self.names.script = {n: v for n, v in script_constants(sorted(files)).items() if n not in job.option.sizes}
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
        self._generated: dict[tuple[int, int, int, int], sympy.Symbol] = {}

    # --- the walk ------------------------------------------------------------------------------

    def run(self) -> SymbolicResult:
        ops, modules = self.ops, self.modules
        roots = [i for i, call in enumerate(modules) if call.parent is None]
        events = [((modules[r].first_op, 0), r) for r in roots]
        events += [((j, 1), j) for j, op in enumerate(ops) if op.module_index is None]
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
        if now - self._reported >= PROGRESS_EVERY or done >= len(self.ops):
            self._reported = now
            self.progress(done, len(self.ops))

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
        op = self.ops[j]
        func, code, lasti, inputs, outputs = op.func, op.code, op.lasti, op.inputs, op.outputs
        name = op_names(func)[0]
        shapes_in = [self._known(meta.tensor_id, meta.shape) for meta in inputs]
        self.op_in[j] = shapes_in
        if op.failed or not outputs:  # nothing to compute (`loss.backward()`, `x.item()`)
            return
        if self.out_of_time:
            self._fall_back(j, self._budget_reason())
            return
        live = self._free_names(shapes_in)
        if not inputs or is_factory(name):  # a new tensor (`x.new_zeros(B, N)`: x gives only dtype, device)
            created = [self._created(code, lasti, name, meta) for meta in outputs]
            self._set_outputs(j, outputs, created, Context())
            return
        if not live:  # every input has fixed sizes: so have the outputs, as they ran
            static = [tuple(int(v) for v in meta.shape) for meta in outputs]
            self._set_outputs(j, outputs, static, Context())
            return
        skeleton = self.job.top_args.get(j)
        if skeleton is None:
            self._fall_back(j, "its arguments were not recorded")
            return
        opaque = has_opaque(skeleton)
        if opaque is not None:
            self._fall_back(j, f"its arguments include a {opaque.type_name}, which the replay does not repeat")
            return
        metas = {meta.tensor_id: meta for meta in inputs}
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
                meta = metas[ref.id]  # KeyError: not replayed
                concrete = tuple(int(v) for v in meta.shape)
                made[ref.id] = run.tensor(self._known(ref.id, concrete), concrete, meta.dtype, meta.device,
                                          meta.requires_grad)  # fmt: skip
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
            self._matches(s, tuple(meta.shape)) for s, meta in zip(shapes, outputs)
        ):
            self._fall_back(j, "its symbolic sizes disagree with the sizes it ran with")
            return
        standing = set(run.specialised) - self._free_names(shapes)
        context = Context(frozenset(live - standing), frozenset(standing))
        self._add_specializations(run, lambda position: j)
        if key is not None:
            self._op_cache[key] = (shapes, context)
        self._set_outputs(j, outputs, shapes, context)

    def _created(self, code: Any, lasti: int, name: str, meta: TensorEntry) -> Shape:
        """A new tensor's shape: its dims named after the factory's size variables; a literal
        size is a number; a factory call the source does not show (``torch.rand(*shape)``, one
        in an ``__init__``) has sizes the pass does not know the origin of."""
        concrete = tuple(int(v) for v in meta.shape)
        if not is_factory(name):
            return concrete
        sizes = factory_dim_names(code, lasti, name, len(concrete))
        if sizes is None:
            return (None,) * len(concrete)
        where = f"at {_site_text(code, lasti)}"
        shape: list = []
        for size, value in zip(sizes, concrete):
            if isinstance(size, str):
                shape.append(self.names.bind(size, value, where) or value)
            elif isinstance(size, int):
                shape.append(Fixed(value) if size == value else value)
            else:  # `H // 8`: an expression of named dims, when it has the size that ran
                bound = {n: symbol(n) for n, v in self.names.values.items() if v > 1 and n not in self.names.generated}
                expr = size_expression(size, bound)
                shape.append(expr if expr is not None and self.names.value_of(expr) == value else value)
        return tuple(shape)

    def _set_outputs(self, j: int, outputs: list, shapes: list[Shape], context: Context) -> None:
        self.op_out[j] = list(shapes)
        self.contexts[j] = context
        for meta, shape in zip(outputs, shapes):
            self.by_id[meta.tensor_id] = shape

    def _fall_back(self, j: int, reason: str) -> None:
        self.fallback[j] = reason
        if not self.reason:
            op = self.ops[j]
            self.reason = f"op {j} ({op_names(op.func)[0]}) at {_site_text(op.code, op.lasti)}: {reason}"

    def _op_key(self, func: Any, code: Any, lasti: int, skeleton: tuple, metas: dict) -> Any:
        def shaped(ref: TensorRef) -> tuple:
            meta = metas[ref.id]
            return self._known(ref.id, meta.shape), meta.dtype, meta.device, meta.requires_grad

        try:
            key = (func, code, lasti, _freeze(skeleton, shaped))
            hash(key)
        except (TypeError, KeyError):
            return None
        return key

    # --- root module calls ---------------------------------------------------------------------

    def _root_call(self, r: int, next_root: int) -> None:
        call = self.modules[r]
        first, end = call.first_op, call.end_op if call.end_op is not None else len(self.ops)
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
                if not self.ops[j].failed:
                    self._fall_back(j, why_not)
            if first == end:  # no op to carry the reason (a TorchScript module records none)
                self._note(f"{call.path or call.type}: {why_not}; its shapes are concrete")
            return
        module, args, kwargs, grad, training = entry
        plan, live = self._plan_inputs(module, args, kwargs)
        signature = _Signature.of(self.ops[first:end])
        key = self._call_key(module, args, kwargs, grad, training, plan)
        result = self._call_cache.get(key) if key is not None else None
        if result is None or result.signature != signature:
            result = self._run_call(r, next_root, module, args, kwargs, grad, plan, live, signature)
            if key is not None and not result.out_of_time:
                self._call_cache[key] = result
        self._apply_call(r, next_root, first, end, result, module)

    def _plan_inputs(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[dict[int, Shape], set]:
        """``id(slot) -> canonical shape`` for the call's tensors: named by the user's dims, else by
        jaxtyping hints on ``forward``, else shaped by whatever made them in the block. A dim of
        unknown origin (a tensor made before the block, a size the replay could not follow) is
        named by ``forward``'s own statements (``B, C, H, W = x.shape``), else gets a generated
        name; sizes the block made from plain numbers stay numbers."""
        specs, statements = self._argument_specs(module, args, kwargs)
        plan: dict[int, Shape] = {}
        local: dict[str, sympy.Symbol] = {}  # this call's own names (its forward's) -> symbol
        for position, slot in enumerate(slots((args, kwargs))):
            sizes = tuple(int(v) for v in slot.shape)
            known = self.by_id.get(slot.id)
            shape = known if known is not None and self._matches(known, sizes) else (None,) * len(sizes)
            if id(slot) in specs:
                shape = self._named(slot, shape, *specs[id(slot)], local)
            if None in shape and id(slot) in statements:
                shape = self._named(slot, shape, *statements[id(slot)], local, unknown_only=True)
            if None in shape:
                shape = tuple(
                    size if size is not None else
                    self._generated_symbol(id(module), position, i, value) if value > 1 else value
                    for i, (size, value) in enumerate(zip(shape, sizes))
                )  # fmt: skip
                self.by_id[slot.id] = shape  # the same tensor in a later call keeps these names
            plan[id(slot)] = shape
        return plan, self._free_names(plan.values())

    def _generated_symbol(self, module: int, position: int, dim: int, value: int) -> sympy.Symbol:
        """The generated name of a dim no source names: the same for the same module, argument
        position, dim and size (a loop over batches made before the block keeps ``d0``)."""
        key = (module, position, dim, value)
        found = self._generated.get(key)
        if found is None:
            found = self._generated[key] = self.names.generate(value)
        return found

    def _argument_specs(self, module: nn.Module, args: tuple, kwargs: dict) -> tuple[dict, dict]:
        """``id(slot) -> (DimSpec, where, the forward's own names)`` from the user and jaxtyping, and
        from ``forward``'s statements."""
        option = self.job.option
        applies = self.job.model is None or module is self.job.model
        specs: dict[int, tuple[DimSpec, str]] = {}
        owner = f"{type(module).__name__}.forward"
        try:
            bound = inspect.signature(module.forward).bind_partial(*args, **kwargs).arguments
        except (TypeError, ValueError):
            bound = {}
        statements = {
            id(bound[argument]): (spec, f"`{spec.text}` in {owner}", True)
            for argument, spec in forward_statement_specs(module).items()
            if isinstance(bound.get(argument), TensorSlot)
        }
        for argument, spec in forward_dim_specs(module).items():
            found = _item_at(bound, argument)
            if isinstance(found, TensorSlot):
                specs[id(found)] = (spec, f"{argument} of {owner} (jaxtyping)", True)
        if applies and option.spec is not None:
            first = next(iter(slots((args, kwargs))), None)
            argument = next((a for a, v in bound.items() if v is first), "the first tensor")
            if first is not None:
                specs[id(first)] = (option.spec, f"{argument} of {owner} (dims=)", False)
        if applies:
            for argument, spec in option.by_argument.items():
                value = bound.get(argument)
                if isinstance(value, TensorSlot):
                    specs[id(value)] = (spec, f"{argument} of {owner} (dims=)", False)
                else:
                    what = "is not a tensor" if argument in bound else "is not an argument of this call"
                    self._note(f"dims names {argument!r}, which {what} of {owner}")
        return specs, statements

    def _named(self, slot: TensorSlot, shape: Shape, spec: DimSpec, where: str, forwards: bool,
               local: dict[str, sympy.Symbol], unknown_only: bool = False) -> Shape:  # fmt: skip
        """``shape`` with the dims ``spec`` names (``unknown_only``: the dims of unknown origin);
        ``forwards``: the names are the forward's own, per call (``local`` holds this call's)."""
        dim_names = spec.for_rank(len(slot.shape))
        if dim_names is None:
            self._note(f"{spec.text!r} names {len(spec.named)} dims but {where} has {len(slot.shape)}")
            return shape
        named = list(shape)
        for i, (name, value) in enumerate(zip(dim_names, slot.shape)):
            if name is None or (unknown_only and shape[i] is not None):
                continue
            if name.startswith("#"):  # jaxtyping broadcastable dim: a 1 here is a broadcast
                if value == 1:
                    continue
                name = name[1:]
            found = local.get(name) if forwards else None
            if found is None or self.names.values.get(found.name) != int(value):
                bind = self.names.bind_local if forwards else self.names.bind
                found = bind(name, int(value), f"in {where}")
                if forwards and found is not None:
                    local[name] = found
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
                  plan: dict, live: set, signature: _Signature) -> _CallResult:  # fmt: skip
        call = self.modules[r]
        first, site = call.first_op, (call.code, call.lasti)
        run = FakeRun(self.names)
        guard = EffectGuard(list(all_modules(self.job.model or module)))
        end = call.end_op if call.end_op is not None else len(self.ops)
        values = traced_values(self.ops, self.job.values, first, end)
        recorder = ReplayRecorder(run, guard, self.deadline, lambda done: self._report(first + done), values)
        # the op running now (appended when it returns); the entries' own method: a lambda on the
        # recorder would make the recorder, its guard and run a cycle, freed only by the collector
        guard.position = run.position = recorder.ops.__len__
        groups = concrete_groups(self.ops, self.modules, r, next_root, module, self.fingerprints)
        reuse = BlockReuse(recorder, run.mode, lambda _, offset: groups.get(offset), rename=False)
        made: dict[int, Any] = {}

        def tensor_for(slot: TensorSlot) -> Any:
            if slot.id not in made:
                shape = plan.get(id(slot), tuple(slot.shape))
                made[slot.id] = run.tensor(shape, slot.shape, slot.dtype, slot.device, slot.requires_grad)
            return made[slot.id]

        def module_call(called: nn.Module, call_args: tuple, call_kwargs: dict) -> Any:
            caller = sys._getframe(1).f_back  # the line that called the module (through nn.Module.__call__)
            return guard.unwatched(route_call, called, call_args, call_kwargs, caller)  # the pass's own bookkeeping

        def route_call(called: nn.Module, call_args: tuple, call_kwargs: dict, caller: Any) -> Any:
            original = ts.compiled_original(called)
            if original is not None:  # torch.compile(module): its original, never compiled here
                return _through_compiled(recorder, called, original, call_args, call_kwargs)
            if ts.is_torchscript(called):
                raise StopReplay(f"calls TorchScript module {type(called).__name__}, whose ops the replay "
                                 "does not follow", *_frame_site(caller))  # fmt: skip

            def run_forward() -> Any:  # the recorder watches the module's hooks and forward
                return ts.plain_call(called, call_args, call_kwargs)

            return reuse.call(called, call_args, call_kwargs, run_forward, caller)

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
        twins = _Twins(r, reuse.spliced, groups)
        arguments = {slot.id: plan[id(slot)] for slot in slots((args, kwargs)) if id(slot) in plan}
        result = self._read_call(run, recorder, positions, first, signature, live, site, _static_ids(module), twins,
                                 arguments)  # fmt: skip
        if live & self.names.generated:
            self._alias_generated(run, recorder, module)
        self._stopped(result, module, guard, error, positions)
        if result.out_of_time:
            self.out_of_time = True

        def op_index(position: int | None) -> int | None:
            fake = positions.get(position) if position is not None else None
            if fake is None or fake >= len(result.concrete_of):
                return None
            return first + result.concrete_of[fake]

        self._add_specializations(run, op_index, recorder)
        del recorder.ops[:], recorder.modules[:]  # read: freed now, not by the collector (the run is a cycle)
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
                   signature: _Signature, live: set, site: tuple, static: set[int], twins: _Twins,
                   arguments: dict[int, Shape]) -> _CallResult:  # fmt: skip
        ops = self.ops
        kept = sorted(positions)  # the recorder index of each fake position
        fakes = [recorder.ops[index] for index in kept]
        # Ops of library code (an nn.Linear called as the root) are placed at the line that called
        # the root module: the user's line in the concrete run, the pass's caller in the fake one.
        fake_site = (recorder.modules[0].code, recorder.modules[0].lasti) if recorder.modules else None
        result = _CallResult(aligned=0, signature=signature)
        copies = twins.copies(kept)

        funcs, codes, lastis = signature.funcs, signature.codes, signature.lastis

        def same_op(k: int, p: int) -> bool:
            if k >= len(funcs) or p >= len(fakes):
                return False
            fake = fakes[p]
            fake_at = (fake.code, fake.lasti)
            return fake.func == funcs[k] and (site if fake_at == fake_site else fake_at) == (codes[k], lastis[k])

        k = p = 0  # the next concrete op, the next fake op
        while k < len(signature):
            copy = copies.get(p) if copies else None
            if copy is not None:
                copied = self._copy_twin(run, result, copy, first, k, p, fakes, static, twins.root)
                if copied:
                    k, p = k + copied, p + copied
                    result.aligned = k
                    continue
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
                    if all(len(m.shape) == 0 for m in skipped.outputs):  # a scalar or nothing: no size to name
                        result.ops.append(([None] * len(skipped.inputs), [() for _ in skipped.outputs]))
                    elif (aside := self._indexed_aside(run, skipped, result, first, arguments)) is not None:
                        result.ops.append(aside)
                    else:
                        result.ops.append(None)
                        result.skipped[j] = "the fake run took another path here (the code depends on values)"
                result.concrete_of.extend([k + concrete_skip] * fake_skip)
                k, p = k + concrete_skip, p + fake_skip
                result.aligned = k
                continue
            fake = fakes[p]
            if fake.failed or concrete.failed:
                break
            aligned = self._aligned_op(run, fake, concrete, static)
            if aligned is None:
                result.reason = "its symbolic sizes disagree with the sizes it ran with"
                break
            result.ops.append(aligned)
            result.concrete_of.append(k)
            k = result.aligned = k + 1
            p += 1
        concrete_of = result.concrete_of

        def concrete_position(index: int) -> int:
            """The concrete position of the first kept op at or after a recorder index."""
            fake = bisect.bisect_left(kept, index)
            return concrete_of[fake] if fake < len(concrete_of) else result.aligned

        for k, call in enumerate(recorder.modules):
            end = call.end_op if call.end_op is not None else len(recorder.ops)
            span = (concrete_position(call.first_op), concrete_position(end))
            if span[0] > result.aligned:
                break
            inputs = run.shapes(call.inputs)
            done = span[1] <= result.aligned and not call.failed
            outputs = run.shapes(call.outputs) if done else None
            result.calls[k] = (call.type, span, inputs, outputs)
            if k == 0 and outputs is not None:
                result.outputs = {m.path: s for m, s in zip(call.outputs, outputs)}
        result.contexts = self._op_contexts(run, result, live, concrete_position)
        return result

    def _aligned_op(self, run: FakeRun, fake: OpEntry, concrete: OpEntry, static: set[int]) -> tuple[list, list] | None:
        """An aligned op's symbolic ``(inputs, outputs)``; ``None`` when its outputs' sizes are not the
        concrete ones."""
        outputs = run.shapes(fake.outputs)
        if len(outputs) != len(concrete.outputs) or not all(
            self._matches(s, m.shape) for s, m in zip(outputs, concrete.outputs)
        ):
            return None
        inputs = run.shapes(fake.inputs)
        if len(inputs) != len(concrete.inputs):
            return [None] * len(concrete.inputs), outputs
        # a parameter's or buffer's sizes are numbers by construction
        return [_fixed(s) if m.tensor_id in static else s for s, m in zip(inputs, concrete.inputs)], outputs

    def _indexed_aside(self, run: FakeRun, op: OpEntry, result: _CallResult, first: int,
                       arguments: dict[int, Shape]) -> tuple[list, list] | None:  # fmt: skip
        """The symbolic sizes of ``x[<index written in literals>]`` that only the traced run made,
        where ``x`` has symbolic sizes: the same index, read from the source at the op's
        instruction, on a fake ``x`` (transformers' check of the first and last tokens for
        padding returns early for a fake tensor: ``input_ids[:, [-1, 0]]`` is ``(B, 2)``)."""
        if op.func is not torch.Tensor.__getitem__ or op.code is None or len(op.inputs) != 1 or len(op.outputs) != 1:
            return None
        node = subscript_at(op.code, op.lasti)
        index = literal_index(node.slice) if node is not None else NOT_LITERAL
        tensor = op.inputs[0]
        shape = self._shape_before(tensor, result, first, arguments)
        if index is NOT_LITERAL or shape is None:
            return None
        with run.running(grad=False):
            outputs = [run.shape(run.tensor(shape, tensor.shape, tensor.dtype, tensor.device)[index].shape)]
        return ([shape], outputs) if self._matches(outputs[0], op.outputs[0].shape) else None

    def _shape_before(self, tensor: TensorEntry, result: _CallResult, first: int,
                      arguments: dict[int, Shape]) -> Shape | None:  # fmt: skip
        """The symbolic shape ``tensor`` had in this call so far: an output of an op read before,
        else one of the call's ``arguments`` (tensor id -> shape); ``None`` when unknown or not
        all symbolic."""
        for position in range(len(result.ops) - 1, -1, -1):
            read = result.ops[position]
            if read is None:
                continue
            for meta, shape in zip(self.ops[first + position].outputs, read[1]):
                if meta.tensor_id == tensor.tensor_id:
                    return shape if None not in shape and self._matches(shape, tensor.shape) else None
        shape = arguments.get(tensor.tensor_id)
        return shape if shape is not None and None not in shape and self._matches(shape, tensor.shape) else None

    def _copy_twin(self, run: FakeRun, result: _CallResult, copy: tuple[int, int, Splice], first: int, k: int,
                   p: int, fakes: list[OpEntry], static: set[int], root: int) -> int:  # fmt: skip
        """How many ops, from concrete op ``first + k`` and fake op ``p``, read as their twins did: the fake
        ops from ``p`` are copies of a spliced call's (``copy``: how many, where the ones they copy
        are, the :class:`Splice`), which lined up one to one with the ops of its concrete call, and
        the concrete call running from ``k`` is that call's concrete twin (the same ops, lines and
        sizes: :func:`concrete_groups`). Each op then reads as its twin did, parameters aside
        (checked per op). 0 when any of that does not hold: the ops are then read one by one."""
        count, source, splice = copy
        calls, ops = self.modules, self.ops
        call, twin = calls[root + splice.first_call], calls[root + splice.source_call]
        start = twin.first_op - first
        if (
            call.end_op is None or twin.end_op is None or call.first_op - first != k
            or call.end_op - call.first_op != count or twin.end_op - twin.first_op != count
            or result.concrete_of[source : source + count] != list(range(start, start + count))
        ):  # fmt: skip
            return 0
        reads = result.ops[start : start + count]
        is_static = static.__contains__
        for i, (mine, theirs) in enumerate(zip(ops[first + k : first + k + count], ops[first + start : first + start + count])):
            if list(map(is_static, map(_TENSOR_ID, mine.inputs))) != list(map(is_static, map(_TENSOR_ID, theirs.inputs))):
                reads[i] = self._aligned_op(run, fakes[p + i], mine, static)
        if None in reads:
            return 0
        result.ops.extend(reads)
        result.concrete_of.extend(range(k, k + count))
        return count

    def _op_contexts(self, run: FakeRun, result: _CallResult, live: set, position_of: Any) -> list[Context]:
        """The naming context of each aligned op: a dim torch specialised to a number stands for
        it in the ops from its guard on, unless a tensor from there on is still symbolic in it."""
        count = len(result.ops)
        fixed = sorted(
            ((min(position_of(rep.position), count) if rep.position is not None else 0, rep.name)
             for rep in run.replacements if rep.target.is_number),
            key=lambda item: item[0],
        )  # fmt: skip
        unfixed = Context(frozenset(live))
        if not fixed or not count:
            return [unfixed] * count or [unfixed]
        free_from = self._free_from(result.ops, fixed[0][0])
        standing_from = [(position, name) for position, name in fixed if name not in free_from[position]]
        contexts: list[Context] = []
        made: dict[frozenset[str], Context] = {frozenset(): unfixed}
        context, standing = unfixed, []
        for k in range(count):  # the context changes only where a dim starts to stand
            if len(standing) < len(standing_from) and standing_from[len(standing)][0] <= k:
                while len(standing) < len(standing_from) and standing_from[len(standing)][0] <= k:
                    standing.append(standing_from[len(standing)][1])
                names = frozenset(standing)
                if names not in made:
                    made[names] = Context(frozenset(live - names), names)
                context = made[names]
            contexts.append(context)
        return contexts

    def _free_from(self, read: list[tuple[list, list] | None], start: int) -> dict[int, frozenset[str]]:
        """``k -> the names symbolic in the outputs of ops k..end``, for ``k >= start`` (and the end)
        (ops a spliced call copied share their shapes lists: each list's names are found once)."""
        free_from = {len(read): frozenset()}
        names_of: dict[int, set[str]] = {}
        after: frozenset[str] = frozenset()
        for k in range(len(read) - 1, start - 1, -1):
            outputs = read[k][1] if read[k] is not None else []
            names = names_of.get(id(outputs))
            if names is None:
                names = names_of[id(outputs)] = self._free_names(outputs)
            if not names <= after:
                after = after | names
            free_from[k] = after
        return free_from

    def _alias_generated(self, run: FakeRun, recorder: ReplayRecorder, root: nn.Module) -> None:
        """Names for generated dims from the submodules' ``forward``s: a jaxtyping hint or a
        ``B, C, H, W = x.shape`` on an argument whose dim is exactly that generated dim, once the
        call's guards are applied (a generated dim an op found equal to ``B`` is ``B`` there,
        whichever of the two symbols torch's sizes happened to carry)."""
        modules = {id(m): m for m in root.modules()}
        for call in recorder.modules[1:]:
            module = modules.get(call.module_id)
            if module is None:
                continue
            specs = {**forward_statement_specs(module), **forward_dim_specs(module)}
            if not specs:
                continue
            try:
                parameters = list(inspect.signature(module.forward).parameters)
            except (TypeError, ValueError):
                continue
            owner = f"{type(module).__name__}.forward"
            for meta in call.inputs:
                argument = _argument_at(meta.path, parameters)
                spec = specs.get(argument) if argument is not None else None
                dim_names = spec.for_rank(len(meta.shape)) if spec is not None else None
                for name, size in zip(dim_names or (), (run.canonical(ts.replaced(s)) for s in meta.shape)):
                    if name is not None and isinstance(size, sympy.Symbol) and size.name in self.names.generated:
                        self.names.alias(size.name, name.lstrip("#"), f"in {argument} of {owner}")

    def _initialises_lazy_module(self, j: int) -> bool:
        """Whether op ``j`` ran inside a lazy module's call that the replay finds initialised:
        the ops that made its parameters ran once, in the traced call, and not in the replay."""
        module = self.ops[j].module_index
        return module is not None and self.modules[module].type.startswith("Lazy")

    def _apply_call(self, r: int, next_root: int, first: int, end: int, result: _CallResult,
                    module: nn.Module) -> None:  # fmt: skip
        ops, modules = self.ops, self.modules
        read, contexts, by_id = result.ops, result.contexts, self.by_id
        for k, op in enumerate(ops[first : first + result.aligned]):
            j, found = first + k, read[k]
            if found is None:
                self._fall_back(j, result.skipped[k])
                continue
            self.op_in[j], self.op_out[j] = found
            self.contexts[j] = contexts[k]
            for meta, shape in zip(op.outputs, found[1]):
                by_id[meta.tensor_id] = shape
        static: set[int] | None = None
        for j in range(first + result.aligned, end):
            # Past what the fake run followed: inputs the replay made keep their shapes (the
            # failing op's panel reads (B, C, H, W)); parameters are numbers, the rest unknown.
            if static is None:
                static = _static_ids(module)
            self.op_in[j] = [self._fallback_input(meta, static) for meta in ops[j].inputs]
            self.contexts[j] = Context()
            if not ops[j].failed:
                self._fall_back(j, result.reason or "the fake run stopped before this op")
        matched: dict[tuple[int, tuple], bool] = {}  # (id(shapes), concrete sizes) -> whether they match
        for i in range(r, next_root):
            call = modules[i]
            found = result.calls.get(i - r)
            if found is None or found[0] not in (call.type, call.type.removeprefix("Lazy")):
                continue
            if found[1][0] != call.first_op - first and not all(
                self._initialises_lazy_module(j) for j in range(call.first_op, first + found[1][0])
            ):  # its first ops may be a lazy module's initialisation, which the replay does not repeat
                continue
            last = min(max(found[1][1] - 1, 0), len(result.contexts) - 1)  # the call's last op
            self.call_contexts[i] = result.contexts[last]
            _, _, inputs, outputs = found
            if self._all_match(inputs, call.inputs, matched):
                self.call_in[i] = inputs
            if outputs is not None and self._all_match(outputs, call.outputs, matched):
                self.call_out[i] = outputs
        for meta in modules[r].outputs:  # what the call returned, for the ops after it
            shape = result.outputs.get(meta.path)
            if shape is not None and self._matches(shape, tuple(meta.shape)):
                self.by_id[meta.tensor_id] = shape

    def _all_match(self, shapes: list[Shape], metas: tuple[TensorEntry, ...], matched: dict) -> bool:
        """Whether ``shapes`` are the sizes of ``metas`` at the traced values (``matched`` keeps the
        answers by shapes list and sizes: a spliced call's copies share their lists)."""
        sizes = tuple(map(_SHAPE, metas))
        key = (id(shapes), sizes)
        found = matched.get(key)
        if found is None:
            found = matched[key] = len(shapes) == len(sizes) and all(
                self._matches(s, size) for s, size in zip(shapes, sizes)
            )  # fmt: skip
        return found

    def _fallback_input(self, meta: TensorEntry, static: set[int]) -> Shape | None:
        concrete = tuple(int(v) for v in meta.shape)
        known = self._known(meta.tensor_id, concrete)
        if any(isinstance(size, sympy.Expr) for size in known):
            return known
        return _fixed(concrete) if meta.tensor_id in static else None

    # --- specialisations -----------------------------------------------------------------------

    def _add_specializations(self, run: FakeRun, op_index: Any, recorder: ReplayRecorder | None = None) -> None:
        for replacement in run.replacements:
            target = replacement.target
            if replacement.name in self.names.generated and isinstance(target, sympy.Symbol):
                self.names.alias(replacement.name, target.name, "")  # an op needed d0 == b: d0 is b
                if self.names.printed(replacement.name) == target.name:
                    continue
            index = op_index(replacement.position)
            self.specializations.append(self._specialization(run, replacement, index, recorder))

    def _specialization(self, run: FakeRun, rep: Replacement, index: int | None, recorder) -> Specialization:
        if index is not None:
            entry = self.ops[index]
            op = op_names(entry.func)[0]
            file, line = site(entry.code, entry.lasti)
        else:
            fake = recorder.ops[rep.position] if recorder is not None and rep.position is not None else None
            op = op_names(fake.func)[0] if fake is not None else None
            file, line = rep.file, rep.line
        return specialization(run, rep, self.names.all[rep.name], op, index, file, line)

    # --- the result ----------------------------------------------------------------------------

    def _texts(self, metas: tuple[TensorEntry, ...], shapes: list | None, rendering: Rendering, context: Context | None) -> Exprs:
        """The texts of a record's tensors (each shape rendered once per naming context; a record
        with the shapes list and context of the last one read with them, and its concrete sizes, as
        a spliced call's copies have, reads the texts found then)."""
        key = (id(shapes), id(context))  # the lists and contexts outlive _result
        concrete_sizes = tuple(map(_SHAPE, metas))
        last = self._record_texts.get(key)
        if last is not None and last[0] == concrete_sizes:
            return last[1]
        texts = []
        for k, meta in enumerate(metas):
            concrete = tuple(int(v) for v in meta.shape)
            shape = shapes[k] if shapes is not None and k < len(shapes) else None
            if shape is None or len(shape) != len(concrete):
                shape = None
            shape_key = (shape, shape and tuple(map(type, shape)), concrete, id(context))  # a Fixed 3 is no 3
            text = self._rendered.get(shape_key)
            if text is None:
                text = self._rendered[shape_key] = (
                    rendering.shape(shape, concrete, context) if shape is not None
                    else rendering.by_value(concrete, context)
                )  # fmt: skip
            texts.append(text)
        found = tuple(texts)
        self._record_texts[key] = (concrete_sizes, found)
        return found

    def _note(self, note: str) -> None:
        if note not in self.names.notes:
            self.names.notes.append(note)

    def _result(self) -> SymbolicResult:
        ops, modules, names = self.ops, self.modules, self.names
        read = {id(shapes): shapes for by_index in (self.op_in, self.op_out, self.call_in, self.call_out)
                for shapes in by_index.values()}  # each list once: a spliced call's copies share theirs
        rendering = Rendering.of(names, (shape for shapes in read.values() for shape in shapes))
        result = SymbolicResult(SymbolicStatus(RAN))
        for j, op in enumerate(ops):
            context = self.contexts.get(j)
            result.op_inputs[j] = self._texts(op.inputs, self.op_in.get(j), rendering, context)
            result.op_outputs[j] = self._texts(op.outputs, self.op_out.get(j), rendering, context)
        for i, call in enumerate(modules):
            context = self.call_contexts.get(i)
            result.module_inputs[i] = self._texts(call.inputs, self.call_in.get(i), rendering, context)
            result.module_outputs[i] = self._texts(call.outputs, self.call_out.get(i), rendering, context)
        for name, where in names.fixed.items():
            value = names.values[name]
            result.specializations.append(
                Specialization(name, value, str(value), None, "", 0, f"torch keeps sizes 0 and 1 constant (named {where})")
            )
        seen = set()
        for spec in self.specializations:  # one record per dim, op and guard
            spec = _printed_names(spec, names)
            key = (spec.dim, spec.expr, spec.op_index, spec.reason)
            if key not in seen:
                seen.add(key)
                result.specializations.append(spec)
        result.dims = names.shown
        symbolic = len(self.op_out)
        fallback = len(self.fallback)
        state = RAN if not fallback else PARTIAL if symbolic else FAILED
        reason = self.reason if fallback else ""
        if self.out_of_time:
            late = sum(1 for why in self.fallback.values() if why == self._budget_reason())
            reason = f"{self._budget_reason()}: {late} ops not reached keep their concrete sizes"
        seconds = time.perf_counter() - self.started
        result.status = SymbolicStatus(state, reason, symbolic, fallback, tuple(names.notes), seconds,
                                       self.reused_calls, rendering.divisible)  # fmt: skip
        return result


# --- helpers -----------------------------------------------------------------------------------


_SHAPE, _FUNC, _CODE, _LASTI, _TENSOR_ID = (
    operator.attrgetter(name) for name in ("shape", "func", "code", "lasti", "tensor_id")
)


def _printed_names(spec: Specialization, names: Names) -> Specialization:
    """``spec`` with generated dim names written as the names found for them later."""
    if not names.aliases:
        return spec
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, names.aliases)) + r")\b")

    def printed(text: str) -> str:
        return pattern.sub(lambda m: names.aliases[m.group(1)], text)

    return dataclasses.replace(spec, dim=printed(spec.dim), expr=printed(spec.expr), reason=printed(spec.reason))


def _static_ids(module: nn.Module) -> set[int]:
    """Ids of a module's parameters and buffers (the recorded ids of those tensors)."""
    return {
        id(tensor) for each in all_modules(module) for registry in own_tensors(each) for tensor in registry.values()
        if tensor is not None
    }  # fmt: skip


def _fixed(shape: Shape) -> Shape:
    """A parameter's or buffer's shape: its numbers are :class:`Fixed`."""
    return tuple(Fixed(size) if type(size) is int else size for size in shape)


_ITEM = re.compile(r"(\w+)((?:\[\d+\])*)\Z")
_PATH = re.compile(r"\[(\d+|'\w+')\]((?:\[\d+\])*)\Z")


def _item_at(bound: dict[str, Any], key: str) -> Any:
    """The value at ``key`` (``x``, ``pair[0]``) among a call's bound arguments."""
    match = _ITEM.match(key)
    if match is None:
        return None
    value = bound.get(match.group(1))
    for index in re.findall(r"\d+", match.group(2)):
        if not isinstance(value, (tuple, list)) or int(index) >= len(value):
            return None
        value = value[int(index)]
    return value


def _argument_at(path: str, parameters: list[str]) -> str | None:
    """The ``forward`` argument (``x``, ``pair[0]``) a module call input came from: its path
    ``[0]`` is the first positional argument, ``['x']`` the keyword x, ``[1][0]`` an item."""
    match = _PATH.match(path)
    if match is None:
        return None
    head, rest = match.groups()
    if head.isdigit():
        index = int(head)
        return parameters[index] + rest if index < len(parameters) else None
    return head[1:-1] + rest


def _op_positions(recorded: list) -> dict[int, int]:
    """``recorder index -> position`` of the ops a fake run recorded that a concrete run records
    too: ``torch.sym_float`` and kin run only on symbolic numbers."""
    kept = [index for index, func in enumerate(map(_FUNC, recorded)) if func not in SYMBOLIC_ONLY]
    return dict(zip(kept, range(len(kept))))


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


def _static(op: OpEntry) -> tuple[list, list]:
    """An op's own sizes as its symbolic ones (constants)."""
    return [tuple(m.shape) for m in op.inputs], [tuple(m.shape) for m in op.outputs]


def _call_op(func: Any, args: tuple, kwargs: dict) -> Any:
    """``func(*args, **kwargs)`` on fakes, with torch's Python dispatcher where the op needs it
    (or when it rejects symbolic sizes without it), as the replay recorder does; an op whose
    outputs carry its inputs' sizes is answered without torch (:mod:`.carried`)."""
    made = carried(func, args, kwargs)
    if made is not None:
        return made()
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
    return sum(1 for index in positions if index < recorded)


def _through_compiled(recorder: ReplayRecorder, wrapper: nn.Module, original: nn.Module, args: tuple,
                      kwargs: dict) -> Any:  # fmt: skip
    """A call of a ``torch.compile`` wrapper, recorded as the wrapper's call around its original
    module's (as a traced run records it), without compiling anything."""
    recorder._enter_module(wrapper, args)
    try:
        output = original(*args, **kwargs)
    except BaseException:
        recorder._leave_module(wrapper, args, None)  # as module calls end when they raise
        raise
    recorder._leave_module(wrapper, args, kwargs, output)
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


def _site_text(code: Any, lasti: int) -> str:
    return short_location(*site(code, lasti))


def _short(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    first = text[0] if text else type(error).__name__
    return first if len(first) <= 160 else first[:157] + "..."
