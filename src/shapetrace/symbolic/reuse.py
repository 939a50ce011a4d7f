"""Repeated blocks replayed once: a call of a module identical to one already replayed in this
fake run, with inputs of the same symbolic shapes, does not run again. Its recorded ops and module
calls are copies of the first call's, and it returns new fake tensors with the first call's
output sizes (the same expressions: both calls share one ShapeEnv).

Two calls are the same block when (docs/symbolic.md, "Repeated blocks"):

- their modules are *identical*: same class, same submodule tree (names and classes), parameters
  and buffers of the same shapes, dtypes and devices, the same per-module hooks, and equal plain
  attributes (``heads``, ``eps``, ``training``, tuples of these; other objects must be the very
  same object, like a shared config). Attributes named like a position in a stack
  (``layer_idx``, ``block_id``, ``index``, ``name``, ``prefix``) are not compared: they number
  the copies;
- their inputs match: tensors of the same symbolic sizes and strides, dtype, device and
  ``requires_grad``, equal plain values, the same other objects;
- in a replay, their concrete runs did the same thing: the same ops at the same lines with the
  same concrete sizes, and the same module calls inside (checked before the pass runs, from the
  trace). ``trace_shapes`` has no concrete run and relies on the first two.

What reuse assumes, and cannot check: that nothing else a block reads changes its shapes (a
global counter, Python's ``random``, an attribute named like ``layer_idx`` that feeds a size),
and that a skipped block's effects on objects made during the replay (a KV cache the model
builds in ``forward``) are not read by a later op in a way that changes its expression but not
its size (a changed size is caught: every op's sizes are checked against the concrete run).
"""

from __future__ import annotations

import enum
import itertools
import operator
import re
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from shapetrace._private import torch_symbolic as ts
from shapetrace._private.torch_api import DisableTorchFunction, child_modules
from shapetrace.capture.records import CallEntry, OpEntry, TensorEntry
from shapetrace.capture.source import user_frame

_NUMBERING = re.compile(r"^_?((layer|block|stage|level)_?(idx|id|index|num|number|no)|idx|index|name|prefix)$")
_NOT_COMPARED_NAMES = frozenset({"_parameters", "_buffers", "_modules", "_flat_weights", "_flat_weight_refs"})
_PLAIN = (int, float, bool, str, bytes, complex, type(None), torch.dtype, torch.device, torch.layout, enum.Enum)
_PLAIN_TYPES = frozenset({int, float, bool, str, bytes, complex, type(None)})  # keyed as _value_key keys them
_MAX_ITEMS = 64


class Fingerprints:
    """Structural identity of modules, as small ints (equal ints: identical modules)."""

    def __init__(self) -> None:
        self._by_module: dict[int, int] = {}
        self._interned: dict[tuple, int] = {}
        self._alive: list[nn.Module] = []  # keeps ids valid while the pass runs
        self._kinds: dict[str, str] = {}  # attribute name -> how it is compared (_attribute_kind)

    def of(self, module: nn.Module) -> int:
        found = self._by_module.get(id(module))
        if found is not None:
            return found
        kinds = self._kinds
        parts: list[Any] = [type(module)]
        for name, value in module.__dict__.items():
            kind = kinds[name] if name in kinds else kinds.setdefault(name, _attribute_kind(name))
            if kind is _NOT_COMPARED:
                continue
            if kind is _HOOKS and isinstance(value, dict):  # a registry of hooks: the hooks themselves
                parts.append((name, tuple(map(id, value.values())) if value else ()))
            else:
                parts.append((name, (type(value), value) if type(value) in _PLAIN_TYPES else _value_key(value)))
        for name, parameter in module._parameters.items():
            parts.append(("parameter", name, _tensor_key(parameter) if parameter is not None else None))
        for name, buffer in module._buffers.items():
            parts.append(("buffer", name, _tensor_key(buffer) if buffer is not None else None))
        for name, child in module._modules.items():
            parts.append(("module", name, self.of(child) if child is not None else None))
        key = self._interned.setdefault(tuple(parts), len(self._interned))
        self._by_module[id(module)] = key
        self._alive.append(module)
        return key


