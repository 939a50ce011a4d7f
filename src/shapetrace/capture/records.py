"""The records a trace is made of: metadata only, never a tensor.

Two layers, each defined once:
- *entries* (:class:`TensorEntry`, :class:`OpEntry`, :class:`CallEntry`): named tuples every
  analysis reads by field name, from :class:`OpEntries`/:class:`CallEntries` (the recorder's
  ``ops``/``modules``). The recorder's hot path appends them *raw* (see :class:`Entries`): exact
  tuples of the same fields, which the cyclic garbage collector stops tracking;
- *records* (:class:`TensorMeta`, :class:`OpRecord`, :class:`ModuleCall`): the frozen dataclasses
  users read, built from the entries lazily, when someone reads the trace.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, MutableSequence
from dataclasses import dataclass, field
from types import CodeType
from typing import Any, NamedTuple, TypeVar, overload

import torch


class TensorEntry(NamedTuple):
    """One tensor as the recorder saw it. ``tensor_id`` (``id()`` of the tensor) links an op's input
    to the op that produced it: a live tensor's id cannot be reused, so the latest recorded output
    with that id, before the consuming op, is its producer (:func:`producer`). ``path`` locates it
    in a nested value (``"[1]"``, ``".logits"``)."""

    shape: tuple[int | None, ...]  # None for a nested tensor's ragged dim
    dtype: torch.dtype
    device: torch.device
    requires_grad: bool
    tensor_id: int
    path: str = ""


class OpEntry(NamedTuple):
    """One torch-level call as the recorder appends it. ``code``/``lasti`` are the user's frame
    (the calling instruction); ``module_index`` the module call it ran in."""

    func: Callable
    module_index: int | None
    code: CodeType | None
    lasti: int
    inputs: tuple[TensorEntry, ...]
    outputs: tuple[TensorEntry, ...]
    failed: bool


class CallEntry(NamedTuple):
    """One module call as the recorder appends it; replaced (``_replace``) when the call ends.
    ``end_op`` is ``None`` while it runs; ``code``/``lasti`` are the line that called the module."""

    module_id: int
    path: str
    type: str
    call: int
    parent: int | None
    depth: int
    first_op: int
    end_op: int | None
    inputs: tuple[TensorEntry, ...]
    outputs: tuple[TensorEntry, ...]
    failed: bool
    code: CodeType | None
    lasti: int


# --- the recorder's raw entries, read as named entries ---------------------------------------
#
# The recorder appends each entry *raw*: an exact tuple whose items the cyclic garbage collector
# does not track (int, str, bool, None, dtype, device, code, exact tuples of ints), and at most one
# level of tuples deep. CPython stops tracking such a tuple at a collection that finds its items
# untracked, and only a collection of the generation it is in looks: a leaf tuple (a shape) is
# untracked by the first young collection, an entry that holds leaves by the next one, before it
# reaches the oldest generation. Deeper nesting would keep entries tracked there, where every full
# collection rescans them (bench/bench_scale.py). So:
#
# - a raw tensor entry is the six fields of TensorEntry, with its shape an exact tuple;
# - a raw op entry is ``(number, module_index, code, lasti, failed, n, *inputs, *outputs)``:
#   ``number`` is the func's in ``OpEntries.funcs``, then the fields of the input tensors' raw
#   entries one after another (``n`` of them), then the outputs';
# - a raw call entry is ``(module_id, path, type, call, parent, depth, first_op, code, lasti, n,
#   *inputs)`` while the call runs, its tensors the same way; when it ends, ``(end_op, failed,
#   *outputs)`` is appended to it (one concatenation: the hook runs once per module call).
#
# The recorder builds raw entries inline on its hot paths (:func:`with_inputs` adds a call's
# keyword inputs, known only when it ends). Only this section reads a raw entry.

_Entry = TypeVar("_Entry", OpEntry, CallEntry)
_new = tuple.__new__
_TENSOR_FIELDS = len(TensorEntry._fields)
_OP_HEAD = 6  # the fields of a raw op before its tensors'
_CALL_HEAD = 10  # of a raw call


class Entries(MutableSequence[_Entry]):
    """A recorder's entries in order, read as named tuples. The recorder appends raw entries to
    :attr:`raw`; an entry becomes its named tuple at its first read, in place, so a read during
    capture and every later read give the same object. Named entries may be appended or set too
    (the symbolic pass splices and rewrites its own)."""

    def __init__(self) -> None:
        self.raw: list[Any] = []  # raw or named entries, in order (the recorder appends raw ones)

    def _named(self, raw: tuple) -> _Entry:
        raise NotImplementedError

    def _read(self, index: int) -> _Entry:
        entry = self.raw[index]
        if type(entry) is tuple:
            entry = self.raw[index] = self._named(entry)
        return entry

    def __len__(self) -> int:
        return len(self.raw)

    @overload
    def __getitem__(self, index: int) -> _Entry: ...
    @overload
    def __getitem__(self, index: slice) -> list[_Entry]: ...
    def __getitem__(self, index: int | slice) -> _Entry | list[_Entry]:
        if isinstance(index, slice):
            return [self._read(i) for i in range(*index.indices(len(self.raw)))]
        return self._read(index)

    def __iter__(self) -> Iterator[_Entry]:
        i = 0
        while i < len(self.raw):  # the recorder may append while a listener iterates
            yield self._read(i)
            i += 1

    @overload
    def __setitem__(self, index: int, entry: _Entry) -> None: ...
    @overload
    def __setitem__(self, index: slice, entry: Iterable[_Entry]) -> None: ...
    def __setitem__(self, index: int | slice, entry: Any) -> None:
        self.raw[index] = list(entry) if isinstance(index, slice) else entry

    def __delitem__(self, index: int | slice) -> None:
        del self.raw[index]

    def insert(self, index: int, entry: _Entry) -> None:
        self.raw.insert(index, entry)

    def append(self, entry: _Entry) -> None:
        self.raw.append(entry)

    def __repr__(self) -> str:
        return f"<{type(self).__name__}: {len(self.raw)} entries>"


class OpEntries(Entries[OpEntry]):
    """The op entries of a recording. A raw op names its ``func`` by number: :meth:`number`."""

    def __init__(self) -> None:
        super().__init__()
        self.funcs: list[Callable] = []  # every func recorded, by number
        self.numbers: dict[Callable, int] = {}  # func -> its number (the recorder reads it first)

    def number(self, func: Callable) -> int:
        """``func``'s number in :attr:`funcs`, given it on first sight."""
        number = self.numbers.get(func)
        if number is None:
            number = self.numbers[func] = len(self.funcs)
            self.funcs.append(func)
        return number

    def rename(self, recorded: Callable, func: Callable) -> None:
        """The raw entries recorded under ``recorded`` are ``func``'s: the symbolic replay records
        an op it answers itself (a made output) under the op's own func, and drops the maker."""
        number = self.numbers.pop(recorded, None)
        if number is not None:
            self.funcs[number] = func

    def _named(self, raw: tuple) -> OpEntry:
        number, module_index, code, lasti, failed, n = raw[:_OP_HEAD]
        split = _OP_HEAD + n
        return _new(OpEntry, (
            self.funcs[number], module_index, code, lasti, _tensor_entries(raw, _OP_HEAD, split),
            _tensor_entries(raw, split, len(raw)), failed,
        ))  # fmt: skip


