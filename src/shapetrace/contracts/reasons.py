"""The reason a value failed its array hint, in words: ``dim N is 15 but N was bound to 16 by x``.

Runs only after jaxtyping has said no: it walks the hint's parsed dims against the shape and
the bindings as they were before the failed check, and names the first dim that differs and
the value that bound it. When it finds nothing to say, jaxtyping's own reason is kept.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from shapetrace._private import jaxtyping_api as jt
from shapetrace.contracts.checks import ArrayCheck, CallState, CheckFailure

_NAME = re.compile(r"[A-Za-z_]\w*")


def explain(failure: CheckFailure, state: CallState) -> str:
    """The sentence for ``failure``; ``state`` holds the bindings before the failed check."""
    check = failure.check
    if isinstance(check, ArrayCheck) and not failure.reason.startswith("the annotation"):
        return _explain_array(check, failure.value, failure.path, state) or failure.reason
    return failure.reason


def _explain_array(check: ArrayCheck, value: Any, path: str, state: CallState) -> str | None:
    if not isinstance(value, check.array_type if isinstance(check.array_type, type) else object):
        return f"expected a {getattr(check.array_type, '__name__', 'array')}, got {type(value).__name__}"
    if not hasattr(value, "shape"):
        return None
    _, spec, _, dtypes, dims, variadic_at = jt.array_hint_parts(check.hint)
    dtype = repr(value.dtype).rsplit(".", 1)[-1] if isinstance(value, torch.Tensor) else str(value.dtype)
    if check.dtypes is not None and isinstance(value, torch.Tensor) and value.dtype not in check.dtypes:
        wanted = dtypes[0] if len(dtypes) == 1 else f"a {check.dtype_name} dtype"
        return f"dtype is {dtype}, expected {wanted}"
    shape = tuple(value.shape)
    tokens = spec.split()
    if variadic_at is None and len(shape) != len(dims):
        return f"rank is {len(shape)}, expected {len(dims)} dims ({spec})"
    if variadic_at is not None and len(shape) < len(dims) - 1:
        return f"rank is {len(shape)}, expected at least {len(dims) - 1} dims ({spec})"
    single, variadic, origin = dict(state.single), dict(state.variadic), dict(state.origin)
    if variadic_at is None:
        positions = list(enumerate(zip(dims, tokens)))
    else:
        end = len(shape) - (len(dims) - variadic_at - 1)
        positions = list(enumerate(zip(dims[:variadic_at], tokens)))
        positions += list(enumerate(zip(dims[variadic_at + 1 :], tokens[variadic_at + 1 :]), start=end))
    for index, (dim, token) in positions:
        reason = _explain_dim(dim, token, index, shape[index], single, origin, path, state.arguments)
        if reason:
            return reason
    if variadic_at is not None and type(dims[variadic_at]) is jt.NamedVariadicDim:
        name = dims[variadic_at].name
        sizes = shape[variadic_at:end]
        known = variadic.get(name)
        if known is not None and tuple(known[1]) != sizes:
            by = _by(origin.get("*" + name))
            return f"dims *{name} are {_sizes(sizes)} but *{name} was bound to {_sizes(known[1])}{by}"
    return None


def _explain_dim(
    dim: Any, token: str, index: int, size: int, single: dict, origin: dict, path: str, arguments: dict
) -> str | None:
    if dim is jt.ANONYMOUS_DIM or (getattr(dim, "broadcastable", False) and size == 1):
        return None
    if type(dim) is jt.FixedDim:
        if size != dim.size:
            name = token.lstrip("#_?").split("=")[0] if "=" in token else ""
            return f"dim {index}{f' ({name})' if name else ''} is {size}, expected {dim.size}"
        return None
    if type(dim) is jt.NamedDim:
        known = single.get(dim.name)
        if known is None:
            single[dim.name] = size
            origin.setdefault(dim.name, path)
            return None
        if known != size:
            also = " (a #-dim may also be 1)" if dim.broadcastable else ""
            return f"dim {dim.name} is {size} but {dim.name} was bound to {known}{_by(origin.get(dim.name))}{also}"
        return None
    if type(dim) is jt.SymbolicDim:
        names = sorted(set(_NAME.findall(dim.elem)) & single.keys())
        try:
            expression = eval(f"f'{dim.elem}'", dict(arguments))
            expected = eval(expression, dict(single))
        except Exception:
            unbound = sorted(set(_NAME.findall(dim.elem)) - single.keys())
            return f"dim {dim.elem} cannot be evaluated: {', '.join(unbound) or 'a name'} is not bound"
        if expected != size:
            using = ", ".join(f"{n}={single[n]}" for n in names)
            return f"dim {dim.elem} is {size} but {dim.elem} = {expected}" + (f" ({using})" if using else "")
    return None


def _by(path: str | None) -> str:
    return f" by {path}" if path else " earlier in this call"


def _sizes(sizes: Any) -> str:
    sizes = tuple(sizes)
    return "(" + ", ".join(map(str, sizes)) + (",)" if len(sizes) == 1 else ")")
