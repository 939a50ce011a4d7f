"""Arguments of a call with every tensor replaced by its metadata, so that the symbolic pass can
repeat the call later on fake tensors without the trace holding a tensor.

Two flavours: :func:`op_arguments` for ops called outside any module (only plain values are
kept: an op with anything else is not replayed), and :func:`call_arguments` for calls of root
modules (other objects are kept by reference and deep-copied on fake tensors when replayed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


class TensorSlot:
    """Where a tensor was: its id (to find the op that made it) and its metadata."""

    __slots__ = ("id", "shape", "dtype", "device", "requires_grad")

    def __init__(self, tensor: torch.Tensor) -> None:  # on the recorder's path: kept cheap
        self.id = id(tensor)
        self.shape = tensor.shape
        self.dtype = tensor.dtype
        self.device = tensor.device
        self.requires_grad = tensor.requires_grad

    def __repr__(self) -> str:
        return f"TensorSlot({tuple(self.shape)}, {self.dtype}, {self.device})"


class TensorRef:
    """Where a tensor was in an op's arguments: its id; the op's recorded inputs hold its metadata."""

    __slots__ = ("id",)

    def __init__(self, tensor_id: int) -> None:  # on the recorder's path: kept cheap
        self.id = tensor_id

    def __repr__(self) -> str:
        return f"TensorRef({self.id})"


@dataclass(frozen=True)
class Opaque:
    """A value the replay cannot rebuild (a generator, a numpy array, ...): the op is not replayed."""

    type_name: str


_PLAIN = frozenset(
    {int, float, bool, complex, str, bytes, type(None), type(...), torch.dtype, torch.device, torch.layout,
     torch.memory_format, torch.Size}
)  # fmt: skip
_MAX_DEPTH = 4


def op_arguments(
    args: tuple, kwargs: dict | None, _plain_types: frozenset = _PLAIN, _tensor: type = torch.Tensor
) -> tuple[list, dict | None]:
    """``(args, kwargs)`` of an op with tensors as :class:`TensorRef` and anything that is not
    a plain value (numbers, strings, dtypes, devices, slices, tuples and lists of these) as
    :class:`Opaque`. On the recorder's path (ops outside module calls): kept cheap."""
    kept = [
        value if type(value) in _plain_types else TensorRef(id(value)) if isinstance(value, _tensor) else _plain(value, 0)
        for value in args
    ]
    return kept, ({key: _plain(value, 0) for key, value in kwargs.items()} if kwargs else None)


def _plain(value: Any, depth: int) -> Any:
    kind = type(value)
    if kind in _PLAIN:
        return value
    if isinstance(value, torch.Tensor):
        return TensorRef(id(value))
    if (kind is tuple or kind is list) and depth < _MAX_DEPTH:
        items = [item if type(item) in _PLAIN else _plain(item, depth + 1) for item in value]
        return tuple(items) if kind is tuple else items
    if kind is slice and type(value.start) in _PLAIN and type(value.stop) in _PLAIN and type(value.step) in _PLAIN:
        return value
    return Opaque(kind.__name__)


class ObjectSlots:
    """An object holding tensors in its attributes (a dataclass instance, a config or batch
    object): its class and its attributes, tensors as :class:`TensorSlot`. The trace keeps this,
    not the object, so the object's tensors are not kept alive; the replay rebuilds a copy."""

    __slots__ = ("cls", "attributes")

    def __init__(self, cls: type, attributes: dict[str, Any]) -> None:
        self.cls = cls
        self.attributes = attributes


def call_arguments(value: Any, depth: int = 0) -> Any:
    """A module call's argument with tensors as :class:`TensorSlot` inside tuples, lists, dicts,
    named tuples and the attributes of plain objects (:class:`ObjectSlots`); other objects are
    kept as they are."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if isinstance(value, torch.Tensor):
        return TensorSlot(value)
    if depth >= _MAX_DEPTH:
        return value
    if kind is tuple or kind is list:
        return kind(call_arguments(item, depth + 1) for item in value)
    if kind is dict:
        return {key: call_arguments(item, depth + 1) for key, item in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return kind(*(call_arguments(item, depth + 1) for item in value))
    attributes = getattr(value, "__dict__", None)
    if (
        type(attributes) is dict
        and not isinstance(value, (torch.nn.Module, type))
        and any(isinstance(item, torch.Tensor) for item in attributes.values())
    ):
        return ObjectSlots(kind, {name: call_arguments(item, depth + 1) for name, item in attributes.items()})
    return value


def has_opaque(value: Any) -> Opaque | None:
    """The first :class:`Opaque` inside an :func:`op_arguments` value, if any."""
    if isinstance(value, Opaque):
        return value
    if isinstance(value, (tuple, list)):
        for item in value:
            found = has_opaque(item)
            if found is not None:
                return found
    elif isinstance(value, dict):
        return has_opaque(tuple(value.values()))
    return None


def rebuild(value: Any, tensor_for: Any, copy_object: Any, depth: int = 0) -> Any:
    """``value`` with every :class:`TensorSlot`/:class:`TensorRef` replaced by ``tensor_for(it)``
    and every other object by ``copy_object(obj)`` (plain values are kept)."""
    kind = type(value)
    if kind is TensorSlot or kind is TensorRef:
        return tensor_for(value)
    if kind in _PLAIN or kind is slice:
        return value
    if kind is tuple or kind is list:
        return kind(rebuild(item, tensor_for, copy_object, depth + 1) for item in value)
    if kind is dict:
        return {key: rebuild(item, tensor_for, copy_object, depth + 1) for key, item in value.items()}
    if isinstance(value, tuple) and hasattr(value, "_fields"):
        return kind(*(rebuild(item, tensor_for, copy_object, depth + 1) for item in value))
    if kind is ObjectSlots:
        made = object.__new__(value.cls)
        vars(made).update(
            {name: rebuild(item, tensor_for, copy_object, depth + 1) for name, item in value.attributes.items()}
        )
        return made
    return copy_object(value)


def slots(value: Any) -> list[TensorSlot]:
    """Every :class:`TensorSlot` inside a skeleton, in order."""
    found: list[TensorSlot] = []

    def visit(item: Any) -> None:
        if type(item) is TensorSlot:
            found.append(item)
        elif type(item) in (tuple, list) or (isinstance(item, tuple) and hasattr(item, "_fields")):
            for sub in item:
                visit(sub)
        elif type(item) is dict:
            for sub in item.values():
                visit(sub)
        elif type(item) is ObjectSlots:
            for sub in item.attributes.values():
                visit(sub)

    visit(value)
    return found