class CallEntries(Entries[CallEntry]):
    """The module call entries of a recording."""

    def _named(self, raw: tuple) -> CallEntry:
        module_id, path, type_name, call, parent, depth, first_op, code, lasti, n = raw[:_CALL_HEAD]
        split = _CALL_HEAD + n
        outputs: tuple[TensorEntry, ...] = ()
        if len(raw) == split:  # still running
            end_op, failed = None, False
        else:
            end_op, failed, outputs = raw[split], raw[split + 1], _tensor_entries(raw, split + 2, len(raw))
        return _new(CallEntry, (
            module_id, path, type_name, call, parent, depth, first_op, end_op, _tensor_entries(raw, _CALL_HEAD, split),
            outputs, failed, code, lasti,
        ))  # fmt: skip


def _tensor_entries(raw: tuple, start: int, stop: int) -> tuple[TensorEntry, ...]:
    """The tensor entries whose fields are ``raw[start:stop]``."""
    if stop - start == _TENSOR_FIELDS:  # one tensor, the most common
        return (_new(TensorEntry, raw[start:stop]),)
    return tuple([_new(TensorEntry, raw[i : i + _TENSOR_FIELDS]) for i in range(start, stop, _TENSOR_FIELDS)])


def with_inputs(start: tuple, more_inputs: tuple) -> tuple:
    """The raw entry of a running call, ``start``, with ``more_inputs`` (from :func:`raw_tensors`)
    after its inputs: keyword tensors, known only when the call ends."""
    return (*start[: _CALL_HEAD - 1], start[_CALL_HEAD - 1] + len(more_inputs), *start[_CALL_HEAD:], *more_inputs)


_Record = TypeVar("_Record")

GENERATED_PREFIX = "d"  # d0, d1, ...: the symbolic pass's name for a dim no source names
GENERATED_NAME = re.compile(GENERATED_PREFIX + r"\d+")
_NAME = re.compile(r"[A-Za-z_]\w*")