_NOT_COMPARED, _HOOKS, _VALUE = "not compared", "hooks", "value"  # how an attribute is compared


def _attribute_kind(attribute: str) -> str:
    """Whether two modules must agree on this attribute to be twins (not their submodules and
    weights, compared apart, nor a number naming their place: ``layer_idx``), and whether it is
    named like a registry of hooks (compared by the hooks' identity)."""
    if attribute in _NOT_COMPARED_NAMES or _NUMBERING.match(attribute):
        return _NOT_COMPARED
    return _HOOKS if "hook" in attribute else _VALUE


def _tensor_key(tensor: torch.Tensor) -> tuple:
    return type(tensor), tuple(tensor.shape), tensor.dtype, tensor.device, tensor.requires_grad


def _value_key(value: Any, depth: int = 0) -> Hashable:
    if isinstance(value, _PLAIN):
        return type(value), value
    if isinstance(value, torch.Tensor):
        return _tensor_key(value)
    if isinstance(value, (tuple, list, frozenset)) and depth < 2 and len(value) <= _MAX_ITEMS:
        items = sorted(value, key=repr) if isinstance(value, frozenset) else value
        return type(value), tuple(_value_key(item, depth + 1) for item in items)
    if isinstance(value, set) and len(value) <= _MAX_ITEMS and all(isinstance(item, _PLAIN) for item in value):
        return set, frozenset(value)
    return "object", id(value)


# --- the concrete side: which calls of a replayed root call are the same block -------------------


def concrete_groups(ops: list, modules: list, root: int, end: int, root_module: nn.Module,
                    fingerprints: Fingerprints) -> dict[int, Hashable]:  # fmt: skip
    """``offset -> group`` for the module calls ``root+1 .. end-1`` (offset = index - root) that
    have a twin: an identical module whose concrete call did the same ops, at the same lines,
    with the same sizes, and the same module calls inside."""
    by_path = _modules_by_path(root_module, modules[root].path)
    first_pass: dict[tuple, list[int]] = {}
    for i in range(root + 1, end):
        call = modules[i]
        module = by_path.get(call.path)
        if module is None or call.failed or call.end_op is None:
            continue
        first_pass.setdefault((type(module), fingerprints.of(module)), []).append(i)
    numbers: dict[tuple, int] = {}  # what an op did (func, line, sizes, failure) -> a small int
    number_of: dict[int, int] = {}  # op index -> the number of what it did
    module_of: dict[int, int | None] = {}  # op index -> its module call

    def ops_of(i: int, first: int, end: int) -> tuple:
        """What the ops of call ``i`` did, and the calls they ran in (relative to ``i``)."""
        for j in range(first, end):
            if j not in number_of:
                op = ops[j]
                done = (op.func, op.code, op.lasti, tuple(map(_SHAPE, op.inputs)), tuple(map(_SHAPE, op.outputs)),
                        op.failed)  # fmt: skip
                number_of[j] = numbers.setdefault(done, len(numbers))
                module_of[j] = op.module_index
        return (
            tuple([number_of[j] for j in range(first, end)]),
            tuple([module - i if module is not None else None for module in map(module_of.__getitem__, range(first, end))]),
        )  # fmt: skip

    groups: dict[int, Hashable] = {}
    for identity, members in first_pass.items():
        if len(members) < 2:
            continue
        by_key: dict[tuple, list[int]] = {}
        for i in members:
            call = modules[i]
            last = _subtree_end(modules, i, end)
            prefix = len(call.path)
            inner = tuple(
                (modules[k].path[prefix:], modules[k].type, modules[k].failed, modules[k].first_op - call.first_op)
                for k in range(i + 1, last)
            )
            by_key.setdefault((identity, inner, ops_of(i, call.first_op, call.end_op)), []).append(i)
        for key, same in by_key.items():
            if len(same) > 1:
                group = hash(key), same[0]
                for i in same:
                    groups[i - root] = group
    return groups


