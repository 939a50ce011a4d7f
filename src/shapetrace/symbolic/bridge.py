"""One fake run: a FakeTensorMode with its own ShapeEnv, fake tensors built from canonical shapes,
sizes read back as canonical expressions, and the dims torch specialised on the way; and the
recorder of a fake run (:class:`ReplayRecorder`).

A fresh run is used per root module call and per replayed op, so a guard in one call does not
leak into the next. The user's model is never changed: its parameters, buffers and tensor
attributes stay real tensors, and the replay's recorder hands torch a fake copy of each one an op
receives (``FakeTensorMode`` would otherwise run an op whose tensors are all real for real:
``num_batches_tracked.add_(1)`` would count).
"""

from __future__ import annotations

import collections
import contextlib
import copy
import sys
import threading
import time
import weakref
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import Any

import sympy
import torch

from shapetrace._private import torch_symbolic as ts
from shapetrace._private.module_calls import module_call_frame
from shapetrace.capture.names import NOT_OPS, VALUE_OPS
from shapetrace.capture.recorder import Recorder
from shapetrace.capture.source import user_frame
from shapetrace.contracts.session import suspended as contracts_suspended
from shapetrace.symbolic.carried import carried
from shapetrace.symbolic.dims import Names, Shape, symbol
from shapetrace.symbolic.effects import EffectGuard, StopReplay, kept_apart
from shapetrace.symbolic.naming import SHAPETRACE_ROOT


@dataclass
class Replacement:
    """A symbol torch replaced while running: which, by what, and where (raw)."""

    name: str
    target: sympy.Expr  # canonical
    guards_before: int
    position: int | None  # index of the recorded op running then; None: Python code between ops
    file: str  # the user's line running then
    line: int


