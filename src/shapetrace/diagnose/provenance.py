"""Where each operand came from.

A raw tensor's id links it to the op that made it: the latest recorded op output with the same
id, before the consuming op, is its producer (a live tensor's id cannot be reused). Operands with
no recorded producer are module parameters, buffers or plain attributes (by id, from the
evidence taken while the modules were alive), inputs of a module call, or made before the trace.
"""

from __future__ import annotations

import ast
import re
from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Callable
from functools import cached_property
from typing import TYPE_CHECKING

from shapetrace.capture.recording import Producers
from shapetrace.capture.records import ModuleCall, OpRecord, TensorMeta
from shapetrace.capture.source import short_location
from shapetrace.diagnose.callsite import CallSite, call_site, module_call_site
from shapetrace.diagnose.diagnostic import Origin
from shapetrace.diagnose.evidence import Evidence, ModuleAttribute
from shapetrace.diagnose.ops import FACTORIES, NO_DEVICE_KWARG

if TYPE_CHECKING:
    from shapetrace.trace import Trace

_WALK_LIMIT = 500


class Dataflow:
    """Producers, attributes and module inputs of a finished trace's tensors."""

    def __init__(self, trace: Trace, evidence: Evidence | None) -> None:
        self.trace = trace
        self.ops: list[OpRecord] = trace.ops
        self.evidence = evidence if evidence is not None else Evidence()
        self.attributes = self.evidence.attributes
        self.torch_modules = self.evidence.torch_modules
        self._producers = Producers(self.ops)

    # --- lookups ------------------------------------------------------------------------------

    def producer(self, tensor_id: int, before: int) -> OpRecord | None:
        """The op that made the tensor ``tensor_id`` used by op ``before``, if it was recorded."""
        index = self._producers.of(tensor_id, before)
        return self.ops[index] if index is not None else None

    @cached_property
    def _used(self) -> dict[int, list[int]]:
        used: dict[int, list[int]] = {}
        for op in self.ops:
            for meta in op.inputs:
                used.setdefault(meta.tensor_id, []).append(op.index)
        return used

    def consumers(self, tensor_id: int, made_at: int) -> list[int]:
        """The ops that used the tensor op ``made_at`` made (until another tensor got its id)."""
        made = self._producers.made(tensor_id)
        next_made = bisect_right(made, made_at)
        end = made[next_made] if next_made < len(made) else len(self.ops)
        used = self._used.get(tensor_id, [])
        return used[bisect_left(used, made_at + 1) : bisect_left(used, end + 1)]

    def attribute(self, tensor_id: int, before: int) -> ModuleAttribute | None:
        """The module attribute the tensor ``tensor_id`` used by op ``before`` is: one without a
        recorded producer, or one made by ops outside any forward (a module built in the trace)."""
        attribute = self.attributes.get(tensor_id)
        if attribute is None:
            return None
        made = self._producers.made(tensor_id)
        # An attribute lives until the trace ends: no later tensor has its id, and an earlier one
        # with that id was made and dropped before the attribute was made.
        if any(index >= before for index in made):
            return None
        producer = self.producer(tensor_id, before)
        return attribute if producer is None or producer.module_index is None else None

    def func(self, op: OpRecord) -> Callable | None:
        """The function op ``op`` called (``torch.nn.functional.linear``, ``Tensor.view``)."""
        return self.trace.recording.ops[op.index].func

    @cached_property
    def _first_input_of(self) -> dict[int, ModuleCall]:
        found: dict[int, ModuleCall] = {}
        for call in self.trace.modules:
            for meta in call.inputs:
                found.setdefault(meta.tensor_id, call)
        return found

    def module_input(self, tensor_id: int, before: int) -> ModuleCall | None:
        """The first module call that took the tensor as input, if it had no recorded producer."""
        call = self._first_input_of.get(tensor_id)
        if call is None or call.first_op > before or self.producer(tensor_id, before) is not None:
            return None
        return call

    def model_entry(self, meta: TensorMeta, at: int) -> tuple[ModuleCall, int] | None:
        """The top-level module call that took ``meta`` — or the tensor it was computed from on
        the same device — as an input, and that tensor's id (a script's input to the model)."""
        tensor_id, index = meta.tensor_id, at
        for _ in range(_WALK_LIMIT):
            call = self._first_input_of.get(tensor_id)
            if call is not None and call.parent is None and call.first_op <= at:
                return call, tensor_id
            op = self.producer(tensor_id, index)
            same = [m for m in op.inputs if m.device == meta.device] if op is not None else []
            if not same:
                return None
            tensor_id, index = same[0].tensor_id, op.index
        return None

    def module_text(self, module_index: int | None) -> str | None:
        """``fc1 (Linear)``; the root module as its class name."""
        if module_index is None:
            return None
        call = self.trace.modules[module_index]
        label = self.trace.module_label(module_index)
        return f"{label} ({call.type})" if call.path else label

    def site(self, op: OpRecord) -> CallSite | None:
        return call_site(self.trace, op.index)

    def argument_text(self, call: ModuleCall, tensor_id: int) -> str | None:
        """The source of the argument of module call ``call`` that was this tensor (``t`` in
        ``self.fc1(t)``), when the call passed it directly."""
        meta = next((m for m in call.inputs if m.tensor_id == tensor_id), None)
        site = module_call_site(self.trace, call.index)
        if meta is None or site is None or not isinstance(site.node, ast.Call):
            return None
        node = site.node
        position = re.fullmatch(r"\[(\d+)\]", meta.path)
        if position is not None:
            i = int(position.group(1))
            if i < len(node.args) and not any(isinstance(a, ast.Starred) for a in node.args[: i + 1]):
                return site.text(node.args[i])
            return None
        keyword = re.fullmatch(r"\['(\w+)'\]", meta.path)
        value = site.keyword(keyword.group(1)) if keyword else None
        return site.text(value) if value is not None else None

    @cached_property
    def model_tensors(self) -> list[TensorMeta]:
        """Metadata of the parameters and buffers the ops used (each once)."""
        found: dict[int, TensorMeta] = {}
        for op in self.ops:
            for meta in op.inputs:
                attribute = self.attributes.get(meta.tensor_id)
                if attribute is not None and attribute.kind != "attribute" and attribute.holds(meta):
                    found.setdefault(meta.tensor_id, meta)
        return list(found.values())

    def model_device(self) -> str | None:
        """The device most parameters and buffers the ops used are on."""
        devices = Counter(m.device_name for m in self.model_tensors)
        return devices.most_common(1)[0][0] if devices else None  # a tie: the first used

    # --- origins ------------------------------------------------------------------------------

    def origin(self, meta: TensorMeta, at: int) -> Origin:
        """Where an operand of op ``at`` came from, one step back."""
        attribute = self.attribute(meta.tensor_id, at)
        if attribute is not None and attribute.holds(meta):
            return self._unproduced_origin(meta.tensor_id, at)
        op = self.producer(meta.tensor_id, at)
        if op is not None:
            if op.qualname in FACTORIES and not op.inputs:
                return self.factory_origin(op)
            return Origin(
                "op", f"{self.call_text(op)} at {_loc(op)}", op.index, op.file, op.line, ("op", op.index)
            )
        return self._unproduced_origin(meta.tensor_id, at)

    def call_text(self, op: OpRecord, limit: int = 60) -> str:
        """The op as written (`torch.ones(N, N)`, `x + y`), or its name when a module ran it."""
        site = self.site(op)
        if site is not None and site.is_call_of(op.op) and len(site.text()) <= limit:
            return f"`{site.text()}`"
        return f"`{op.op}`"

    def device_origin(self, meta: TensorMeta, at: int) -> Origin:
        """Why an operand of op ``at`` is on its device: walks back through ops that kept the
        device to the factory, move (``.cpu()``, ``.to()``), attribute or input that set it."""
        tensor_id, index, device = meta.tensor_id, at, meta.device
        for _ in range(_WALK_LIMIT):
            op = self.producer(tensor_id, index)
            if op is None or self.attribute(tensor_id, index) is not None:
                return self._unproduced_origin(tensor_id, index)
            if op.qualname in FACTORIES and not op.inputs:
                return self.factory_origin(op)
            same = [m for m in op.inputs if m.device == device]
            if op.qualname in ("Tensor.cpu", "Tensor.to", "Tensor.cuda") and op.inputs and not same:
                text = (
                    f"{self.call_text(op)} at {_loc(op)} moved it from {op.inputs[0].device_name} to {device}"
                )
                return Origin("moved", text, op.index, op.file, op.line, ("op", op.index))
            if not same:
                text = f"{self.call_text(op)} at {_loc(op)} made it on {device}"
                return Origin("op", text, op.index, op.file, op.line, ("op", op.index))
            tensor_id, index = same[0].tensor_id, op.index
        return Origin("unknown", "a long chain of ops")

    def dtype_origin(self, meta: TensorMeta, at: int) -> Origin:
        """Why an operand of op ``at`` has its dtype: the op that first made that dtype."""
        tensor_id, index, dtype = meta.tensor_id, at, meta.dtype
        for _ in range(_WALK_LIMIT):
            op = self.producer(tensor_id, index)
            if op is None or self.attribute(tensor_id, index) is not None:
                return self._unproduced_origin(tensor_id, index)
            same = [m for m in op.inputs if m.dtype == dtype]
            if not same:
                made = "made" if not op.inputs else "converted it to"
                text = f"{self.call_text(op)} at {_loc(op)} {made} {meta.dtype_name}"
                if op.qualname == "torch.from_numpy":
                    text += " (NumPy arrays are float64 by default)"
                return Origin("op", text, op.index, op.file, op.line, ("op", op.index))
            tensor_id, index = same[0].tensor_id, op.index
        return Origin("unknown", "a long chain of ops")

    def factory_origin(self, op: OpRecord) -> Origin:
        """A factory call, and whether it was given ``device=``."""
        kind = "factory"
        if op.qualname in NO_DEVICE_KWARG:
            detail = "always makes CPU tensors"
        elif self.lacks_device(op):
            detail = "has no device=, so it makes tensors on the default device"
        else:
            kind, detail = "factory-with-device", "puts it there with its device="
        text = f"{self.call_text(op)} at {_loc(op)}"
        return Origin(kind, text, op.index, op.file, op.line, ("op", op.index), detail)

    def lacks_device(self, op: OpRecord) -> bool:
        """Whether a factory call is known to have no ``device=`` (read from the call's source)."""
        if op.qualname in NO_DEVICE_KWARG:
            return True
        site = self.site(op)
        if site is None or not site.is_call_of(op.op):
            return False
        keywords = site.keywords()
        return keywords is not None and "device" not in keywords

    def forward_arguments(self, op: OpRecord) -> dict[int, str]:
        """Tensors the function op ``op`` ran in got as arguments, by id -> parameter name, when
        that function is the forward of the module call it ran in (``x`` in ``forward(self, x)``)."""
        entry = self.trace.recording.ops[op.index]
        code = entry.code
        if code is None or op.module_index is None or code.co_name != "forward":
            return {}
        call = self.trace.modules[op.module_index]
        names = code.co_varnames[1 : code.co_argcount]
        found = {}
        for meta in call.inputs:
            position = re.fullmatch(r"\[(\d+)\]", meta.path)
            keyword = re.fullmatch(r"\['(\w+)'\]", meta.path)
            if position is not None and int(position.group(1)) < len(names):
                found.setdefault(meta.tensor_id, names[int(position.group(1))])
            elif keyword is not None and keyword.group(1) in names:
                found.setdefault(meta.tensor_id, keyword.group(1))
        return found

    def tensor_at_hand(self, op: OpRecord, device: str) -> str | None:
        """A tensor on ``device`` that the code of op ``op`` can name: an argument of the forward
        it ran in (``x``), else a parameter of that module (``next(self.parameters())``)."""
        if op.module_index is None:
            return None
        call = self.trace.modules[op.module_index]
        by_id = {m.tensor_id: m for m in call.inputs}
        for tensor_id, name in self.forward_arguments(op).items():
            meta = by_id.get(tensor_id)
            if meta is not None and meta.device_name == device:
                return name
        entry = self.trace.recording.ops[op.index]
        if entry.code is not None and entry.code.co_varnames[:1] == ("self",):
            owned = [a for a in self.attributes.values() if a.kind == "parameter" and a.module == call.path]
            if owned and self.model_device() == device:
                return "next(self.parameters())"
        return None

    def _unproduced_origin(self, tensor_id: int, at: int) -> Origin:
        attribute = self.attributes.get(tensor_id)
        if attribute is not None:
            what = {
                "parameter": "a parameter",
                "buffer": "a registered buffer",
                "attribute": "a plain tensor attribute",
            }
            text = f"`{attribute.label}`, {what[attribute.kind]} of {attribute.where}"
            return Origin(attribute.kind, text, key=("attribute", tensor_id))
        call = self.module_input(tensor_id, at)
        if call is not None:
            name = self.argument_text(call, tensor_id)
            what = f"`{name}`, an input" if name else "an input"
            text = (
                f"{what} of {self.module_text(call.index)}, called at {short_location(call.file, call.line)}"
            )
            return Origin("input", text, None, call.file, call.line, ("input", tensor_id), name=name or "")
        return Origin("unknown", "made before the trace began", key=("unknown", tensor_id))


def _loc(op: OpRecord) -> str:
    return short_location(op.file, op.line)
