"""Names of torch-level callables, and the calls that are not ops: reads (``.shape``,
``.size()``), attribute writes (``x.requires_grad = True``) and ``torch.device(...)``."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache

import torch
import torch.nn.functional as F

from shapetrace._private.torch_api import TensorBase as _TensorBase

# Properties that compute a new tensor; every other Tensor property is a read.
_PROPERTY_OPS = {"T", "mT", "H", "mH", "real", "imag"}

_READ_METHODS = (
    "size", "dim", "ndimension", "numel", "nelement", "stride", "storage_offset", "is_contiguous",
    "data_ptr", "element_size", "is_floating_point", "is_complex", "is_signed", "get_device",
    "has_names", "is_pinned", "is_shared", "untyped_storage", "storage", "__len__",
)  # fmt: skip


def _property_accessors() -> set[Callable]:
    """Getters of every Tensor property that is not an op, and setters of every property."""
    accessors = set()
    for cls in (_TensorBase, torch.Tensor):
        for name, attr in vars(cls).items():
            if type(attr).__name__ == "getset_descriptor":
                accessors.add(attr.__set__)
                if name not in _PROPERTY_OPS:
                    accessors.add(attr.__get__)
            elif isinstance(attr, property) and name not in _PROPERTY_OPS:
                accessors.update(f for f in (attr.fget, attr.fset) if f is not None)
    return accessors


def _read_methods() -> set[Callable]:
    found = set()
    for name in _READ_METHODS:
        for cls in (_TensorBase, torch.Tensor):
            if name in vars(cls):
                found.add(vars(cls)[name])
    return found


NOT_OPS: frozenset[Callable] = frozenset(_property_accessors() | _read_methods() | {torch.device})
"""Callables the recorder passes through without recording: metadata reads and attribute writes."""

VALUE_OPS: frozenset[Callable] = frozenset({
    torch.Tensor.__bool__, torch.Tensor.item, torch.Tensor.__int__, torch.Tensor.__float__,
    torch.Tensor.__index__, torch.Tensor.equal, torch.equal, torch.is_nonzero,
    torch.allclose, torch.Tensor.allclose,
})  # fmt: skip
"""Ops whose result is one Python value read from a tensor's data (``bool(mask.all())``,
``x.item()``): the recorder keeps it (:attr:`Recorder.values`; a ``tolist()`` is data, not kept)."""

_DUNDER_SYMBOLS = {
    "__add__": "+", "__radd__": "+", "__iadd__": "+=", "__sub__": "-", "__rsub__": "-", "__isub__": "-=",
    "__mul__": "*", "__rmul__": "*", "__imul__": "*=", "__truediv__": "/", "__rtruediv__": "/",
    "__itruediv__": "/=", "__div__": "/", "__rdiv__": "/", "__floordiv__": "//", "__rfloordiv__": "//",
    "__mod__": "%", "__rmod__": "%", "__pow__": "**", "__rpow__": "**", "__ipow__": "**=",
    "__matmul__": "@", "__rmatmul__": "@", "__and__": "&", "__rand__": "&", "__or__": "|", "__ror__": "|",
    "__xor__": "^", "__rxor__": "^", "__lshift__": "<<", "__rshift__": ">>", "__neg__": "-", "__invert__": "~",
    "__getitem__": "[]", "__setitem__": "[]=", "__eq__": "==", "__ne__": "!=", "__lt__": "<", "__le__": "<=",
    "__gt__": ">", "__ge__": ">=",
}  # fmt: skip


@cache
def op_names(func: Callable) -> tuple[str, str]:
    """``(name, qualname)`` of a callable seen by the recorder.

    ``name`` is how the user writes it (``flatten``, ``cat``, ``linear``, ``+``);
    ``qualname`` says where it lives (``Tensor.flatten``, ``torch.cat``, ``torch.nn.functional.linear``).
    """
    owner = getattr(func, "__self__", None)
    if type(func).__name__ == "method-wrapper" and owner is not None:  # a Tensor property getter
        name = owner.__name__
        return name, f"Tensor.{name}"
    name = getattr(func, "__name__", None) or repr(func)
    objclass = getattr(func, "__objclass__", None)
    qualname = getattr(func, "__qualname__", "") or name
    if objclass is _TensorBase or qualname.startswith(("Tensor.", "TensorBase.")):
        return _DUNDER_SYMBOLS.get(name, name), f"Tensor.{name}"
    if getattr(F, name, None) is func:
        return name, f"torch.nn.functional.{name}"
    if getattr(torch, name, None) is func:
        return name, f"torch.{name}"
    module = getattr(func, "__module__", None) or "torch"
    return name, f"{module}.{qualname}"