def build(cls: type[_Record], **fields: Any) -> _Record:
    """A frozen record from all of its fields, without the frozen ``__init__``'s per-field
    ``object.__setattr__`` (2 µs for seven fields): a trace builds several records per op.
    Equal to ``cls(**fields)`` (tests/capture/test_records.py)."""
    record = object.__new__(cls)
    record.__dict__.update(fields)
    return record


# dtype / device -> its name in records and JSON (``str(device)`` costs ~0.8 us, per tensor written)
_DTYPE_NAMES: dict[torch.dtype, str] = {}
_DEVICE_NAMES: dict[torch.device, str] = {}

@dataclass(frozen=True)
class TensorMeta:
    """Shape, dtype, device and requires_grad of one tensor.

    ``path`` locates the tensor inside the value it came from (``""`` for a bare tensor,
    ``"[1]"``, ``"['logits']"``, ``".last_hidden_state"``). ``tensor_id`` is ``id()`` of the
    tensor while it was alive (see :class:`TensorEntry`). ``expr`` is the symbolic shape text, filled
    by the symbolic pass (``(B, C, H/2, W/2)``); ``expr_exact`` the same without the
    divisibility it was printed under (``(B, C, (H - 1)//2 + 1, (W - 1)//2 + 1)``).
    """

    shape: tuple[Any, ...]
    dtype: torch.dtype
    device: torch.device
    requires_grad: bool
    tensor_id: int = 0
    path: str = ""
    expr: str | None = None
    expr_exact: str | None = None

    @classmethod
    def from_entry(cls, entry: TensorEntry, expr: str | None = None, expr_exact: str | None = None) -> TensorMeta:
        return build(
            cls, shape=tuple(entry.shape), dtype=entry.dtype, device=entry.device,
            requires_grad=entry.requires_grad, tensor_id=entry.tensor_id, path=entry.path, expr=expr,
            expr_exact=expr_exact,
        )  # fmt: skip

    @property
    def dtype_name(self) -> str:
        name = _DTYPE_NAMES.get(self.dtype)
        if name is None:
            name = _DTYPE_NAMES[self.dtype] = str(self.dtype).removeprefix("torch.")
        return name

    @property
    def device_name(self) -> str:
        name = _DEVICE_NAMES.get(self.device)
        if name is None:
            name = _DEVICE_NAMES[self.device] = str(self.device)
        return name

    @property
    def is_symbolic(self) -> bool:
        return any(not isinstance(size, int) for size in self.shape)

    @property
    def named_expr(self) -> str | None:
        """``expr`` when it names a dim the user named; ``None`` when every name in it is a
        generated one (``(d0, d1*d2)``), where the sizes themselves say more."""
        if self.expr is None or not all(GENERATED_NAME.fullmatch(name) for name in _NAME.findall(self.expr)):
            return self.expr
        return None

    def shape_text(self, named_only: bool = False) -> str:
        """The shape as the seeds write it: ``(8, 16, 512)``, or ``expr`` when known (with
        ``named_only``, only an expr that names a user's dim: see :attr:`named_expr`)."""
        expr = self.named_expr if named_only else self.expr
        if expr is not None:
            return expr
        sizes = ["*" if size is None else str(size) for size in self.shape]  # *: a nested tensor's ragged dim
        return "(" + ", ".join(sizes) + (",)" if len(sizes) == 1 else ")")


