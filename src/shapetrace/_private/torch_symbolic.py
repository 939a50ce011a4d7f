"""Private torch APIs of the symbolic pass: fake tensors, the ShapeEnv and its sympy expressions.

The pass runs code on ``FakeTensorMode`` tensors whose sizes are ``SymInt``s, one symbol per
named dim (``ShapeEnv(duck_shape=False)``, ``DimDynamic.DYNAMIC``), and reads each size's sympy
expression. Importing this module imports torch's fake-tensor and symbolic-shape machinery
(``ShapeEnv()`` pulls in ``torch._dynamo``, a few seconds once): only the pass imports it.
tests/private/test_torch_symbolic.py fails loudly when any of this moves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import sympy
import torch
from torch._subclasses.fake_tensor import FakeTensorMode
from torch.fx.experimental.symbolic_shapes import DimDynamic, ShapeEnv, free_unbacked_symbols
from torch.utils._python_dispatch import _disable_current_modes
from torch.utils._sympy import functions as sympy_functions

__all__ = [
    "FakeTensorMode",
    "FloorDiv",
    "RecordingShapeEnv",
    "guard_exprs",
    "has_unbacked",
    "isolated",
    "make_fake_mode",
    "named_symbol",
    "size_hint",
    "size_expr",
    "symint",
    "sympy_functions",
]

FloorDiv = sympy_functions.FloorDiv  # torch's `a // b` on sizes


class RecordingShapeEnv(ShapeEnv):
    """A ShapeEnv that tells ``on_replacement(symbol, target, guards_so_far)`` each time torch fixes a
    symbol to a number or to another expression (a dim "specialised" by a guard)."""

    on_replacement: Callable[[sympy.Symbol, sympy.Expr, int], None] | None = None

    def _set_replacement(self, a: sympy.Symbol, tgt: sympy.Expr, msg: str) -> None:
        known = a in self.replacements
        super()._set_replacement(a, tgt, msg)
        if not known and a in self.replacements and self.on_replacement is not None:
            self.on_replacement(a, self.replacements[a], len(self.guards))


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


def has_unbacked(expr: sympy.Expr) -> bool:
    """Whether ``expr`` holds a data-dependent size (``u0``: the size of ``x[mask]``, ``nonzero``)."""
    return bool(free_unbacked_symbols(expr))


def guard_exprs(env: ShapeEnv) -> list[sympy.Expr]:
    """The guards torch recorded, in order (``Eq(s0, 512)``, ``s1 >= 32``, ...)."""
    return [guard.expr for guard in env.guards]


def fake_of(mode: FakeTensorMode, tensor: torch.Tensor) -> torch.Tensor:
    """A fake copy of a real (or meta) tensor with static sizes (a Parameter's copy still passes
    ``isinstance(..., nn.Parameter)``)."""
    return mode.from_tensor(tensor, static_shapes=True)


# --- running user code in isolation ------------------------------------------------------------

_GLOBAL_MODULE_HOOKS = (
    "_global_forward_pre_hooks", "_global_forward_hooks", "_global_forward_hooks_always_called",
    "_global_forward_hooks_with_kwargs", "_global_backward_pre_hooks", "_global_backward_hooks",
)  # fmt: skip


@contextlib.contextmanager
def isolated() -> Iterator[None]:
    """Run code apart from whatever is active on this thread: every TorchFunctionMode (a tracer,
    ``torch.device(...)`` as a context manager) and TorchDispatchMode is set aside, and torch's
    global module hooks are emptied; all of it is put back on exit."""
    from torch.nn.modules import module

    functions = []
    while torch._C._len_torch_function_stack() > 0:
        functions.append(torch._C._pop_torch_function_stack())
    saved_hooks = {name: dict(getattr(module, name)) for name in _GLOBAL_MODULE_HOOKS}
    for name in _GLOBAL_MODULE_HOOKS:
        getattr(module, name).clear()
    try:
        with _disable_current_modes():
            yield
    finally:
        for name, hooks in saved_hooks.items():
            registry = getattr(module, name)
            registry.clear()
            registry.update(hooks)
        for mode in reversed(functions):
            torch._C._push_on_torch_function_stack(mode)


def size_hint(size: Any) -> int | None:
    """The value a size has in this run (``None`` for a data-dependent size)."""
    if isinstance(size, torch.SymInt):
        hint = size.node.hint
        return int(hint) if hint is not None else None
    return int(size)
