"""Private jaxtyping APIs used by contracts: one place to change when jaxtyping moves them.

jaxtyping keeps the dim bindings of a checked call in a per-thread stack of memos
(``jaxtyping._storage``); an annotation like ``Float[Tensor, "B N"]`` is a class whose parsed
spec (``dims``, ``dtypes``, ``index_variadic``) and ``__instancecheck_str__`` do the checking.
tests/private/test_jaxtyping_api.py fails loudly when any of this moves.

jaxtyping is imported on first need, not with this module (~10 ms of every start-up, also the
CLI's on a model without hints): until the user's code has imported it, no hint can be one of its
classes nor a function its ``@jaxtyped`` wrapper, so :func:`is_array_hint` and
:func:`is_jaxtyped` answer without it. The names below come from :func:`_load`.
"""

from __future__ import annotations

import sys
from typing import Any

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

AbstractArray: Any  # the base class of array annotations
AbstractDtype: Any
AnnotationError: Any  # a spec that cannot be evaluated
# The parsed parts of a spec, in ``hint.dims``.
NamedDim: Any  # "B", "#B" (broadcastable), "?B" (tree path)
FixedDim: Any  # "3", "N=16"
SymbolicDim: Any  # "H*W", "C+1", "{self.dim}"
NamedVariadicDim: Any  # "*batch", "*#batch"
ANONYMOUS_DIM: Any  # "_", "_name"
ANONYMOUS_VARIADIC_DIM: Any  # "...", "*_"
ANY_DTYPE: Any  # hint.dtypes of Shaped[...]
_LOADED_NAMES = frozenset({
    "AbstractArray", "AbstractDtype", "AnnotationError", "NamedDim", "FixedDim", "SymbolicDim",
    "NamedVariadicDim", "ANONYMOUS_DIM", "ANONYMOUS_VARIADIC_DIM", "ANY_DTYPE",
})  # fmt: skip

_storage: Any = None  # jaxtyping._storage, once loaded
_JAXTYPED_CODES: frozenset = frozenset()  # the code objects of @jaxtyped wrappers, once loaded


def _load() -> None:
    """Import jaxtyping and set the names above from it (once)."""
    global AbstractArray, AbstractDtype, AnnotationError, NamedDim, FixedDim, SymbolicDim, NamedVariadicDim
    global ANONYMOUS_DIM, ANONYMOUS_VARIADIC_DIM, ANY_DTYPE, _JAXTYPED_CODES, _storage
    if _storage is not None:
        return
    from jaxtyping import AbstractArray, AbstractDtype, AnnotationError, jaxtyped
    from jaxtyping import _array_types as types
    from jaxtyping import _storage as storage

    NamedDim, FixedDim, SymbolicDim = types._NamedDim, types._FixedDim, types._SymbolicDim
    NamedVariadicDim, ANONYMOUS_DIM = types._NamedVariadicDim, types._anonymous_dim
    ANONYMOUS_VARIADIC_DIM, ANY_DTYPE = types._anonymous_variadic_dim, types._any_dtype

    def probe(x: int) -> int:
        return x

    codes = {jaxtyped(probe, typechecker=None).__code__, jaxtyped(probe, typechecker=lambda fn: fn).__code__}
    _JAXTYPED_CODES = frozenset(codes)
    _storage = storage  # last: loaded


def __getattr__(name: str) -> Any:
    """The names above, jaxtyping imported on their first use."""
    if name in _LOADED_NAMES:
        _load()
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def _imported() -> bool:
    """Whether jaxtyping's names are here; loads them if the user's code imported jaxtyping."""
    if _storage is None:
        if "jaxtyping" not in sys.modules:
            return False
        _load()
    return True


# Keys of the memo that jaxtyping uses internally (PyTree structure bookkeeping).
_INTERNAL_KEY_PREFIX = "~~delete~~"


def is_array_hint(hint: Any) -> bool:
    """Whether ``hint`` is a jaxtyping array annotation such as ``Float[Tensor, "B N"]``."""
    if not _imported():
        return False
    return isinstance(hint, type) and issubclass(hint, AbstractArray) and hint is not AbstractArray


def array_hint_parts(hint: type) -> tuple[Any, str, type, Any, tuple, int | None]:
    """``(array_type, dim_str, dtype class, dtypes, dims, index_variadic)`` of an array hint;
    ``dtypes`` is :data:`ANY_DTYPE` or a tuple of dtype names / compiled regexes."""
    _load()
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
    _load()
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
    _load()
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


def is_jaxtyped(fn: Any) -> bool:
    """Whether ``fn`` is the wrapper ``@jaxtyped(...)`` returns (its ``__wrapped__`` is the
    user's function)."""
    if not _imported():
        return False
    code = getattr(fn, "__code__", None)
    return code in _JAXTYPED_CODES and hasattr(fn, "__wrapped__")
