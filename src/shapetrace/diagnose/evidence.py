"""What a diagnosis needs from live objects, taken while they are alive, as metadata only.

- :class:`EvidenceListener` hears the failing op's arguments from the recorder (the failure path
  only) and keeps them as :func:`describe_call` gives them: plain values, each tensor replaced
  by its operand index.
- :func:`collect_evidence`: when the trace ends, which tensors are parameters, buffers or plain
  tensor attributes of the traced modules, by ``id`` (the modules are alive, so are their tensors);
  names only: their metadata is in the ops that used them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

import torch
from torch import nn

from shapetrace._private.torch_api import DisableTorchFunction, own_tensors
from shapetrace.capture.recorder import Listener, Recorder

_PLAIN = (bool, int, float, complex, type(None), torch.dtype, torch.device, torch.layout, torch.memory_format)


@dataclass(frozen=True)
class OperandRef:
    """A tensor argument: the ``index``-th tensor operand, as the recorder lists them."""

    index: int


@dataclass(frozen=True)
class Opaque:
    """An argument kept by type name only."""

    type_name: str


@dataclass(frozen=True)
class CallArguments:
    """The failing op's arguments: plain values, :class:`OperandRef` for tensors, :class:`Opaque`
    for anything else; and whether each tensor operand was contiguous."""

    args: tuple[Any, ...]
    kwargs: tuple[tuple[str, Any], ...]
    contiguous: tuple[bool, ...]

    def get(self, position: int, name: str, default: Any = None) -> Any:
        """The argument given as keyword ``name`` or at ``position``."""
        for key, value in self.kwargs:
            if key == name:
                return value
        return self.args[position] if position < len(self.args) else default

    def keyword(self, name: str) -> Any:
        """The argument given as keyword ``name``, or ``None``."""
        return next((value for key, value in self.kwargs if key == name), None)


def describe_call(args: tuple, kwargs: dict | None) -> CallArguments | None:
    """The arguments of a call that raised, without any tensor. Never raises."""
    contiguous: list[bool] = []

    def convert(value: Any, operand: bool, depth: int) -> Any:
        if isinstance(value, torch.Tensor):
            if not operand:
                return Opaque(type(value).__name__)
            contiguous.append(bool(value.is_contiguous()))
            return OperandRef(len(contiguous) - 1)
        if isinstance(value, _PLAIN) or value is Ellipsis:
            return value
        if isinstance(value, str):
            return value[:80]
        if isinstance(value, slice):
            return slice(*(convert(v, False, depth + 1) for v in (value.start, value.stop, value.step)))
        if isinstance(value, (list, tuple)) and depth < 3:
            # the recorder lists tensors inside a top-level list or tuple (exactly those types)
            inner = operand and depth == 0 and type(value) in (list, tuple)
            items = [convert(item, inner, depth + 1) for item in value]
            return items if type(value) is list else tuple(items)
        return Opaque(type(value).__name__)

    try:
        with DisableTorchFunction():
            positional = tuple(convert(value, True, 0) for value in args)
            keywords = tuple((name, convert(value, True, 0)) for name, value in (kwargs or {}).items())
        return CallArguments(positional, keywords, tuple(contiguous))
    except Exception:  # a diagnosis aid must never replace the user's error
        return None


class ModuleAttribute(NamedTuple):
    """A tensor held by a traced module: a parameter, a registered buffer, or a plain attribute
    (which ``Module.to()`` does not move). ``name`` is ``mask`` or ``masks[0]`` for a list item.
    (A named tuple: every trace makes one per parameter.)"""

    module: str
    module_type: str
    name: str
    kind: str  # "parameter" | "buffer" | "attribute"
    owner: type

    @property
    def label(self) -> str:
        """``fc1.weight``; an attribute of the root module is just its name."""
        return f"{self.module}.{self.name}" if self.module else self.name

    @property
    def where(self) -> str:
        """``attn (Attention)``, or ``the model (Net)`` for the root module."""
        return f"{self.module} ({self.module_type})" if self.module else f"the model ({self.module_type})"


@dataclass
class Evidence:
    """Live-object facts of one trace: module attributes by tensor id, which modules are torch's
    own layers, the failing call's arguments, and the message of the exception the failing op
    itself raised."""

    attributes: dict[int, ModuleAttribute] = field(default_factory=dict)
    torch_modules: set[str] = field(default_factory=set)  # paths of modules whose class is torch's own
    call: CallArguments | None = None
    failure_message: str | None = None


class EvidenceListener(Listener):
    """Keeps the arguments and message of the latest op that raised (as metadata and text)."""

    def __init__(self) -> None:
        self.call: CallArguments | None = None
        self.message: str | None = None

    def op_failed(self, index: int, args: tuple, kwargs: dict | None, error: BaseException) -> None:
        self.call = describe_call(args, kwargs)
        self.message = str(error)


def collect_evidence(recorder: Recorder, heard: EvidenceListener) -> Evidence:
    """Evidence from a recorder whose trace just ended (its modules are still referenced)."""
    evidence = Evidence(call=heard.call, failure_message=heard.message)
    for module, path in recorder.traced_modules():
        if type(module).__module__.startswith("torch."):
            evidence.torch_modules.add(path)
        _add_attributes(evidence.attributes, module, path)
    return evidence


_MODULE_INTERNALS = frozenset(vars(nn.Module()))  # training, _parameters, _buffers, hooks...


def _add_attributes(found: dict[int, ModuleAttribute], module: nn.Module, path: str) -> None:
    cls = type(module)
    name_of_type = cls.__name__
    parameters, buffers = own_tensors(module)
    for name, param in parameters.items():
        if param is not None and id(param) not in found:
            found[id(param)] = ModuleAttribute(path, name_of_type, name, "parameter", cls)
    for name, buffer in buffers.items():
        if buffer is not None and id(buffer) not in found:
            found[id(buffer)] = ModuleAttribute(path, name_of_type, name, "buffer", cls)
    if cls.__module__.startswith("torch."):
        return  # torch's own layers register every tensor they hold
    for name, value in vars(module).items():
        if name in _MODULE_INTERNALS:
            continue
        if isinstance(value, torch.Tensor):
            items: Any = ((name, value),)
        elif type(value) in (list, tuple):
            items = ((f"{name}[{i}]", item) for i, item in enumerate(value))
        elif type(value) is dict:
            items = ((f"{name}[{key!r}]", item) for key, item in value.items())
        else:
            continue
        for label, item in items:
            if isinstance(item, torch.Tensor) and id(item) not in found:
                found[id(item)] = ModuleAttribute(path, name_of_type, label, "attribute", cls)