_SHAPE = operator.attrgetter("shape")


def model_groups(model: nn.Module, fingerprints: Fingerprints) -> dict[int, Hashable]:
    """``id(module) -> group`` for the modules of ``model`` that have an identical twin in it
    (``trace_shapes``: no concrete run to compare with)."""
    seen: dict[int, list[int]] = {}
    for module in all_modules(model):
        seen.setdefault(fingerprints.of(module), []).append(id(module))
    return {module: key for key, members in seen.items() if len(members) > 1 for module in members}


def _subtree_end(modules: list, i: int, end: int) -> int:
    depth = modules[i].depth
    k = i + 1
    while k < end and modules[k].depth > depth:
        k += 1
    return k


def all_modules(model: nn.Module) -> Iterable[nn.Module]:
    """``model`` and its submodules, each once (a shared one too)."""
    seen: set[int] = set()
    stack = [model]
    while stack:
        module = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        yield module
        stack.extend(child for _, child in child_modules(module))


def _modules_by_path(root: nn.Module, root_path: str) -> dict[str, nn.Module]:
    """``path -> module`` as the recorder names them (``module_paths``), under ``root``: depth
    first, a shared module under its first path (a loop, not a recursive closure: that would be
    a cycle left to the collector on each call)."""
    found: dict[str, nn.Module] = {}
    seen: set[int] = set()
    stack = [(root, root_path)]
    while stack:
        module, path = stack.pop()
        if id(module) in seen:
            continue
        seen.add(id(module))
        found[path] = module
        children = [(child, f"{path}.{name}" if path else name) for name, child in child_modules(module)]
        stack.extend(reversed(children))
    return found


# --- the fake side: replaying a block once -------------------------------------------------------


@dataclass
class _Block:
    """A replayed call, kept to stand for its twins."""

    ops: list[OpEntry]  # the op entries of the call, in order
    calls: list[CallEntry]  # its module call entries (itself first)
    first_call: int  # the index the call was recorded at (entries refer to calls by index)
    input_ids: list[int]  # ids of its input tensors, in signature order
    output: Any  # output skeleton: ("tensor", index into output_tensors) / ("input", i) / containers / values
    output_tensors: list[torch.Tensor]
    indirect: set[int]  # offsets (within calls) of calls a library helper made


@dataclass(frozen=True)
class Splice:
    """Where a spliced call's copied entries are in the recorder, and where the ones they copy are."""

    first_op: int  # recorder index of its first op
    source_op: int  # recorder index of the first op of the call it copies
    ops: int  # how many ops were copied
    first_call: int  # recorder index of its call entry
    source_call: int  # recorder index of the copied call's entry


