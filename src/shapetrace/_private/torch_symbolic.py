"""Private torch APIs of the symbolic pass: fake tensors, the ShapeEnv and its sympy expressions.

The pass runs code on ``FakeTensorMode`` tensors whose sizes are ``SymInt``s, one symbol per
named dim (``ShapeEnv(duck_shape=False)``, ``DimDynamic.DYNAMIC``), and reads each size's sympy
expression. Importing this module imports torch's fake-tensor and symbolic-shape machinery
(``ShapeEnv()`` pulls in ``torch._dynamo``, a few seconds once): only the pass imports it.
tests/private/test_torch_symbolic.py fails loudly when any of this moves.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import importlib.util
import inspect
import os
import re
import sys
import threading
import types
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import sympy
import torch
from torch import nn
from torch._decomp.decompositions import upsample_compute_output_size
from torch._dispatch.python import enable_python_dispatcher, no_python_dispatcher
from torch._meta_registrations import (
    _create_grouped_mm_output_tensor,
    calc_conv_nd_return_shape,
    max_pool2d_checks_and_compute_shape,
    pool2d_shape_check,
    pooling_output_shape,
)
from torch._prims_common import make_contiguous_strides_for, suggest_memory_format
from torch._subclasses.fake_impls import _compute_slice_index
from torch._subclasses.fake_tensor import (
    FakeTensor,
    FakeTensorConfig,
    FakeTensorMode,
    in_kernel_invocation_manager,
)
from torch.fx.experimental import symbolic_shapes as _symbolic_shapes
from torch.fx.experimental.sym_node import SymNode
from torch.fx.experimental.symbolic_shapes import (
    DimDynamic,
    ShapeEnv,
    canonicalize_bool_expr,
    free_unbacked_symbols,
    guard_or_false,
    statically_known_true,
)
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._sympy import functions as sympy_functions
from torch.utils._sympy.solve import try_solve
from torch.utils._sympy.value_ranges import bound_sympy

from shapetrace._private.module_calls import watchers_set_aside

__all__ = [
    "FakeTensor",
    "FakeTensorMode",
    "FloorDiv",
    "RecordingShapeEnv",
    "alias",
    "avg_pool2d_output_size",
    "cat_output_size",
    "check_view_count",
    "compiled_entry_codes",
    "compiled_original",
    "constant_pad_output_size",
    "contiguous_stride_exprs",
    "conv_output_size",
    "grouped_mm_output",
    "guard_exprs",
    "has_unbacked",
    "is_fake",
    "is_torchscript",
    "isolated",
    "make_fake_mode",
    "max_pool2d_output_size",
    "module_calls_through",
    "named_symbol",
    "plain_call",
    "pool1d_output_size",
    "python_dispatched",
    "python_dispatcher",
    "replaced",
    "warm_up",
    "size_hint",
    "size_expr",
    "scratch",
    "size_exprs",
    "sliced",
    "suggest_memory_format",
    "symint",
    "upsample_output_size",
    "sympy_functions",
]

FloorDiv = sympy_functions.FloorDiv  # torch's `a // b` on sizes
# what torch's static evaluation is asked about sizes: relations and their combinations
_DECIDABLE = (sympy.core.relational.Relational, sympy.And, sympy.Or, sympy.Not)


@functools.lru_cache(maxsize=4096)
def _solved(expr: sympy.Basic, thing: sympy.Basic, trials: int = 5, floordiv_inequality: bool = True) -> Any:
    """torch's ``try_solve`` (``expr`` as ``thing <op> rhs``, or ``None``): sympy on its arguments
    alone, a pure function (its debug log aside: the pass drops its records), remembered."""
    return try_solve(expr, thing, trials, floordiv_inequality)


@functools.lru_cache(maxsize=4096)
def _canonical(expr: sympy.Basic) -> sympy.Basic:
    """torch's ``canonicalize_bool_expr`` (a relation as ``lhs <= rhs`` or ``lhs < rhs`` with the
    terms moved to one side; ``And``/``Or``/``Not`` through sympy's ``to_cnf`` first): sympy on
    the expression alone, a pure function, remembered. Each convolution's kernel-fit check and
    each pool's ``outputHeight >= 1`` is canonicalised when torch evaluates it (~0.1 ms each,
    most of it ``to_cnf``), and the same checks come back in each pass of the same code."""
    return canonicalize_bool_expr(expr)


def _with_memos(function: Callable) -> Callable:
    """Torch's ``function`` of ``symbolic_shapes`` (its own code), calling :func:`_solved` for
    ``try_solve`` and :func:`_canonical` for ``canonicalize_bool_expr``. It reads
    ``symbolic_shapes``' names as they were when this module was imported: a name rebound there
    later (a monkeypatch) is not seen (tests/private checks they are torch's at import)."""
    names = {**vars(_symbolic_shapes), "try_solve": _solved, "canonicalize_bool_expr": _canonical}
    code = function.__code__
    made = types.FunctionType(code, names, code.co_name, function.__defaults__, function.__closure__)
    made.__kwdefaults__ = function.__kwdefaults__
    made.__qualname__, made.__doc__ = function.__qualname__, function.__doc__
    return made


# Torch's static evaluation of a relation (``ShapeEnv._maybe_evaluate_static``: its code, under its
# cache that is cleared when the ShapeEnv's facts change), canonicalising through :func:`_canonical`.
# (What it hands on, ``_maybe_evaluate_static_worker``, torch remembers for the process itself.)
_torchs_static = _symbolic_shapes._lru_cache(_with_memos(ShapeEnv._maybe_evaluate_static.__wrapped__))


class RecordingShapeEnv(ShapeEnv):
    """A ShapeEnv that tells ``on_replacement(symbol, target, guards_so_far)`` each time torch fixes a
    symbol to a number or to another expression (a dim "specialised" by a guard), that decides
    relations from its value ranges first (:meth:`_maybe_evaluate_static`), and that does not
    simplify a fact again while what torch's simplification reads is unchanged (:meth:`simplify`)."""

    on_replacement: Callable[[sympy.Symbol, sympy.Expr, int], None] | None = None

    def evaluate_sym_node(self, *args: Any, **kwargs: Any) -> sympy.Basic:
        """Torch's evaluation of a guard (``if h != 64:``, ``int(n // p)`` in the user's code),
        without the thread's profile function: it is torch's and sympy's code, thousands of calls
        that the replay's effect guard (``sys.setprofile``) would otherwise see one by one."""
        profile = sys.getprofile()
        if profile is None:
            return super().evaluate_sym_node(*args, **kwargs)
        sys.setprofile(None)
        try:
            return super().evaluate_sym_node(*args, **kwargs)
        finally:
            sys.setprofile(profile)

    def _set_replacement(self, a: sympy.Symbol, tgt: sympy.Expr, msg: str) -> None:
        known = a in self.replacements
        super()._set_replacement(a, tgt, msg)
        if not known and a in self.replacements and self.on_replacement is not None:
            self.on_replacement(a, self.replacements[a], len(self.guards))

    def _maybe_evaluate_static(self, expr: sympy.Basic, *, unbacked_only: bool = False, compute_hint: bool = False,
                               size_oblivious: bool = False, axioms: Any = None, var_to_range: Any = None) -> Any:  # fmt: skip
        """Torch's static evaluation (a relation is decided without a guard when the ShapeEnv's
        facts decide it), tried first on the relation as it is, from the value ranges of its
        symbols alone. Torch's version expands and simplifies first, which costs 10-100 ms of
        sympy on the sizes a few strided convs and pools make (``numel < 2``, ``Eq(numel, 0)``
        on ``C*B*((H - 1)//4 + 1)*...``, asked again for every channel count), and then asks the
        same value ranges. Both are sound for every size the ranges allow, so when this decides,
        torch decides the same; otherwise torch's own evaluation runs. For :meth:`simplify`'s
        memo, a plain evaluation of a relation notes the relation and its answer (and what
        torch's evaluation asks in turn is not noted as the simplify's), any other evaluation
        that the simplify asked one it cannot replay."""
        reads = self._reads
        plain = not (unbacked_only or compute_hint or axioms or var_to_range)
        if plain and not size_oblivious and isinstance(expr, _DECIDABLE):
            decided = self._decided_by_ranges(expr)
            if decided is None:
                self._reads = None  # what torch's evaluation asks is its own, not the simplify's
                try:
                    decided = _torchs_static(self, expr)
                finally:
                    self._reads = reads
            if reads is not None:
                reads.evaluated.append((expr, decided))
            return decided
        if reads is not None:
            reads.static = True
        return _torchs_static(self, expr, unbacked_only=unbacked_only, compute_hint=compute_hint,
                              size_oblivious=size_oblivious, axioms=axioms, var_to_range=var_to_range)  # fmt: skip

    # torch clears its static-evaluation cache through this attribute when a value range narrows
    _maybe_evaluate_static.cache_clear = _torchs_static.cache_clear  # type: ignore[attr-defined]

    # Torch's narrowing of value ranges after each guard (``_refine_ranges``), as torch's code,
    # solving the guard for each of its symbols once per process: torch's ``try_solve`` is sympy
    # on the guard and symbol alone, and the same guards come back in each pass of the same code
    # (a fifth of a warm MobileViT pass).
    _refine_ranges = _with_memos(ShapeEnv._refine_ranges)

    def _log_guard(self, prefix: str, g: sympy.Basic, forcing_spec: bool) -> None:
        """Torch's logs each guard it adds, and first builds the structured record: the guard's
        text and two stack walks (a third of the time of a guard on nested floor divisions). The
        pass drops its thread's log records (``symbolic/effects.py``), and with them the record
        that would tell torch's lazy trace handler to remove itself: the pass's guards are not
        logged."""

    def _get_user_frame(self) -> types.FrameType | None:
        """Torch's: the innermost frame outside torch's symbolic-shape machinery, where torch says
        a symbol was made or a guard added (in its messages). The same frame, from the same files
        (:func:`uninteresting_files`), but found without importing the modules torch's own list
        imports to name them (``torch.export``, aot_autograd, networkx, inductor's code cache:
        ~0.3 s on a process's first symbol)."""
        files = uninteresting_files()
        frame = sys._getframe(1)  # torch's starts at its own frame, in a file it skips
        while frame is not None and frame.f_code.co_filename in files:
            frame = frame.f_back
        return frame

    def simplify(self, expr: Any, size_oblivious: bool = False, **options: Any) -> Any:
        """Torch's ``simplify``, with an exact memo shared by the pass's ShapeEnvs. Torch caches
        ``simplify`` per ShapeEnv and clears that cache each time its divisibility facts or
        replacements change; each time the divisibility facts grow, its ``_maybe_evaluate_static``
        simplifies again every fact (``axioms``) holding a floor division
        (``resimplify_floor_div``: a ``FloorDiv`` may have become exact): every fact is
        simplified again each time, quadratic in the guards (MobileViT: 25 times ~800 facts), and
        every guard a view or reshape asks is simplified again in each pass.

        Why the memo is exact: torch's ``simplify`` (not size-oblivious) is sympy on ``expr``
        (pure) plus four reads of the ShapeEnv: ``self.replace(e)``, ``self._update_divisible()``,
        ``self._maybe_evaluate_static(Ge(x, 1))`` (for each ``Max(1, x)``; ``Ge(x, 0)`` for a
        ``Max(0, x)``) and ``e in self.divisible``, in that order, where each ``e`` asked is
        ``expr``'s expansion or a ``Mod`` of two of its parts (no symbol ``expr`` has not). When
        torch runs it, this records what it asked (``replace`` sees each ``e``) and each relation
        ``_maybe_evaluate_static`` decided with its answer (that evaluation's own reads are its
        own). A result is kept only when that run asked no other ``_maybe_evaluate_static`` and
        torch had replaced none of ``expr``'s symbols (``replace`` then returns each ``e`` itself,
        with no side effect). It is reused, in any ShapeEnv, only while that ShapeEnv replaces
        none of those symbols, its ``_maybe_evaluate_static`` (asked again, in the same order,
        as torch's run would ask it) answers each relation as it did, and, after the same
        ``_update_divisible()`` call the run made (torch caches it per state), each ``e`` is in
        its ``divisible`` exactly when it was: every read then answers as it did, so torch's run
        would take the same steps to the same result (and a result torch's own cache of
        ``simplify`` holds is one such run: torch keeps it for one state of ``replacements`` and
        ``divisible``). Anything else is torch's own call, and so is every call where torch's
        ``simplify`` reads the ShapeEnv otherwise (:data:`SIMPLIFY_MEMO`: torch 2.15's reads the
        value ranges itself) or is given more than the expression (its later ``axioms=``).
        Measured on MobileViT: a warm pass 2.65 s -> 1.33 s of CPU with a memo of facts without
        ``Max``, per ShapeEnv; 1.22 s -> 0.57 s with this one. tests/private/test_floor_div_resimplification.py compares it with
        torch's."""
        if size_oblivious or options or not SIMPLIFY_MEMO or not isinstance(expr, sympy.Basic):
            return super().simplify(expr, size_oblivious, **options)
        symbols = _symbol_set(expr)
        replacements = self.replacements
        if any(symbol in replacements for symbol in symbols):
            return super().simplify(expr, size_oblivious)
        memo = _simplified
        outer = self._reads
        if outer is not None:
            outer.static = True  # a simplify inside another's read: the outer keeps nothing
        known = memo.get(expr)
        if known is not None:
            result, updates_divisible, asked, evaluated = known
            if all(self._maybe_evaluate_static(relation) == was for relation, was in evaluated):
                if updates_divisible:
                    self._update_divisible()
                divisible = self.divisible
                if all((e in divisible) is was for e, was in asked):
                    return result
        reads = self._reads = _Reads()
        try:
            result = super().simplify(expr, size_oblivious)
        finally:
            self._reads = outer
        if reads.asked and not reads.static and not any(symbol in replacements for symbol in symbols):
            divisible = self.divisible
            asked = [e for e in dict.fromkeys(reads.asked) if _symbol_set(e) <= symbols]
            if len(memo) >= _SIMPLIFIED_MAX:
                memo.clear()
            asked_now = tuple((e, e in divisible) for e in asked)
            memo[expr] = (result, reads.updates_divisible, asked_now, tuple(reads.evaluated))
        return result

    _reads: _Reads | None = None  # what the simplify running in this ShapeEnv asked (see simplify)

    def replace(self, expr: Any) -> Any:
        """Torch's; the expressions asked are noted for :meth:`simplify`'s memo."""
        reads = self._reads
        if reads is not None:
            reads.asked.append(expr)
        return super().replace(expr)

    def _update_divisible(self) -> None:
        """Torch's; the call is noted for :meth:`simplify`'s memo."""
        reads = self._reads
        if reads is not None:
            reads.updates_divisible = True
        return super()._update_divisible()

    def bound_sympy(self, expr: sympy.Expr, size_oblivious: bool = False) -> Any:
        """Torch's value range of ``expr``: ``bound_sympy`` of it and its symbols' ranges, a pure
        function of those (:func:`_bounds`: cached across ShapeEnvs). Torch asks it for both
        operands of every ``%`` on sizes (``(7 - W % 7) % 7``: half of a Swin's arithmetic on
        sizes). Size-oblivious bounds (which widen the ranges of sizes) are torch's own call."""
        if size_oblivious:
            return super().bound_sympy(expr, size_oblivious)
        symbols = _free_symbols(expr)
        ranges = self.var_to_range
        return _bounds(expr, symbols, tuple(ranges.get(symbol) for symbol in symbols))

    def get_implications(self, e: sympy.Basic) -> tuple:
        """Torch's facts that follow from a guard ``e`` (itself, its negation false, the relations
        it implies), each in torch's canonical form: sympy on ``e`` alone (torch's code reads no
        state of its ShapeEnv: :data:`IMPLICATIONS_MEMO`), cached across ShapeEnvs as torch caches
        it per ShapeEnv. A quarter of a guard's cost (the pools' ``outputHeight >= 1``, the views'
        element counts), paid again in each pass of the same model."""
        if not IMPLICATIONS_MEMO:
            return super().get_implications(e)
        return _implications(e)

    def _decided_by_ranges(self, expr: sympy.Basic) -> sympy.Basic | None:
        """``true``/``false`` when the value ranges of ``expr``'s symbols decide it, else ``None``
        (also for a symbol torch replaced: its replacement is torch's to apply)."""
        symbols = _free_symbols(expr)
        ranges = self.var_to_range
        if any(name in self.replacements or name not in ranges for name in symbols):
            return None
        return _decide(expr, symbols, tuple(ranges[name] for name in symbols))


# torch.fx.experimental.symbolic_shapes.uninteresting_files(): the modules it names (it imports them)
_UNINTERESTING_MODULES = (
    "torch.fx.experimental.symbolic_shapes", "torch.export._trace", "torch.fx.experimental.recording",
    "torch.fx.experimental.sym_node", "torch.fx.interpreter", "torch.fx._symbolic_trace", "torch",
    "torch._compile", "torch._dynamo.eval_frame", "torch._inductor.sizevars", "torch._library.custom_ops",
    "torch._library.fake_impl", "torch._subclasses.meta_utils", "torch._subclasses.fake_tensor",
    "torch._logging._internal", "torch._logging.structured",
)  # fmt: skip


@functools.cache
def uninteresting_files() -> frozenset[str]:
    """The files torch's ``uninteresting_files()`` lists (frames a ShapeEnv looks past for the
    user's line), found from the module names: the modules are not imported."""
    import torch._dynamo.guards  # imported with torch._dynamo, which ShapeEnv() imports

    files = {importlib.util.find_spec(name).origin for name in _UNINTERESTING_MODULES}
    operators = os.path.dirname(importlib.util.find_spec("torch._higher_order_ops").origin)
    files.update(glob.glob(os.path.join(operators, "*.py")))
    return frozenset(files | torch._dynamo.guards.uninteresting_files() | {"<string>"})


def _simplify_reads_as_proven() -> bool:
    """Whether torch's ``ShapeEnv.simplify`` reads the ShapeEnv only as the memo of
    :meth:`RecordingShapeEnv.simplify` assumes (torch 2.13; not 2.15): through ``replace``,
    ``_update_divisible``, ``_maybe_evaluate_static`` of ``Ge(b, 1)`` and ``Ge(b, 0)`` before
    ``divisible``, and given only the expression; and its ``resimplify_floor_div`` asks
    ``simplify`` of each fact. Read from torch's source once per process."""
    try:
        source = inspect.getsource(inspect.unwrap(ShapeEnv.simplify))
        static = inspect.getsource(inspect.unwrap(ShapeEnv._maybe_evaluate_static))
    except (OSError, TypeError):  # no source (a frozen install): torch's own simplify
        return False
    parameters = list(inspect.signature(inspect.unwrap(ShapeEnv.simplify)).parameters)
    return (
        parameters == ["self", "expr", "size_oblivious"]
        and set(re.findall(r"self\.(\w+)", source)) == {"replace", "_update_divisible", "_maybe_evaluate_static", "divisible"}
        and re.findall(r"self\._maybe_evaluate_static\(([^\n]*)\)", source) == ["sympy.Ge(b, 1)", "sympy.Ge(b, 0)"]
        and source.index("_maybe_evaluate_static") < min(source.index("self._update_divisible()"), source.index("self.divisible"))
        and "self.simplify(k)" in static and "resimplify_floor_div(self.axioms)" in static
    )  # fmt: skip


# RecordingShapeEnv.simplify keeps its memo only where torch's simplify is the one it was proven for
SIMPLIFY_MEMO = _simplify_reads_as_proven()
# expression -> what torch's simplify of it gave and read, for every ShapeEnv (RecordingShapeEnv.simplify):
# (result, whether it called _update_divisible(), ((e, e in divisible), ...), ((relation, answer), ...))
_simplified: dict = {}
_SIMPLIFIED_MAX = 1 << 15  # then it starts again (a pass holds a few thousand)


class _Reads:
    """What one run of torch's ``ShapeEnv.simplify`` asked of its ShapeEnv
    (:meth:`RecordingShapeEnv.simplify`)."""

    __slots__ = ("asked", "evaluated", "static", "updates_divisible")

    def __init__(self) -> None:
        self.asked: list = []  # each expression given to replace(), in order
        # each relation it asked _maybe_evaluate_static to decide (plainly), and the answer
        self.evaluated: list = []
        self.static = False  # it asked _maybe_evaluate_static otherwise, or ran another simplify
        self.updates_divisible = False  # it called _update_divisible()


@functools.lru_cache(maxsize=8192)
def _symbol_set(expr: sympy.Basic) -> frozenset:
    """``expr``'s free symbols (a pure function of the expression, asked of every fact again and again)."""
    return frozenset(expr.free_symbols)


@functools.lru_cache(maxsize=4096)
def _free_symbols(expr: sympy.Basic) -> tuple[sympy.Symbol, ...]:
    return tuple(sorted(expr.free_symbols, key=str))


def _reads_no_state(method: Callable) -> bool:
    """Whether torch's ``method`` of ``ShapeEnv`` reads nothing of ``self`` (its source names
    ``self`` in its signature only): a pure function of its arguments."""
    source = inspect.getsource(inspect.unwrap(method))
    return source.count("self") == 1


# torch's ShapeEnv.get_implications is cached across ShapeEnvs where it reads no state of its own
IMPLICATIONS_MEMO = _reads_no_state(ShapeEnv.get_implications)


@functools.lru_cache(maxsize=4096)
def _implications(e: sympy.Basic) -> tuple:
    """``ShapeEnv.get_implications(e)``: torch's code, which reads no state of its ShapeEnv."""
    return inspect.unwrap(ShapeEnv.get_implications)(None, e)


@functools.lru_cache(maxsize=4096)
def _bounds(expr: sympy.Expr, symbols: tuple, symbol_ranges: tuple) -> Any:
    """``bound_sympy(expr, ranges)`` (torch's, a pure function of its arguments)."""
    return bound_sympy(expr, dict(zip(symbols, symbol_ranges)))


@functools.lru_cache(maxsize=4096)
def _decide(relation: sympy.Basic, symbols: tuple, symbol_ranges: tuple) -> sympy.Basic | None:
    """The truth value of ``relation`` for every value its ``symbols`` take in their ranges, else
    ``None`` (a pure function of its arguments: cached across ShapeEnvs, as torch caches its own
    static evaluation).
    First from the ranges alone; then with each ``Max(1, x)`` (``Max(0, x)``) whose ``x`` the
    ranges keep at or above 1 (0) written ``x``, as torch's ``ShapeEnv.simplify`` writes it (the
    contiguous strides of a fake tensor are ``Max(1, W)``, ``Max(1, H)*Max(1, W)``): a stride
    check ``Ne(Max(1, H)*Max(1, W), H*W)`` is then false as written."""
    ranges = dict(zip(symbols, symbol_ranges))
    bound = bound_sympy(relation, ranges)
    if bound.is_singleton():
        return bound.lower
    floors = {}
    for atom in relation.atoms(sympy_functions.Max):  # torch's Max, as ShapeEnv.simplify finds it
        if len(atom.args) == 2 and atom.args[0] in (0, 1):
            low, rest = atom.args
            if bound_sympy(rest, ranges).lower >= low:
                floors[atom] = rest
    if not floors:
        return None
    simpler = relation.xreplace(floors)
    if simpler is sympy.true or simpler is sympy.false:
        return simpler
    bound = bound_sympy(simpler, ranges)
    return bound.lower if bound.is_singleton() else None


def make_fake_mode() -> tuple[FakeTensorMode, RecordingShapeEnv]:
    """A fake-tensor mode with its own ShapeEnv: no duck sizing (two dims of equal size keep two
    symbols), real tensors allowed as inputs (they are treated as constants)."""
    env = RecordingShapeEnv(duck_shape=False)
    mode = FakeTensorMode(shape_env=env, allow_non_fake_inputs=True)
    # The dispatch cache costs more than it saves on short symbolic runs (measured ~20%).
    mode.cache_enabled = False
    return mode, env


def _source(name: str):
    from torch._dynamo.source import ConstantSource  # imported by ShapeEnv() anyway

    return ConstantSource(name)


def named_symbol(env: ShapeEnv, name: str, value: int) -> sympy.Expr:
    """A new dynamic symbol for the dim ``name`` of size ``value`` (torch returns the integer
    itself for 0 and 1, which it always treats as constants)."""
    return env.create_symbol(value, _source(name), dynamic_dim=DimDynamic.DYNAMIC)


def symint(env: ShapeEnv, expr: sympy.Expr, value: int) -> Any:
    """A ``SymInt`` (or an int) for ``expr``, whose size is ``value`` in this run."""
    if isinstance(expr, (int, sympy.Integer)) or expr.is_number:
        return int(expr)
    return env.create_symintnode(expr, hint=value)


def size_expr(size: Any) -> sympy.Expr | int:
    """The sympy expression of one size as torch computed it (before later replacements), or the int."""
    if isinstance(size, torch.SymInt):
        node = size.node
        expr = node._expr
        return int(expr) if expr.is_number else expr
    return int(size)


def replaced(size: Any) -> Any:
    """``size`` with the replacements its ShapeEnv made since it was computed applied (``s7`` once
    a guard fixed ``s7 == s44``), as torch's own size arithmetic applies them: the same object
    when none applies, an int when it became a number."""
    if not isinstance(size, torch.SymInt):
        return size
    node = size.node
    expr = node.expr  # torch's: _expr with the ShapeEnv's replacements applied (cached per version)
    if expr is node._expr or expr == node._expr:
        return size
    return int(expr) if expr.is_number else node.shape_env.create_symintnode(expr, hint=node.hint)


def size_exprs(sizes: Any) -> tuple:
    """:func:`size_expr` of each size (a shape or strides)."""
    return tuple(size.node._expr if isinstance(size, torch.SymInt) else int(size) for size in sizes)


@functools.lru_cache(maxsize=4096)
def has_unbacked(expr: sympy.Expr) -> bool:
    """Whether ``expr`` holds a data-dependent size (``u0``: the size of ``x[mask]``, ``nonzero``).
    Cached: a pure function of the expression, asked of every size of every op the pass reads
    (torch's answer walks the expression's symbols and their names each time)."""
    return bool(free_unbacked_symbols(expr))


def guard_exprs(env: ShapeEnv) -> list[sympy.Expr]:
    """The guards torch recorded, in order (``Eq(s0, 512)``, ``s1 >= 32``, ...)."""
    return [guard.expr for guard in env.guards]


def alias(tensor: FakeTensor) -> FakeTensor:
    """A new fake tensor with ``tensor``'s sizes, strides, dtype and device, sharing its (meta)
    storage and not requiring grad: torch's own ``detach`` of a fake tensor (``fast_detach``: the
    meta ``detach`` in the fake mode's kernel invocation), without the dispatch around it (~15 µs,
    against ~60-120 µs for ``tensor.detach()``, and ~0.2-1 ms for a new ``torch.empty`` on
    symbolic sizes, whose strides are symbolic arithmetic)."""
    mode = tensor.fake_mode
    with no_python_dispatcher(), in_kernel_invocation_manager(mode):
        made = torch.ops.aten.detach.default(tensor)
    return _fake(mode, made, tensor.device)


def strided_alias(tensor: FakeTensor, sizes: list, strides: list, offset: Any) -> FakeTensor:
    """A new fake tensor with these sizes, strides and storage offset on ``tensor``'s (meta)
    storage, not requiring grad, made as :func:`alias` is (torch's meta ``as_strided`` without the
    fake mode's dispatch around it: ~0.05-0.2 ms against 0.35-0.6 ms). Not a view for autograd:
    for tensors that need no grad."""
    mode = tensor.fake_mode
    with no_python_dispatcher(), in_kernel_invocation_manager(mode):
        made = torch.ops.aten.as_strided.default(tensor, sizes, strides, offset)
    return _fake(mode, made, tensor.device)


# fake mode -> {device: (its fake device as torch writes it, the attributes torch's FakeTensor
# constructor gives a new fake tensor on it but its mode)} (a value must not hold its key)
_fake_states: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _fake(mode: FakeTensorMode, made: torch.Tensor, device: torch.device) -> FakeTensor:
    """``FakeTensor(mode, made, device)`` for a new meta tensor ``made``, without repeating the
    constructor's per-call Python (~17 µs of the ~30 µs of an alias: its arguments' checks, the
    device's normalisation and fifteen ``setattr`` through five memo descriptors, all giving the
    same attributes to every new tensor of the mode and device). The first tensor of a mode and
    device is torch's own; the next ones are made by the same ``Tensor._make_subclass`` call and
    mutable-data-pointer flag, and get the first one's attributes (its device, ``constant``, the
    memos, ...: none depends on the tensor). With ``FakeTensorConfig.debug`` (a traceback per
    tensor) every tensor is torch's."""
    states = _fake_states.get(mode)
    known = states.get(device) if states is not None else None
    if known is None or FakeTensorConfig.debug:
        fake = FakeTensor(mode, made, device)
        if not FakeTensorConfig.debug:
            state = {name: value for name, value in vars(fake).items() if value is not mode}
            _fake_states.setdefault(mode, {})[device] = (fake.fake_device, state)
        return fake
    fake_device, state = known
    fake = torch.Tensor._make_subclass(FakeTensor, made, made.requires_grad, dispatch_device=True,
                                       device_for_backend_keys=fake_device)  # fmt: skip
    if mode._allow_unsafe_data_ptr_access:
        torch._C._set_warn_deprecated_on_mutable_data_ptr(fake)
    else:
        torch._C._set_throw_on_mutable_data_ptr(fake)
    vars(fake).update(state)
    fake.fake_mode = mode
    return fake


def scratch(mode: FakeTensorMode) -> dict:
    """A dict of the caller's that lives as long as the fake mode: what it keeps may hold the mode
    (fake tensors do), and both are freed together (a map keyed by the mode would keep it alive)."""
    return mode.__dict__.setdefault("_shapetrace_scratch", {})


def empty(
    mode: FakeTensorMode, sizes: list, dtype: torch.dtype, device: torch.device,
    memory_format: torch.memory_format = torch.contiguous_format,
) -> FakeTensor:  # fmt: skip
    """A new fake tensor laid out in ``memory_format``, made as the fake mode makes ``torch.empty``'s
    (on ``meta``, then given its fake device) without the dispatch around it.

    Torch's meta ``empty`` on symbolic sizes does 14 SymInt operations for a 4-d tensor, each a
    call into Python and sympy (~0.6-1.5 ms in all): a check that each size is at least 0, the
    storage size ``itemsize * numel``, and the strides. A contiguous tensor whose sizes were made
    before in this process (an earlier pass) is made with only the strides' operations
    (:func:`_contiguous_empty`): the same tensor, for about half the cost."""
    storage_key = _storage_key(mode.shape_env, sizes, dtype, memory_format)
    if storage_key is not None:
        storage_size = _storage_sizes.get(storage_key)
        if storage_size is not None:
            return _contiguous_empty(mode, sizes, dtype, device, storage_size)
    with no_python_dispatcher(), in_kernel_invocation_manager(mode):
        made = torch.ops.aten.empty.memory_format(sizes, dtype=dtype, device="meta", memory_format=memory_format)
    if storage_key is not None:
        if len(_storage_sizes) >= _STORAGE_SIZES_KEPT:
            _storage_sizes.clear()  # bounded; one call, safe with passes in other threads
        _storage_sizes[storage_key] = size_expr(made.untyped_storage().nbytes())
    return _fake(mode, made, device)


# (sizes' expressions, itemsize) -> the expression of the storage size (bytes) torch's meta
# `empty` computed for a contiguous tensor of these sizes: a pure function of its key
_storage_sizes: dict[tuple, Any] = {}
_STORAGE_SIZES_KEPT = 4096


class _Shell(torch.Tensor):
    """The carrier of sizes and a storage size for :func:`_contiguous_empty`: made by
    ``_make_wrapper_subclass`` (which asks for a ``__torch_dispatch__``) and never dispatched."""

    @classmethod
    def __torch_dispatch__(cls, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        raise AssertionError(f"{func} dispatched on a shell tensor")


def _contiguous_empty(mode: FakeTensorMode, sizes: list, dtype: torch.dtype, device: torch.device,
                      storage_size: sympy.Expr) -> FakeTensor:  # fmt: skip
    """Torch's fake ``empty(sizes, dtype)`` in the contiguous layout, given the storage size torch
    computed for these sizes before (a pure function of them, ``itemsize * numel``).

    Torch's meta ``empty`` (``at::detail::empty_generic``) checks each size against 0, makes a
    meta storage of ``itemsize * numel`` bytes, then sets the sizes and their contiguous strides
    (``TensorImpl::generic_set_sizes_contiguous``: the strides and the contiguity flags).
    ``_make_wrapper_subclass`` given a ``storage_size`` makes the same meta storage from it and
    calls the same ``generic_set_sizes_contiguous``: the strides are torch's own, the flags set
    alike. The checks against 0 add no guard when the value ranges decide them
    (:func:`_storage_key` makes sure), and the storage size is a new SymInt of torch's expression
    at the sizes' values, as torch's arithmetic would have made it. The shell is then copied to a
    plain meta tensor below the Python key (torch's own ``_make_subclass``, as ``FakeTensor`` copies
    its meta tensor) and made fake as torch makes it."""
    hint = dtype.itemsize
    for size in sizes:
        hint *= size.node.hint if isinstance(size, torch.SymInt) else size
    nbytes = torch.SymInt(SymNode(storage_size, mode.shape_env, int, hint))  # as torch's last product makes it
    shell = torch.Tensor._make_wrapper_subclass(_Shell, sizes, dtype=dtype, device="meta", storage_size=nbytes)
    with torch._C._DisableTorchDispatch():
        made = torch.Tensor._make_subclass(torch.Tensor, shell)
    return _fake(mode, made, device)


def _storage_key(env: ShapeEnv | None, sizes: list, dtype: torch.dtype, memory_format: torch.memory_format) -> tuple | None:
    """The key of :data:`_storage_sizes` for a new tensor of ``sizes``, or ``None`` when torch's own
    ``empty`` must make it: another layout, no symbolic size, a size from another ShapeEnv, a
    data-dependent size or one torch's check against 0 would guard on (the value ranges of its
    symbols do not keep it at 0 or above), or a ShapeEnv that records more than guards."""
    if memory_format != torch.contiguous_format or env is None or dtype == torch.complex32:  # warns once
        return None
    if env._translation_validation_enabled or env.prefer_deferred_runtime_asserts_over_guards:
        return None
    exprs = []
    symbolic = False
    for size in sizes:
        if not isinstance(size, torch.SymInt):
            exprs.append(int(size))
            continue
        node = size.node
        expr = node.expr  # what torch's arithmetic reads: with the ShapeEnv's replacements
        if expr.is_number:
            exprs.append(int(expr))
            continue
        if node.shape_env is not env or node.hint is None or has_unbacked(expr) or not _at_least_zero(env, expr):
            return None
        exprs.append(expr)
        symbolic = True
    return (tuple(exprs), dtype.itemsize) if symbolic else None


def _at_least_zero(env: ShapeEnv, expr: sympy.Expr) -> bool:
    """Whether the value ranges of ``expr``'s symbols keep it at 0 or above: then torch's check
    ``size >= 0`` is decided without a guard (``ShapeEnv._maybe_evaluate_static`` asks the same
    ranges, :meth:`RecordingShapeEnv._decided_by_ranges`)."""
    symbols = _free_symbols(expr)
    ranges = env.var_to_range
    if any(name in env.replacements or name not in ranges for name in symbols):
        return False
    return bool(_bounds(expr, symbols, tuple(ranges[name] for name in symbols)).lower >= 0)


def fake_of(mode: FakeTensorMode, tensor: torch.Tensor) -> torch.Tensor:
    """A fake copy of a real (or meta) tensor with static sizes (a Parameter's copy still passes
    ``isinstance(..., nn.Parameter)``). The real tensor is only read."""
    return mode.from_tensor(tensor, static_shapes=True)


_warm = False


def warm_up() -> None:
    """Pay, once per process, what any first symbolic run pays besides its own work: importing
    ``torch._dynamo`` (``ShapeEnv`` does) and what torch builds on the first op on symbolic fakes.
    The pass's budget starts after this. What an op builds on its own first call is left to the
    pass that needs it (warming up ops a model does not use cost the CLI ~0.3 s)."""
    global _warm
    if _warm:
        return
    _warm = True
    mode, env = make_fake_mode()
    b = symint(env, named_symbol(env, "b", 2), 2)
    with _disable_current_modes(), mode, torch.no_grad():
        (torch.empty(b, 4) + 1).sum(-1)


def python_dispatcher() -> contextlib.AbstractContextManager:
    """Torch's Python dispatcher on this thread: ops then use the Python decompositions and meta
    functions that accept symbolic sizes (``interpolate``, ``pad``, ``lstm``, ``fft``, ``unfold``)
    instead of C++ kernels that fix every size to its value or reject symbolic sizes."""
    return enable_python_dispatcher()


@functools.cache
def python_dispatched() -> frozenset:
    """Torch functions (as a TorchFunctionMode sees them) whose C++ kernels fix every size to its
    value (interpolation, padding, unfold, FFTs) or reject symbolic sizes (recurrent layers):
    with the Python dispatcher their decompositions keep sizes symbolic. Everything else runs
    faster without it (its Python references add guards that cost sympy time: measured 10x on
    ``relu`` of a conv output)."""
    F = torch.nn.functional
    functions = {
        F.interpolate, F.upsample, F.upsample_nearest, F.upsample_bilinear, F.pad, torch._C._nn.pad, F.unfold,
        F.fold, torch.stft, torch.istft, torch.lstm, torch.gru, torch.rnn_tanh, torch.rnn_relu,
    }  # fmt: skip
    functions.update(value for name, value in vars(torch._C._fft).items() if name.startswith("fft_") and callable(value))
    return frozenset(functions)


# --- module calls ------------------------------------------------------------------------------

_calls = threading.local()  # .handler: this thread's handler of module calls, while one is active
_calls_lock = threading.Lock()
_calls_users = 0
_saved_call: Callable | None = None  # nn.Module.__call__ as it was before the first handler


def _module_call(self: nn.Module, *args: Any, **kwargs: Any) -> Any:
    handler = getattr(_calls, "handler", None)
    if handler is None:  # any other thread: torch's own __call__, unchanged
        return _saved_call(self, *args, **kwargs)  # type: ignore[misc]
    return handler(self, args, kwargs)


@contextlib.contextmanager
def module_calls_through(handler: Callable[[nn.Module, tuple, dict], Any]) -> Iterator[None]:
    """Route every module call made on this thread through ``handler(module, args, kwargs)``
    (which may run it with :func:`plain_call`, or not at all). ``nn.Module.__call__`` is
    replaced while any thread uses this; other threads' calls go straight to the original."""
    _enter_calls()
    previous = getattr(_calls, "handler", None)
    _calls.handler = handler
    try:
        yield
    finally:
        _calls.handler = previous
        _leave_calls()


def _enter_calls() -> None:
    global _calls_users, _saved_call
    with _calls_lock:
        if _calls_users == 0:
            _saved_call = nn.Module.__call__
            nn.Module.__call__ = _module_call
        _calls_users += 1


def _leave_calls() -> None:
    global _calls_users
    with _calls_lock:
        _calls_users -= 1
        if _calls_users == 0:
            nn.Module.__call__ = _saved_call


def plain_call(module: nn.Module, args: tuple, kwargs: dict) -> Any:
    """Call ``module`` through torch's module machinery (hooks, then ``forward``), never through a
    compiled version of it (``module.compile()`` sets one on the instance)."""
    if module.__dict__.get("_compiled_call_impl") is not None:
        return module._call_impl(*args, **kwargs)
    return (_saved_call or nn.Module.__call__)(module, *args, **kwargs)


def compiled_original(module: nn.Module) -> nn.Module | None:
    """The module a ``torch.compile(module)`` wrapper compiles, else ``None`` (looked up without
    importing ``torch._dynamo``)."""
    if type(module).__name__ == "OptimizedModule" and type(module).__module__ == "torch._dynamo.eval_frame":
        return module.__dict__.get("_orig_mod") or module._modules.get("_orig_mod")
    return None


def compiled_entry_codes() -> frozenset:
    """Code objects of the wrapper ``torch.compile`` puts around a function (dynamo's
    ``compile_wrapper``; not the ``_fn`` of ``torch._dynamo.disable``, which torch itself uses
    everywhere): a call of one is a call of a compiled function. Empty while ``torch._dynamo`` is
    not imported (then nothing is compiled)."""
    eval_frame = sys.modules.get("torch._dynamo.eval_frame")
    if eval_frame is None:
        return frozenset()
    found = set()

    def visit(code: types.CodeType) -> None:
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                if const.co_name == "compile_wrapper":
                    found.add(const)
                visit(const)

    for value in vars(eval_frame).values():
        for member in vars(value).values() if isinstance(value, type) else (value,):
            code = getattr(member, "__code__", None)
            if isinstance(code, types.CodeType) and code.co_filename == eval_frame.__file__:
                visit(code)
    return frozenset(found)


def is_torchscript(module: nn.Module) -> bool:
    """Whether ``module`` runs in TorchScript's interpreter (``torch.jit.script``/``trace``)."""
    return isinstance(module, torch.jit.ScriptModule)


def is_fake(value: Any) -> bool:
    return isinstance(value, FakeTensor)


# --- running user code in isolation ------------------------------------------------------------

_GLOBAL_MODULE_HOOKS = (
    "_global_forward_pre_hooks", "_global_forward_hooks", "_global_backward_pre_hooks", "_global_backward_hooks",
)  # fmt: skip


_isolated: dict[int, int] = {}  # threads running isolated code -> how deep
_isolated_lock = threading.Lock()
_wrapped_hooks: list[tuple[dict, Any, Callable, Callable]] = []  # (registry, key, hook, wrapper)


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Run code apart from whatever is active on this thread: every TorchFunctionMode (a tracer,
    ``torch.device(...)`` as a context manager) and TorchDispatchMode is set aside (both stacks
    are per thread), and torch's global module hooks and the watchers of module calls skip this
    thread (other threads still run them: the first thread to enter wraps the hooks, the last to
    leave unwraps them); all of it is put back on exit."""
    functions = []
    while torch._C._len_torch_function_stack() > 0:
        functions.append(torch._C._pop_torch_function_stack())
    here = threading.get_ident()
    with _isolated_lock:
        if not _isolated:
            _wrap_global_hooks()
        _isolated[here] = _isolated.get(here, 0) + 1
    try:
        with _disable_current_modes(), watchers_set_aside():
            yield
    finally:
        with _isolated_lock:
            _isolated[here] -= 1
            if not _isolated[here]:
                del _isolated[here]
            if not _isolated:
                _unwrap_global_hooks()
        for mode in reversed(functions):
            torch._C._push_on_torch_function_stack(mode)


def _wrap_global_hooks() -> None:
    from torch.nn.modules import module

    for name in _GLOBAL_MODULE_HOOKS:
        registry = getattr(module, name)
        for key, hook in list(registry.items()):
            registry[key] = wrapper = _skipping_isolated(hook)
            _wrapped_hooks.append((registry, key, hook, wrapper))


def _unwrap_global_hooks() -> None:
    for registry, key, hook, wrapper in _wrapped_hooks:
        if registry.get(key) is wrapper:  # removed meanwhile: stays removed
            registry[key] = hook
    _wrapped_hooks.clear()


def _skipping_isolated(hook: Callable) -> Callable:
    def skip_on_isolated_threads(*args: Any) -> Any:
        return None if threading.get_ident() in _isolated else hook(*args)

    return skip_on_isolated_threads


def size_hint(size: Any) -> int | None:
    """The value a size has in this run (``None`` for a data-dependent size)."""
    if isinstance(size, torch.SymInt):
        hint = size.node.hint
        return int(hint) if hint is not None else None
    return int(size)


# --- output sizes by torch's own formulas ------------------------------------------------------
# The meta functions torch's fake convolution and pools run: their SymInt arithmetic and checks,
# called in the same order, give the same expressions and add the same guards to the ShapeEnv as
# torch's fake op, without its dispatch, its backend and layout questions, and its new tensor.


def conv_output_size(x: torch.Tensor, weight: torch.Tensor, stride: list[int], padding: list[int],
                     dilation: list[int], groups: int, output_padding: list[int] | None = None) -> list:  # fmt: skip
    """The sizes of ``convolution(x, weight, ...)`` of a batched ``x`` (transposed when
    ``output_padding`` is given), as torch's meta function computes them
    (``calc_conv_nd_return_shape``: the channels checked against the weight, the kernel against
    the padded input, then ``(H + 2*p - d*(k - 1) - 1)//s + 1``; transposed, ``(H - 1)*s - 2*p +
    d*(k - 1) + output_padding + 1``)."""
    transposed = output_padding is not None
    return calc_conv_nd_return_shape(x, weight, stride, padding, dilation, transposed, groups, output_padding)


def max_pool2d_output_size(x: torch.Tensor, kernel: list[int], stride: list[int], padding: list[int],
                           dilation: list[int], ceil_mode: bool) -> list:  # fmt: skip
    """The sizes of ``max_pool2d`` of a 4-d ``x``, as torch's meta function computes them
    (``max_pool2d_checks_and_compute_shape``; with ``ceil_mode`` its guard on the last window)."""
    channels, height, width = max_pool2d_checks_and_compute_shape(x, kernel, stride, padding, dilation, ceil_mode)
    return [x.size(-4), channels, height, width]


def avg_pool2d_output_size(x: torch.Tensor, kernel: list[int], stride: list[int], padding: list[int],
                           ceil_mode: bool) -> list:  # fmt: skip
    """The sizes of ``avg_pool2d`` of a 4-d ``x`` (kernel, stride and padding of two ints; no
    stride: the kernel's), as torch's meta function ``meta_avg_pool2d`` computes them: its calls,
    in its order."""
    (kernel_h, kernel_w), (pad_h, pad_w) = kernel, padding
    stride_h, stride_w = stride or kernel
    channels, height, width = x.size(-3), x.size(-2), x.size(-1)
    out_h = pooling_output_shape(height, kernel_h, pad_h, stride_h, 1, ceil_mode)
    out_w = pooling_output_shape(width, kernel_w, pad_w, stride_w, 1, ceil_mode)
    memory_format = suggest_memory_format(x)
    pool2d_shape_check(x, kernel_h, kernel_w, stride_h, stride_w, pad_h, pad_w, 1, 1, channels, height, width,
                       out_h, out_w, memory_format)  # fmt: skip
    return [x.size(-4), channels, out_h, out_w]


def constant_pad_output_size(x: torch.Tensor, pad: list[int]) -> list:
    """The sizes of ``F.pad(x, pad)`` in constant mode with pads of at least 0, as torch's
    decomposition ``torch._refs.constant_pad_nd`` computes them (the Python dispatcher runs it:
    the C++ kernel fixes every size): its questions whether a pad that is a size is negative
    (answered no: the caller's pads are at least 0 at the traced values), each padded dim ``size +
    before + after``, checked to be at least 0; then the layout it asks for."""
    sizes = x.shape
    padded = len(pad) // 2
    unpadded = len(sizes) - padded
    for i in range(unpadded, len(sizes)):
        at = 2 * (len(sizes) - i - 1)
        for each in (pad[at], pad[at + 1]):
            if isinstance(each, torch.SymInt) and each < 0:
                raise AssertionError("a pad negative at the traced values")
    new_sizes = list(sizes[:unpadded])
    for i in range(padded):
        at = len(pad) - (i + 1) * 2
        new_size = sizes[unpadded + i] + pad[at] + pad[at + 1]
        torch._check(new_size >= 0, lambda: "negative output size")
        new_sizes.append(new_size)
    suggest_memory_format(x)
    return new_sizes


def upsample_output_size(x: torch.Tensor, scale_factors: list[float]) -> list:
    """The sizes of ``F.interpolate(x, scale_factor=...)`` in "nearest" or a linear mode, as
    torch's decompositions of ``upsample_nearest{1,2,3}d.vec`` and ``upsample_{bi,tri,}linear*.vec``
    compute them (the Python dispatcher runs them): ``upsample_compute_output_size`` (``H*2`` for
    a whole factor), then, for an image batch, the layout they ask for."""
    sizes = upsample_compute_output_size(x.size(), None, scale_factors)
    if x.dim() in (4, 5):
        suggest_memory_format(x)
    return [*x.shape[:2], *sizes]


def sliced(size: Any, start: Any, end: Any, step: int) -> tuple[Any, Any]:
    """The length and first index of ``x[start:end:step]`` along a dim of ``size`` (``start`` 0 and
    ``end`` ``sys.maxsize`` where Python's slice has none, as torch's indexing passes them), as
    torch's fake ``aten.slice`` computes them (``fake_impls.slice_forward``: each bound by
    ``_compute_slice_index``, then ``(end - start + step - 1) // step``, with its questions in its
    order). The size and bounds have values in this run (torch places every bound then; without
    one it makes an unbacked size, which the caller leaves to torch)."""
    start_index = _compute_slice_index(size, start)
    end_index = size if statically_known_true(end == sys.maxsize) else _compute_slice_index(size, end)
    if start_index is None or end_index is None:
        raise AssertionError(f"a slice bound torch could not place: {start}:{end} of {size}")
    if guard_or_false(end_index >= start_index):
        return (end_index - start_index + step - 1) // step, start_index
    if guard_or_false(start_index >= end_index):
        return 0, start_index
    return (torch.sym_max(end_index - start_index, 0) + step - 1) // step, start_index


def cat_output_size(tensors: list[torch.Tensor], dim: int) -> list:
    """The sizes of ``torch.cat(tensors, dim)`` as ``prims.cat``'s meta function (``_cat_meta``)
    computes them: its checks that every tensor has the first one's sizes but along ``dim``
    (``length == common_length``, tensor by tensor and dim by dim, in its order: a guard where two
    are written differently), then the first's sizes with ``dim`` summed."""
    shape = tensors[0].shape
    along = []
    for tensor in tensors:
        for index, (common_length, length) in enumerate(zip(shape, tensor.shape)):
            if index == dim:
                along.append(length)
            else:
                torch._check(length == common_length, lambda: f"Sizes of tensors must match except in dimension {dim}")
    new_shape = list(shape)
    new_shape[dim] = torch.sym_sum(along)
    return new_shape


def check_view_count(x: torch.Tensor, sizes: list) -> None:
    """Torch's check, in ``_reshape_view_helper``, that ``x.view(*sizes)`` keeps the number of
    elements (a guard, or a replacement, as torch's view makes it)."""
    count = 1
    for size in sizes:
        count = count * size
    torch._check(x.numel() == count, lambda: f"shape {sizes} is invalid for input of size {x.numel()}")


def grouped_mm_output(mat_a: torch.Tensor, mat_b: torch.Tensor, offs: torch.Tensor | None,
                      out_dtype: torch.dtype | None) -> torch.Tensor:  # fmt: skip
    """The output of ``torch._grouped_mm`` (the experts of an MoE layer) as torch's meta function
    makes it: its check of the contraction dims, then ``_create_grouped_mm_output_tensor`` (the
    sizes, dtype and strides). Its checks for the CUDA kernel (bfloat16 operands, strides of 16
    bytes) are not made: the CPU kernel takes float32, which the meta function rejects."""
    if mat_a.dim() == 3 or mat_b.dim() == 3:
        torch._check(mat_a.size(-1) == mat_b.size(-2), lambda: "contraction dimension of mat_a and mat_b must match")
    return _create_grouped_mm_output_tensor(mat_a, mat_b, offs, out_dtype)

# --- strides torch writes, and the length torch's 1-d pools fix ------------------------------------


def contiguous_stride_exprs(sizes: Any) -> tuple:
    """The strides torch writes for a new contiguous tensor of ``sizes`` (``make_contiguous_strides_for``,
    each size inside a stride as ``Max(1, size)`` unless torch knows it is at least 1), as expressions."""
    return size_exprs(make_contiguous_strides_for(sizes))


def pool1d_output_size(x: torch.Tensor, kernel: int, stride: int, padding: int, dilation: int, ceil_mode: bool,
                       fixes_length: bool) -> list:  # fmt: skip
    """The sizes of ``F.max_pool1d`` (``fixes_length``) or ``F.avg_pool1d`` (dilation 1) of a 3-d
    ``x``, as torch's fake op computes them: ATen's ``max_pool1d`` first checks its output length
    on the input's length made an int (``check_max_pool1d``: ``guard_int``, a guard that fixes that
    length's expression, or the dim itself when it is one symbol); both then pool ``x.unsqueeze(-2)``
    with torch's 2-d meta function (``max_pool2d_checks_and_compute_shape``; ``meta_avg_pool2d``'s
    calls) and drop that dim."""
    if fixes_length:
        torch._check(bool(x.size(1) != 0) and bool(x.size(2) != 0), lambda: "max_pool1d: an empty input")
        int(x.size(-1))  # check_max_pool1d's guard_int
    rows = _unsqueezed(x)
    if fixes_length:
        sizes = max_pool2d_output_size(rows, [1, kernel], [1, stride], [0, padding], [1, dilation], ceil_mode)
    else:
        sizes = avg_pool2d_output_size(rows, [1, kernel], [1, stride], [0, padding], ceil_mode)
    return [sizes[0], sizes[1], sizes[3]]


def _unsqueezed(x: Any) -> torch.Tensor:
    """``x.unsqueeze(-2)`` of a fake 3-d tensor, made without dispatch (its sizes and strides as ATen's)."""
    sizes, strides = list(x.shape), list(x.stride())
    return strided_alias(x, [*sizes[:-1], 1, sizes[-1]], [*strides[:-1], strides[-1] * sizes[-1], strides[-1]],
                         x.storage_offset())  # fmt: skip
