"""What a diagnosis needs from live objects, taken while they are alive, as metadata only.

- :class:`EvidenceListener` hears the failing op's arguments from the recorder (the failure path
  only) and keeps them as :func:`describe_call` gives them: plain values, each tensor replaced
  by its operand index.
- :func:`collect_evidence`: which tensors are parameters, buffers or plain tensor attributes of
  the traced modules, by ``id`` (taken when the trace ends if the block raised, else when the
  diagnosis is first read, from the modules if they are still alive: so are their tensors);
  names only: their metadata is in the ops that used them. Also: each module path's class,
  modules kept in plain lists and dicts, and, when the block raised while a torch module was
  being built, that construction's arguments and the user's line.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from dataclasses import dataclass, field
from types import CodeType, FrameType, TracebackType
from typing import Any, NamedTuple

import torch
from torch import nn
from torch.nn.parameter import is_lazy

from shapetrace._private.torch_api import DisableTorchFunction, own_tensors
from shapetrace.capture.recorder import Listener
from shapetrace.capture.records import TensorMeta
from shapetrace.capture.source import is_library_code

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
    # (min, max) of each integer operand's values, by operand index (small CPU tensors only):
    # an index out of range is decided by values, not shapes
    value_ranges: tuple[tuple[int, int, int], ...] = ()

    def value_range(self, index: int) -> tuple[int, int] | None:
        """``(min, max)`` of integer operand ``index``, when it was read."""
        return next(((low, high) for i, low, high in self.value_ranges if i == index), None)

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
    ranges: list[tuple[int, int, int]] = []

    def convert(value: Any, operand: bool, depth: int) -> Any:
        if isinstance(value, torch.Tensor):
            if not operand:
                return Opaque(type(value).__name__)
            contiguous.append(bool(value.is_contiguous()))
            found = _integer_range(value)
            if found is not None:
                ranges.append((len(contiguous) - 1, *found))
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
        return CallArguments(positional, keywords, tuple(contiguous), tuple(ranges))
    except Exception:  # a diagnosis aid must never replace the user's error
        return None


_RANGE_LIMIT = 1 << 26  # elements read to find an integer operand's smallest and largest value


def _integer_range(tensor: torch.Tensor) -> tuple[int, int] | None:
    if (
        tensor.dtype.is_floating_point or tensor.dtype.is_complex or tensor.dtype == torch.bool
        or tensor.device.type != "cpu" or not 0 < tensor.numel() <= _RANGE_LIMIT
        or type(tensor) not in (torch.Tensor, nn.Parameter)
    ):  # fmt: skip
        return None
    low, high = torch.aminmax(tensor)
    return int(low), int(high)


class ModuleAttribute(NamedTuple):
    """A tensor held by a traced module: a parameter, a registered buffer, or a plain attribute
    (which ``Module.to()`` does not move). ``name`` is ``mask`` or ``masks[0]`` for a list item.
    (A named tuple: every trace makes one per parameter.)"""

    module: str
    module_type: str
    name: str
    kind: str  # "parameter" | "buffer" | "attribute"
    owner: type
    # the tensor's device and sizes when the evidence was taken (None for a lazy module's parameter):
    # an op's operand with this id and other metadata was another, earlier tensor whose id was reused
    device: torch.device | None = None
    shape: tuple[int, ...] | None = None

    def holds(self, meta: TensorMeta) -> bool:
        """Whether ``meta`` (an operand with this attribute's id) can be this attribute's tensor."""
        return self.device is None or (meta.device == self.device and meta.shape == self.shape)

    @property
    def label(self) -> str:
        """``fc1.weight``; an attribute of the root module is just its name."""
        return f"{self.module}.{self.name}" if self.module else self.name

    @property
    def where(self) -> str:
        """``attn (Attention)``, or ``the model (Net)`` for the root module."""
        return f"{self.module} ({self.module_type})" if self.module else f"the model ({self.module_type})"


class Building(NamedTuple):
    """A torch module whose construction raised: its class, the arguments its ``__init__`` got
    (plain values only), and the user's line that built it."""

    cls: type
    arguments: tuple[tuple[str, Any], ...]
    file: str
    line: int
    code: CodeType
    lasti: int

    def argument(self, name: str) -> Any:
        return next((value for key, value in self.arguments if key == name), None)


class ModuleContainer(NamedTuple):
    """Modules kept in a plain ``list``/``tuple``/``dict`` attribute: not registered, so not in
    ``parameters()`` and not moved by ``.to()``. ``registers`` is true when the container, wrapped
    in ``nn.ModuleList``/``nn.ModuleDict``, was seen to register all of their parameters."""

    module: str
    module_type: str
    owner: type
    name: str
    container: str  # "list" | "tuple" | "dict"
    count: int
    parameters: int
    registers: bool


@dataclass
class Evidence:
    """Live-object facts of one trace: module attributes by tensor id, which modules are torch's
    own layers, each module path's class, the failing call's arguments, the message of the
    exception the failing op itself raised, and the construction that raised, if one did."""

    attributes: dict[int, ModuleAttribute] = field(default_factory=dict)
    torch_modules: set[str] = field(default_factory=set)  # paths of modules whose class is torch's own
    module_classes: dict[str, type] = field(default_factory=dict)  # path -> class
    parameter_sizes: dict[int, tuple[int, bool]] = field(default_factory=dict)  # id -> (numel, requires_grad)
    containers: list[ModuleContainer] = field(default_factory=list)
    call: CallArguments | None = None
    failure_message: str | None = None
    building: Building | None = None


class EvidenceListener(Listener):
    """Keeps the arguments and message of the latest op that raised (as metadata and text)."""

    def __init__(self) -> None:
        self.call: CallArguments | None = None
        self.message: str | None = None

    def op_failed(self, index: int, args: tuple, kwargs: dict | None, error: BaseException) -> None:
        self.call = describe_call(args, kwargs)
        self.message = str(error)


def collect_evidence(
    modules: Iterable[tuple[nn.Module, str]], heard: EvidenceListener | None = None, exc: BaseException | None = None
) -> Evidence:
    """Evidence from the traced ``modules`` (each once, with its path; alive), from what ``heard``
    kept of the failing op, and from the exception that ended the block."""
    evidence = Evidence(call=heard.call if heard else None, failure_message=heard.message if heard else None)
    modules = list(modules)
    known = {id(module) for module, _ in modules}
    for module, path in modules:
        evidence.module_classes.setdefault(path, type(module))
        if type(module).__module__.startswith("torch."):
            evidence.torch_modules.add(path)
        else:
            evidence.containers.extend(_unregistered_modules(module, path, known))
        _add_attributes(evidence.attributes, module, path, evidence.parameter_sizes)
    if exc is not None:
        evidence.building = _building(exc.__traceback__)
    return evidence


def _building(tb: TracebackType | None) -> Building | None:
    """The torch module ``__init__`` the exception was raised in, and the user's line that built
    the module; ``None`` when it was not raised while building one."""
    steps: list[TracebackType] = []  # each frame with the line and instruction it raised at
    while tb is not None:
        steps.append(tb)
        tb = tb.tb_next
    frames = [step.tb_frame for step in steps]
    for depth in range(len(frames) - 1, 0, -1):
        frame = frames[depth]
        if frame.f_code.co_name != "__init__" or not is_library_code(frame.f_code):
            continue
        if not isinstance(frame.f_locals.get("self"), nn.Module):
            continue
        outer = depth
        while outer > 0 and is_library_code(frames[outer - 1].f_code):
            outer -= 1  # up to the __init__ the user's line called (a subclass's super().__init__ ...)
        if outer == 0:
            return None
        built, user = frames[outer], frames[outer - 1]
        if built.f_code.co_name != "__init__":
            return None
        at = steps[outer - 1]  # the frame's own f_lineno has moved on (to the `with` line, say)
        return Building(
            type(built.f_locals["self"]), _plain_arguments(built), user.f_code.co_filename, at.tb_lineno,
            user.f_code, at.tb_lasti,
        )  # fmt: skip
    return None


def _plain_arguments(frame: FrameType) -> tuple[tuple[str, Any], ...]:
    info = inspect.getargvalues(frame)
    found = []
    for name in info.args[1:]:  # without self
        value = info.locals.get(name)
        if isinstance(value, (*_PLAIN, str)) or (
            isinstance(value, tuple) and all(isinstance(v, _PLAIN) for v in value)
        ):
            found.append((name, value))
    return tuple(found)


def _placed(tensor: torch.Tensor) -> tuple[torch.device | None, tuple[int, ...] | None]:
    """A module tensor's device and sizes (none for a lazy module's parameter, which has no size yet)."""
    if is_lazy(tensor):
        return None, None
    try:
        return tensor.device, tuple(tensor.shape)
    except RuntimeError:  # a nested tensor has no sizes
        return None, None


def _numel(parameter: torch.Tensor) -> int:
    return 0 if is_lazy(parameter) else parameter.numel()  # a LazyModule's parameter has no size yet


def _unregistered_modules(module: nn.Module, path: str, registered: set[int]) -> list[ModuleContainer]:
    """Plain list/tuple/dict attributes of ``module`` that hold modules the model does not
    register (a list of references to registered submodules is fine)."""
    found = []
    for name, value in vars(module).items():
        if name in _MODULE_INTERNALS or type(value) not in (list, tuple, dict):
            continue
        items = list(value.values()) if type(value) is dict else list(value)
        modules = [item for item in items if isinstance(item, nn.Module)]
        if not modules or all(id(item) in registered for item in modules):
            continue
        parameters = sum(_numel(p) for item in modules for p in item.parameters())
        wrapped = nn.ModuleDict(value) if type(value) is dict else nn.ModuleList(modules)
        registers = sum(_numel(p) for p in wrapped.parameters()) == parameters
        found.append(ModuleContainer(
            path, type(module).__name__, type(module), name, type(value).__name__, len(modules), parameters, registers,
        ))  # fmt: skip
    return found


_MODULE_INTERNALS = frozenset(vars(nn.Module()))  # training, _parameters, _buffers, hooks...


def _add_attributes(found: dict[int, ModuleAttribute], module: nn.Module, path: str,
                    sizes: dict[int, tuple[int, bool]]) -> None:  # fmt: skip
    cls = type(module)
    name_of_type = cls.__name__
    parameters, buffers = own_tensors(module)
    for name, param in parameters.items():
        if param is not None and id(param) not in found:
            found[id(param)] = ModuleAttribute(path, name_of_type, name, "parameter", cls, *_placed(param))
            sizes[id(param)] = (_numel(param), param.requires_grad)
    for name, buffer in buffers.items():
        if buffer is not None and id(buffer) not in found:
            found[id(buffer)] = ModuleAttribute(path, name_of_type, name, "buffer", cls, *_placed(buffer))
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
                found[id(item)] = ModuleAttribute(path, name_of_type, label, "attribute", cls, *_placed(item))
