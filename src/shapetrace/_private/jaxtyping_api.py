"""Private jaxtyping APIs used by contracts: one place to change when jaxtyping moves them.

jaxtyping keeps the dim bindings of a checked call in a per-thread stack of memos
(``jaxtyping._storage``); an annotation like ``Float[Tensor, "B N"]`` is a class whose parsed
spec (``dims``, ``dtypes``, ``index_variadic``) and ``__instancecheck_str__`` do the checking.
tests/private/test_jaxtyping_api.py fails loudly when any of this moves.
"""

from __future__ import annotations

from typing import Any

from jaxtyping import AbstractArray, AbstractDtype, AnnotationError, _storage, jaxtyped
from jaxtyping import _array_types as _types

__all__ = [
    "ANONYMOUS_DIM",
    "ANONYMOUS_VARIADIC_DIM",
    "ANY_DTYPE",
    "AbstractArray",
    "AnnotationError",
    "FixedDim",
    "NamedDim",
    "NamedVariadicDim",
    "SymbolicDim",
    "array_hint_parts",
    "bindings_of",
    "current_memo",
    "is_array_hint",
    "is_jaxtyped",
    "instancecheck_reason",
    "memo_depth",
    "pop_memo",
    "push_memo",
    "restore_memo",
]

# The parsed parts of a spec, in ``hint.dims``.
NamedDim = _types._NamedDim  # "B", "#B" (broadcastable), "?B" (tree path)
FixedDim = _types._FixedDim  # "3", "N=16"
SymbolicDim = _types._SymbolicDim  # "H*W", "C+1", "{self.dim}"
NamedVariadicDim = _types._NamedVariadicDim  # "*batch", "*#batch"
ANONYMOUS_DIM = _types._anonymous_dim  # "_", "_name"
ANONYMOUS_VARIADIC_DIM = _types._anonymous_variadic_dim  # "...", "*_"
ANY_DTYPE = _types._any_dtype  # hint.dtypes of Shaped[...]

# Keys of the memo that jaxtyping uses internally (PyTree structure bookkeeping).
_INTERNAL_KEY_PREFIX = "~~delete~~"


def is_array_hint(hint: Any) -> bool:
    """Whether ``hint`` is a jaxtyping array annotation such as ``Float[Tensor, "B N"]``."""
    return isinstance(hint, type) and issubclass(hint, AbstractArray) and hint is not AbstractArray


def array_hint_parts(hint: type) -> tuple[Any, str, type, Any, tuple, int | None]:
    """``(array_type, dim_str, dtype class, dtypes, dims, index_variadic)`` of an array hint;
    ``dtypes`` is :data:`ANY_DTYPE` or a tuple of dtype names / compiled regexes."""
    dtype = hint.dtype
    if not (isinstance(dtype, type) and issubclass(dtype, AbstractDtype)):
        raise TypeError(f"{hint!r} has no jaxtyping dtype")
    return hint.array_type, hint.dim_str, dtype, hint.dtypes, tuple(hint.dims), hint.index_variadic


def instancecheck_reason(hint: type, value: Any) -> str:
    """jaxtyping's own verdict on ``value``: ``""`` when it matches ``hint`` (binding new dims in
    the current memo), else the reason. May raise :class:`AnnotationError` for a spec that
    cannot be evaluated (``"H*W"`` with ``H`` unbound)."""
    return hint.__instancecheck_str__(value)


# --- the memo stack --------------------------------------------------------------------------


def push_memo(arguments: dict[str, Any]) -> tuple[dict[str, int], dict[str, tuple[bool, tuple[int, ...]]]]:
    """Open a new binding scope, as a ``@jaxtyped`` function does on each call, and return its
    ``(single, variadic)`` memos. ``arguments`` (the call's bound arguments) are what
    ``"{self.dim}"``-style specs are formatted with."""
    # jaxtyping reads this per-thread flag on every check, through a raise while it is unset.
    vars(_storage._treeflatten_storage).setdefault("value", False)
    single, variadic, _, _ = _storage.push_shape_memo(arguments)
    return single, variadic


def pop_memo() -> None:
    _storage.pop_shape_memo()


def current_memo() -> tuple[dict[str, int], dict[str, tuple[bool, tuple[int, ...]]]]:
    """``(single, variadic)`` dicts of the innermost scope (one must be open), as they are now.
    jaxtyping replaces them after a failed check, so read them again after one."""
    single, variadic, _, _ = _storage._shape_storage.memo_stack[-1]
    return single, variadic


def memo_depth() -> int:
    """How many binding scopes are open on this thread (tests check none is left behind)."""
    return len(getattr(_storage._shape_storage, "memo_stack", ()))


def restore_memo(single: dict[str, int], variadic: dict[str, tuple[bool, tuple[int, ...]]]) -> None:
    """Make ``single``/``variadic`` the innermost scope's memos (to undo a failed alternative)."""
    _, _, pytree, arguments = _storage.get_shape_memo()
    _storage.set_shape_memo(single, variadic, pytree, arguments)


def bindings_of(
    single: dict[str, int], variadic: dict[str, tuple[bool, tuple[int, ...]]]
) -> dict[str, int | tuple[int, ...]]:
    """Bound dims as ``name -> size``, variadic ones as ``"*name" -> sizes``; jaxtyping's
    internal keys are left out."""
    found: dict[str, int | tuple[int, ...]] = {
        name: size for name, size in single.items() if not name.startswith(_INTERNAL_KEY_PREFIX)
    }
    for name, (_, shape) in variadic.items():
        if not name.startswith(_INTERNAL_KEY_PREFIX):
            found[f"*{name}"] = tuple(shape)
    return found


# --- recognising @jaxtyped wrappers ------------------------------------------------------------


def _wrapper_codes() -> frozenset:
    def probe(x: int) -> int:
        return x

    codes = {jaxtyped(probe, typechecker=None).__code__}
    codes.add(jaxtyped(probe, typechecker=lambda fn: fn).__code__)
    return frozenset(codes)


_JAXTYPED_CODES = _wrapper_codes()


def is_jaxtyped(fn: Any) -> bool:
    """Whether ``fn`` is the wrapper ``@jaxtyped(...)`` returns (its ``__wrapped__`` is the
    user's function)."""
    code = getattr(fn, "__code__", None)
    return code in _JAXTYPED_CODES and hasattr(fn, "__wrapped__")