class BlockReuse:
    """Routes the module calls of one fake run (see :func:`ts.module_calls_through`): a call whose
    group (``group_of(module, offset)``) and input signature match a finished call is spliced
    from it; any other call runs, and is kept if it has a group."""

    def __init__(self, recorder: Any, mode: Any, group_of: Callable[[nn.Module, int], Hashable | None],
                 rename: bool = True) -> None:  # fmt: skip
        self.recorder = recorder
        self.mode = mode
        self.group_of = group_of
        self.rename = rename  # give the copies' tensors their own ids (the records are a trace's: dataflow)
        self.done: dict[tuple, _Block] = {}
        self.reused = 0  # calls spliced
        self.spliced: list[Splice] = []  # in the order they were spliced
        self._fresh_ids = itertools.count(-1, -1)  # ids of tensors a spliced call "made"
        self._paths: dict[tuple[int, str], tuple[nn.Module, dict]] = {}  # (id, path) -> (module, its submodules by path)

    def call(self, module: nn.Module, args: tuple, kwargs: dict, run: Callable[[], Any], caller: Any = None) -> Any:
        """``module(*args, **kwargs)``: spliced from a finished twin, else ``run()``; ``caller`` is
        the frame that called the module."""
        recorder = self.recorder
        if recorder._model_only and id(module) not in recorder._paths:
            return run()  # not recorded: not a block of the model
        offset = len(recorder.modules)
        group = self.group_of(module, offset)
        if group is None:
            return run()
        inputs: list[torch.Tensor] = []
        with DisableTorchFunction():  # reading sizes and dtypes here is no op of the model's (nor the recorder's)
            signature = _signature((args, kwargs), inputs)
        if signature is None:
            return run()
        block = self.done.get((group, signature))
        if block is not None:
            return self._splice(block, module, inputs, caller)
        first_op = len(recorder.ops)
        result = run()
        calls = recorder.modules[offset:]
        if calls and calls[0].module_id == id(module) and not any(c.failed for c in calls):
            outputs: list[torch.Tensor] = []
            with DisableTorchFunction():
                skeleton = _output_skeleton(result, {id(t): i for i, t in enumerate(inputs)}, outputs)
            if skeleton is not None:
                indirect = {k - offset for k in recorder.indirect_calls if k >= offset}
                self.done[(group, signature)] = _Block(
                    recorder.ops[first_op:], calls, offset,
                    [id(t) for t in inputs], skeleton, outputs, indirect,
                )  # fmt: skip
        return result

    def _splice(self, block: _Block, module: nn.Module, inputs: list[torch.Tensor], caller: Any) -> Any:
        recorder = self.recorder
        with DisableTorchFunction(), self.mode:  # new fakes, not recorded as ops
            outputs = []
            for tensor in block.output_tensors:  # an alias has the same sizes and costs no sympy work
                made = ts.alias(tensor)
                outputs.append(made.requires_grad_(True) if tensor.requires_grad else made)
        top = block.calls[0]
        source_first = top.first_op
        if self.rename:
            ids = dict(zip(block.input_ids, (id(t) for t in inputs)))
            ids.update(zip((id(t) for t in block.output_tensors), (id(t) for t in outputs)))
            for entry in block.ops:  # tensors made inside the block get new ids
                for meta in entry.outputs:
                    ids.setdefault(meta.tensor_id, next(self._fresh_ids))
            renamed = lambda metas: _renamed(metas, ids)  # noqa: E731
        else:
            renamed = lambda metas: metas  # noqa: E731
        first_op, first_call = len(recorder.ops), len(recorder.modules)
        stack = recorder._stack
        parent, depth = (stack[-1] if stack else None), len(stack)
        source_path = top.path
        path = recorder._paths.get(id(module), source_path)
        known = self._paths.get((id(module), path))
        if known is None or known[0] is not module:  # a module's tree does not change during the pass
            known = self._paths[(id(module), path)] = (module, _modules_by_path(module, path))
        submodules = known[1]
        frame = user_frame(caller)  # the line that called the module, as the recorder finds it
        shift = first_call - block.first_call
        new = tuple.__new__  # entries made without NamedTuple.__new__'s keyword handling: blocks splice many
        for k, call in enumerate(block.calls):
            call_path = path + call.path[len(source_path) :]
            sub = submodules.get(call_path)
            key = id(sub) if sub is not None else call.module_id
            count = recorder._calls[key] = recorder._calls.get(key, 0) + 1
            code, lasti = (frame.f_code, frame.f_lasti) if k == 0 and frame is not None else (call.code, call.lasti)
            recorder.modules.append(new(CallEntry, (
                key, call_path, call.type, count, parent if k == 0 else call.parent + shift,
                depth + call.depth - top.depth, first_op + call.first_op - source_first,
                first_op + call.end_op - source_first, renamed(call.inputs), renamed(call.outputs), call.failed, code,
                lasti,
            )))  # fmt: skip
            if k in block.indirect:
                recorder.indirect_calls.add(first_call + k)
        for entry in block.ops:
            module_index = entry.module_index
            recorder.ops.append(new(OpEntry, (
                entry.func, module_index + shift if module_index is not None else None, entry.code, entry.lasti,
                renamed(entry.inputs), renamed(entry.outputs), entry.failed,
            )))  # fmt: skip
        self.reused += 1
        self.spliced.append(Splice(first_op, source_first, len(block.ops), first_call, block.first_call))
        return _rebuild_output(block.output, outputs, inputs)