def _weak_method(method: Callable) -> Callable:
    """``method``, called through a weak reference to its object: torch keeps a ShapeEnv in
    class-level ``lru_cache``s after the pass, and it must not keep the pass (and with it the
    user's model) alive."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> None:
        bound = ref()
        if bound is not None:
            bound(*args)

    return call


class FakeRun:
    """Fake tensors for one call, sized by canonical expressions over ``names``."""

    def __init__(self, names: Names) -> None:
        self.names = names
        self.mode, self.env = ts.make_fake_mode()
        self._to_env: dict[sympy.Symbol, sympy.Expr] = {}
        self._from_env: dict[sympy.Symbol, sympy.Symbol] = {}
        self.replacements: list[Replacement] = []
        self.position: Callable[[], int | None] = lambda: None
        self.env.on_replacement = _weak_method(self._on_replacement)
        self._fakes: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}  # id(real) -> (fake, real)
        self._canonical: dict[sympy.Expr, Any] = {}  # env expression -> canonical (symbols are all made first)
        self._shapes: dict[int, tuple[Any, Shape]] = {}  # id(sizes) -> (sizes, canonical shape)
        self._metas: dict[int, tuple[Any, list[Shape]]] = {}  # id(metas) -> (metas, canonical shapes)

    # --- building fakes ------------------------------------------------------------------------

    def _env_symbol(self, canonical: sympy.Symbol) -> sympy.Expr:
        found = self._to_env.get(canonical)
        if found is None:
            value = self.names.all[canonical.name]
            found = self._to_env[canonical] = ts.named_symbol(self.env, canonical.name, value)
            if isinstance(found, sympy.Symbol):
                self._from_env[found] = canonical
        return found

    def size(self, size: Any, value: int) -> Any:
        """A SymInt (or int) for one canonical size whose value is ``value`` in this run."""
        if size is None or isinstance(size, int) or not size.free_symbols:
            return value
        expr = size.xreplace({s: self._env_symbol(s) for s in size.free_symbols})
        return ts.symint(self.env, expr, value)

    def tensor(self, shape: Shape, concrete: tuple[int, ...], dtype: torch.dtype, device: torch.device,
               requires_grad: bool = False) -> torch.Tensor:  # fmt: skip
        """A fake tensor with these canonical sizes (unknown dims take their concrete size)."""
        sizes = [self.size(s, v) for s, v in zip(shape, concrete)]
        with self.mode:
            fake = torch.empty(sizes, dtype=dtype, device=device)
            if requires_grad and (dtype.is_floating_point or dtype.is_complex):
                fake.requires_grad_(True)
        return fake

    def copy_object(self, value: Any) -> Any:
        """A deep copy of a non-tensor argument, its tensors made fake (the user's object is never
        touched by the run)."""
        with self.mode:
            return copy.deepcopy(value)

    # --- reading sizes -------------------------------------------------------------------------

    def canonical(self, size: Any) -> Any:
        """A size of a fake tensor as a canonical expression; ``None`` if it depends on data or on
        a symbol that is not a dim name."""
        expr = ts.size_expr(size)
        if isinstance(expr, int):
            return expr
        found = self._canonical.get(expr, self)
        if found is self:
            known = not ts.has_unbacked(expr) and expr.free_symbols <= self._from_env.keys()
            found = self._canonical[expr] = expr.xreplace(self._from_env) if known else None
        return found

    def shape(self, sizes: Any) -> Shape:
        """The canonical shape of a fake tensor's sizes (a spliced block's records share their
        sizes objects with the block they copy: each is read once)."""
        found = self._shapes.get(id(sizes))
        if found is None or found[0] is not sizes:
            found = self._shapes[id(sizes)] = (sizes, tuple(self.canonical(s) for s in sizes))
        return found[1]

    def shapes(self, metas: Any) -> list[Shape]:
        """:meth:`shape` of each recorded tensor of an op or a call (cached per metas object)."""
        found = self._metas.get(id(metas))
        if found is None or found[0] is not metas:
            found = self._metas[id(metas)] = (metas, [self.shape(m.shape) for m in metas])
        return found[1]

    # --- specialisations -----------------------------------------------------------------------

    def _on_replacement(self, env_symbol: sympy.Symbol, target: sympy.Expr, guards: int) -> None:
        canonical = self._from_env.get(env_symbol)
        if canonical is None:
            return
        target_expr = target if target.is_number else target.xreplace(self._from_env)
        if not target_expr.is_number and not target_expr.free_symbols <= set(self._from_env.values()):
            return
        caller = sys._getframe(1)
        frame = user_frame(caller)
        file, line = (frame.f_code.co_filename, frame.f_lineno) if frame else ("", 0)
        position = self.position() if _inside_op(caller, frame) else None
        self.replacements.append(Replacement(canonical.name, target_expr, guards, position, file, line))

    def guard_for(self, replacement: Replacement) -> sympy.Expr | None:
        """The guard that caused ``replacement``, in canonical symbols."""
        guards = ts.guard_exprs(self.env)
        mapping = self._from_env
        wanted = symbol(replacement.name)
        for guard in guards[replacement.guards_before :] + guards[: replacement.guards_before]:
            canonical = guard.xreplace(mapping)
            if wanted in canonical.free_symbols and canonical.free_symbols <= set(mapping.values()):
                return canonical
        return None

    @property
    def specialised(self) -> list[str]:
        """Names replaced by a number in this run."""
        return [r.name for r in self.replacements if r.target.is_number]

    # --- running user code ---------------------------------------------------------------------

    # --- real tensors -----------------------------------------------------------------------

    def fake_of(self, tensor: torch.Tensor) -> torch.Tensor:
        """The fake copy of a real tensor (a parameter, a buffer, a tensor attribute), made once
        per run; the real tensor is only read."""
        found = self._fakes.get(id(tensor))
        if found is None:
            found = self._fakes[id(tensor)] = (ts.fake_of(self.mode, tensor), tensor)
        return found[0]

    def fakes_in(self, args: tuple, kwargs: dict | None) -> tuple[tuple, dict | None]:
        """``args``/``kwargs`` of an op with every real tensor (also inside a list or tuple) as its
        fake copy; the same objects when there is none."""
        values = (*args, *kwargs.values()) if kwargs else args
        if any(_holds_real(v) for v in values):
            args = tuple(self._faked(v) for v in args)
            kwargs = {k: self._faked(v) for k, v in kwargs.items()} if kwargs else kwargs
        return args, kwargs

    def _faked(self, value: Any) -> Any:
        if isinstance(value, torch.Tensor):
            return value if ts.is_fake(value) else self.fake_of(value)
        if type(value) in (list, tuple):
            return type(value)(self._faked(item) for item in value)
        return value

    # --- running user code ---------------------------------------------------------------------

    @contextlib.contextmanager
    def running(self, grad: bool = True) -> Iterator[None]:
        """Run code on this run's fakes, apart from everything else: no other torch mode or global
        hook, no contract check (they ran on the real tensors), this thread's output and warnings
        dropped, random states restored if drawn from."""
        with ts.isolated(), contracts_suspended(), kept_apart(), torch.set_grad_enabled(grad), self.mode:
            yield


def _holds_real(value: Any) -> bool:
    if isinstance(value, torch.Tensor):
        return not ts.is_fake(value)
    if type(value) in (list, tuple):
        return any(isinstance(item, torch.Tensor) and not ts.is_fake(item) for item in value)
    return False


class ReplayRecorder(Recorder):
    """The recorder of a fake run: records as the trace's recorder does, and before each op
    hands torch fake copies of real tensors, stops when the pass is out of time, and pauses the
    effect guard's profile function (torch's own code is not the user's, and is where the time
    goes). Ops whose C++ kernels fix or reject symbolic sizes run with torch's Python dispatcher
    (:func:`ts.python_dispatched`); an op that raises without it is tried once more with it.

    An op called again on tensors of the same sizes, strides, dtypes and devices, with the same
    other arguments, is not run again (torch's sympy work is the pass's cost): its outputs are new
    fake tensors with the sizes and strides torch gave the first time, in the same ShapeEnv.
    In-place and ``out=`` ops, views with an offset, and ops whose sizes depend on data run
    every time."""

    def __init__(self, run: FakeRun, guard: EffectGuard | None = None, deadline: float | None = None,
                 on_op: Callable[[int], None] | None = None, values: dict | None = None) -> None:  # fmt: skip
        super().__init__()
        self.run = run
        self.guard = guard
        self.deadline = deadline
        self.on_op = on_op
        self.traced_values = values or {}  # see traced_values()
        self.memo: dict[Hashable, _Outputs] = {}  # see _memo_key
        self.memo_hits = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 (torch's signature)
        __tracebackhide__ = True
        guard = self.guard
        if guard is not None and guard.live:  # called from the user's code: the op is torch's and the replay's
            return guard.unwatched(self._op, func, types, args, kwargs)
        return self._op(func, types, args, kwargs)

    def _op(self, func: Any, types: Any, args: tuple, kwargs: dict | None) -> Any:
        __tracebackhide__ = True
        if self.deadline is not None and time.perf_counter() > self.deadline:
            raise StopReplay(OUT_OF_TIME, effect=False)
        if self.on_op is not None:  # the progress display writes to stderr: not the forward's doing
            self.on_op(len(self.ops))
        made = carried(func, args, kwargs)  # on the real parameters: their fakes are made for torch only
        if made is not None:  # the outputs carry the inputs' sizes: torch's reasoning adds nothing
            return self._record_as(func, made, types, args, kwargs)
        if func in VALUE_OPS and self.traced_values:
            made = self._traced_value(func)
            if made is not None:  # a value read from data: a fake tensor holds none
                return self._record_as(func, made, types, args, kwargs)
        args, kwargs = self.run.fakes_in(args, kwargs)
        key = _memo_key(func, args, kwargs) if func not in NOT_OPS else None
        if key is not None:
            known = self.memo.get(key)
            if known is not None:  # the same op on the same sizes already ran in this call
                self.memo_hits += 1
                return self._record_as(func, known, types, args, kwargs)
        result = self._run_op(func, types, args, kwargs)
        if key is not None:
            outputs = _Outputs.of(result)
            if outputs is not None:
                self.memo[key] = outputs
        return result

    def _traced_value(self, func: Any) -> Callable | None:
        """What the traced run's op at this line read from data (:func:`traced_values`), in order,
        or ``None`` when it read nothing more there."""
        frame = user_frame(sys._getframe(2))  # above __torch_function__: the line that asked, as the recorder finds it
        queue = self.traced_values.get((func, frame.f_code, frame.f_lasti)) if frame is not None else None
        if not queue:
            return None
        value = queue.popleft()
        return lambda *args, **kwargs: value

    def _record_as(self, func: Any, made: Callable, types: Any, args: tuple, kwargs: dict | None) -> Any:
        """Record ``func`` with ``made`` making its outputs instead of torch (the entry names
        ``func``; the recorder keeps no maker, nor the fake tensors it holds)."""
        result = Recorder.__torch_function__(self, made, types, args, kwargs)
        self.ops.rename(made, func)
        return result

    def _run_op(self, func: Any, types: Any, args: tuple, kwargs: dict | None) -> Any:
        if func in ts.python_dispatched():
            with ts.python_dispatcher():
                return Recorder.__torch_function__(self, func, types, args, kwargs)
        recorded = len(self.ops)
        try:
            return Recorder.__torch_function__(self, func, types, args, kwargs)
        except Exception:
            if len(self.ops) != recorded + 1 or not self.ops[-1].failed:
                raise  # not this op's own failure
        # The op rejected symbolic sizes: again, with torch's Python decompositions.
        del self.ops[recorded:]
        self.failure = self.failure_index = None
        with ts.python_dispatcher():
            return Recorder.__torch_function__(self, func, types, args, kwargs)

    def _enter_module(self, module: Any, args: tuple) -> None:
        """A module call begins, before its own pre-hooks run: from here the effect guard watches
        (the module's hooks and ``forward``: the user's code). Other threads' calls are not the replay's."""
        if threading.get_ident() != self.thread:
            return
        guard = self.guard
        if guard is None:
            self._entered(module, args)
            return
        guard.unwatched(self._entered, module, args)
        guard.watch_from_here(True)

    def _entered(self, module: Any, args: tuple) -> None:
        recorded = len(self.modules)
        super()._enter_module(module, args)
        if recorded in self.indirect_calls and _called_directly(sys._getframe(1)):
            self.indirect_calls.discard(recorded)

    def _exit_module(self, module: Any, args: tuple, kwargs_and_output: tuple) -> None:
        """A module call ended, its own forward hooks run: the guard stops watching."""
        guard = self.guard
        if guard is not None and guard.live:
            guard.watch_from_here(False)
        super()._exit_module(module, args, kwargs_and_output)


OUT_OF_TIME = "the symbolic pass ran out of time"
_PLAIN = (int, float, bool, str, type(None), torch.dtype, torch.device, torch.layout, torch.memory_format)


def traced_values(ops: Any, values: dict[int, Any], first: int, end: int) -> dict[tuple, collections.deque]:
    """The Python values ops ``first`` to ``end`` read from data in the traced run
    (``bool(mask.all())``, ``x.item()``: :data:`~shapetrace.capture.names.VALUE_OPS`), by the op
    and the line that asked, in order. A fake tensor holds no data: the replay answers each with
    the traced run's value, so it takes the branch the traced run took, and a size computed from
    such a value is the traced number."""
    found: dict[tuple, collections.deque] = {}
    for index in sorted(i for i in values if first <= i < end):
        op = ops[index]
        found.setdefault((op.func, op.code, op.lasti), collections.deque()).append(values[index])
    return found


def _memo_key(func: Any, args: tuple, kwargs: dict | None) -> Hashable | None:
    """What an op's outputs' metadata depends on, or ``None`` for an op that must run every time
    (in place, ``out=``, an argument that is not a tensor or a plain value)."""
    name = getattr(func, "__name__", "")
    if name.endswith("_") and not name.endswith("__") or name == "__setitem__" or (kwargs and "out" in kwargs):
        return None
    parts: list[Any] = [func, torch.is_grad_enabled(), torch.get_default_dtype()]
    for value in (*args, *kwargs.items()) if kwargs else args:
        part = _argument_key(value, 0)
        if part is None:
            return None
        parts.append(part)
    return tuple(parts)


def _argument_key(value: Any, depth: int) -> Hashable | None:
    if isinstance(value, torch.Tensor):
        if not ts.is_fake(value) or value.constant is not None:  # a constant's values flow: run it
            return None
        return (ts.size_exprs(value.shape), ts.size_exprs(value.stride()), ts.size_expr(value.storage_offset()),
                value.dtype, value.device, value.requires_grad)  # fmt: skip
    if isinstance(value, _PLAIN):
        return type(value), value
    if isinstance(value, torch.SymInt):
        return "sym", ts.size_expr(value)
    if isinstance(value, (tuple, list)) and depth < 2:
        items = tuple(_argument_key(item, depth + 1) for item in value)
        return None if None in items else (type(value), items)
    return None


class _Outputs:
    """An op's fake outputs, to stand for the outputs of the same op on the same sizes."""

    def __init__(self, kind: type | None, tensors: list[torch.Tensor]) -> None:
        self.kind, self.tensors = kind, tensors

    @classmethod
    def of(cls, result: Any) -> _Outputs | None:
        single = isinstance(result, torch.Tensor)
        items = [result] if single else list(result) if type(result) in (tuple, list) or _is_structseq(result) else None
        if not items or not all(isinstance(t, torch.Tensor) and ts.is_fake(t) for t in items):
            return None
        for tensor in items:
            if ts.size_expr(tensor.storage_offset()) != 0 or tensor.constant is not None or any(
                ts.has_unbacked(ts.size_expr(s)) for s in tensor.shape if isinstance(s, torch.SymInt)
            ):
                return None
        return cls(None if single else type(result), items)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """New tensors with the first outputs' sizes, strides, dtypes and devices (aliases: making
        a fake tensor from symbolic sizes anew costs torch sympy work). Under autograd, views of
        them: a leaf would refuse the in-place ops (``out += identity``) the first outputs allow."""
        made = [torch.ops.aten.alias(tensor) if tensor.requires_grad else ts.alias(tensor) for tensor in self.tensors]
        if self.kind is None:
            return made[0]
        return self.kind(made)


def _is_structseq(value: Any) -> bool:
    return type(value).__module__ == "torch.return_types"


def _called_directly(hook: Any) -> bool:
    """Whether the user's line called the module itself, the replay's module-call routing
    (shapetrace's frames between that line and torch's ``__call__``) aside."""
    called_from = module_call_frame(hook, _max_depth=12)
    if called_from is None:
        return False
    outer = called_from.f_back
    while outer is not None and outer.f_code.co_filename.startswith(SHAPETRACE_ROOT):
        outer = outer.f_back
    return outer is not None and outer is user_frame(called_from)


_OP_CODE = Recorder.__torch_function__.__code__


def _inside_op(frame: Any, user: Any) -> bool:
    """Whether a guard fired inside a recorded op, else in Python code (``if H > W:``)."""
    while frame is not None and frame is not user:
        if frame.f_code is _OP_CODE:
            return True
        frame = frame.f_back
    return False