@dataclass(frozen=True)
class OpRecord:
    """One torch-level call: what ran, where in the source, in which module, on what.

    ``lasti`` is the offset of the calling instruction in the user's code object (-1 if unknown):
    it orders the calls one line makes and tells a line's next execution from the same one.
    """

    index: int
    op: str
    qualname: str
    module: str | None
    module_call: int | None
    module_index: int | None
    file: str
    line: int
    code: str
    inputs: tuple[TensorMeta, ...]
    outputs: tuple[TensorMeta, ...]
    failed: bool = False
    lasti: int = -1

    @property
    def location(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass(frozen=True)
class ModuleCall:
    """One call of an ``nn.Module``: its path as in ``named_modules()`` and call number (from 1).

    ``first_op``/``end_op`` bound the ops that ran inside it (``end_op`` exclusive);
    ``parent`` is the index of the enclosing module call, ``None`` at the top. ``file``/``line``/
    ``code`` are the user's line that called the module, ``lasti`` the calling instruction (see ``OpRecord``).
    """

    index: int
    path: str
    type: str
    call: int
    parent: int | None
    depth: int
    first_op: int
    end_op: int
    inputs: tuple[TensorMeta, ...]
    outputs: tuple[TensorMeta, ...]
    failed: bool = False
    file: str = "<unknown>"
    line: int = 0
    code: str = ""
    lasti: int = -1


@dataclass(frozen=True)
class ErrorRecord:
    """The exception that ended a traced block, and the op that raised it (``None`` if no op did)."""

    type: str
    message: str
    op_index: int | None


@dataclass(frozen=True)
class ParameterCount:
    """Parameter elements of one module (``type`` its class): held by the module itself (``own``)
    and with its submodules (``total``), and how many of each have ``requires_grad``. A parameter
    shared by several modules counts once, for the first that holds it (as ``model.parameters()``)."""

    type: str
    own: int
    own_trainable: int
    total: int
    total_trainable: int


@dataclass
class Summary:
    """What a finished trace knows about the run as a whole.

    ``modules`` maps module paths (as in ``named_modules()``, ``""`` the model) to their
    :class:`ParameterCount`; ``trainable`` counts parameter elements with ``requires_grad``.
    """

    model_type: str | None = None
    parameters: int | None = None
    trainable: int | None = None
    modules: dict[str, ParameterCount] = field(default_factory=dict)
    uninitialised: int = 0  # parameters of lazy modules not called yet: the totals are unknown
    freed: bool = False  # the model was freed before the trace was read: nothing is known of it


# --- flattening nested values into tensor metadata -------------------------------------------

_MAX_DEPTH = 6


def raw_tensor_entry(tensor: torch.Tensor, path: str = "") -> tuple:
    """``tensor``'s raw entry: :class:`TensorEntry`'s fields in an exact tuple (see :class:`Entries`).
    A nested tensor's ragged dims are ``None``."""
    shape: tuple[int | None, ...]
    try:
        shape = tuple(tensor.shape)
    except RuntimeError:  # a strided nested tensor has no sizes: only its regular dims have one
        shape = tuple([_size_or_none(tensor, dim) for dim in range(tensor.dim())])
    return (shape, tensor.dtype, tensor.device, tensor.requires_grad, id(tensor), path)


def tensor_entry(tensor: torch.Tensor, path: str = "") -> TensorEntry:
    """``tensor``'s entry."""
    return _new(TensorEntry, raw_tensor_entry(tensor, path))


def _size_or_none(tensor: torch.Tensor, dim: int) -> int | None:
    try:
        return tensor.size(dim)
    except RuntimeError:
        return None


def iter_tensors(value: Any, path: str = "") -> Iterator[tuple[str, torch.Tensor]]:
    """Every tensor inside ``value`` with its path: tuples, lists, dicts, dataclasses,
    ``ModelOutput``-style mappings and named tuples."""
    found: list[tuple[str, torch.Tensor]] = []
    _collect(value, path, 0, lambda p, t: found.append((p, t)))
    return iter(found)


def raw_tensors(value: Any, path: str = "") -> tuple:
    """The raw entries of every tensor inside ``value`` (see :func:`iter_tensors`), their fields one
    after another, as raw op and call entries hold them (see :class:`Entries`)."""
    if isinstance(value, torch.Tensor):  # the common cases, kept cheap: a module's output, its (x,)
        return raw_tensor_entry(value, path)
    if type(value) is tuple and len(value) == 1 and isinstance(value[0], torch.Tensor):
        return raw_tensor_entry(value[0], path + "[0]")
    found: list = []
    _collect(value, path, 0, lambda p, t: found.extend(raw_tensor_entry(t, p)))
    return tuple(found)


_ATOMS = (str, bytes, int, float, bool, type(None))


def _collect(value: Any, path: str, depth: int, emit: Callable[[str, torch.Tensor], None]) -> None:
    if isinstance(value, torch.Tensor):
        emit(path, value)
    elif isinstance(value, _ATOMS) or depth >= _MAX_DEPTH:
        return
    elif type(value) is tuple or type(value) is list:
        for i, item in enumerate(value):
            _collect(item, f"{path}[{i}]", depth + 1, emit)
    elif isinstance(value, tuple) and hasattr(value, "_fields"):
        for key, item in zip(value._fields, value):
            _collect(item, f"{path}.{key}", depth + 1, emit)
    elif isinstance(value, (list, tuple)):
        for i, item in enumerate(value):
            _collect(item, f"{path}[{i}]", depth + 1, emit)
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):  # also ModelOutput
        for f in dataclasses.fields(value):
            _collect(getattr(value, f.name, None), f"{path}.{f.name}", depth + 1, emit)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _collect(item, f"{path}[{key!r}]", depth + 1, emit)