def _renamed(entries: tuple[TensorEntry, ...], ids: dict[int, int]) -> tuple[TensorEntry, ...]:
    new = tuple.__new__
    return tuple(
        new(TensorEntry, (e.shape, e.dtype, e.device, e.requires_grad, ids.get(e.tensor_id, e.tensor_id), e.path))
        for e in entries
    )


def _signature(value: Any, tensors: list[torch.Tensor], depth: int = 0) -> Hashable | None:
    """A hashable image of a call's arguments: fake tensors by symbolic sizes and strides; ``None``
    when it cannot be made (too deep, an unhashable value)."""
    if isinstance(value, torch.Tensor):
        for i, seen in enumerate(tensors):
            if seen is value:
                return "same", i
        tensors.append(value)
        if not ts.is_fake(value):
            return "real", id(value)
        return ("tensor", ts.size_exprs(value.shape), ts.size_exprs(value.stride()), value.dtype, value.device,
                value.requires_grad)  # fmt: skip
    if isinstance(value, _PLAIN):
        return type(value), value
    if depth >= 4:
        return None
    if isinstance(value, (tuple, list)):
        items = tuple(_signature(item, tensors, depth + 1) for item in value)
        return None if None in items else (type(value), items)
    if isinstance(value, dict):
        items = tuple((key, _signature(item, tensors, depth + 1)) for key, item in value.items())
        return None if any(item is None for _, item in items) else ("dict", items)
    return "object", id(value)


def _output_skeleton(value: Any, inputs: dict[int, int], tensors: list[torch.Tensor], depth: int = 0) -> Any:
    """``value`` with each tensor as ``("input", i)`` (returned unchanged) or ``("tensor", k)``;
    ``None`` when it holds something a twin could not return (an object)."""
    if isinstance(value, torch.Tensor):
        if id(value) in inputs:
            return "input", inputs[id(value)]
        if not ts.is_fake(value):
            return None
        tensors.append(value)
        return "tensor", len(tensors) - 1
    if isinstance(value, _PLAIN):
        return "value", value
    if depth >= 4:
        return None
    if isinstance(value, (tuple, list)) and (type(value) in (tuple, list) or hasattr(value, "_fields")):
        items = [_output_skeleton(item, inputs, tensors, depth + 1) for item in value]
        return None if None in items else ("sequence", type(value), items)
    if type(value) is dict:
        items = {key: _output_skeleton(item, inputs, tensors, depth + 1) for key, item in value.items()}
        return None if None in items.values() else ("dict", items)
    return None


def _rebuild_output(skeleton: Any, outputs: list[torch.Tensor], inputs: list[torch.Tensor]) -> Any:
    kind = skeleton[0]
    if kind == "tensor":
        return outputs[skeleton[1]]
    if kind == "input":
        return inputs[skeleton[1]]
    if kind == "value":
        return skeleton[1]
    if kind == "dict":
        return {key: _rebuild_output(item, outputs, inputs) for key, item in skeleton[1].items()}
    _, kind_type, items = skeleton
    rebuilt = [_rebuild_output(item, outputs, inputs) for item in items]
    if kind_type in (tuple, list):
        return kind_type(rebuilt)
    return kind_type(*rebuilt)  # a named tuple
