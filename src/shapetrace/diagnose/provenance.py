"""Where each operand came from.

A raw tensor's id links it to the op that made it: the latest recorded op output with the same
id, before the consuming op, is its producer (a live tensor's id cannot be reused). Operands with
no recorded producer are module parameters, buffers or plain attributes (by id, from the
evidence taken while the modules were alive), inputs of a module call, or made before the trace.
"""

from __future__ import annotations

import ast
import re
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
        self.attributes = evidence.attributes if evidence is not None else {}
        self.torch_modules = evidence.torch_modules if evidence is not None else set()
        self._producers = Producers(self.ops)

    # --- lookups ------------------------------------------------------------------------------

    def producer(self, tensor_id: int, before: int) -> OpRecord | None:
        """The op that made the tensor ``tensor_id`` used by op ``before``, if it was recorded."""
        index = self._producers.of(tensor_id, before)
        return self.ops[index] if index is not None else None

    def attribute(self, tensor_id: int, before: int) -> ModuleAttribute | None:
        """The module attribute a tensor without a recorded producer is."""
        if self.producer(tensor_id, before) is not None:
            return None
        return self.attributes.get(tensor_id)

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
                if attribute is not None and attribute.kind != "attribute":
                    found.setdefault(meta.tensor_id, meta)
        return list(found.values())

    def model_device(self) -> str | None:
        """The device most parameters and buffers the ops used are on."""
        devices = [m.device_name for m in self.model_tensors]
        return max(set(devices), key=devices.count) if devices else None

    # --- origins ------------------------------------------------------------------------------

    def origin(self, meta: TensorMeta, at: int) -> Origin:
        """Where an operand of op ``at`` came from, one step back."""
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
            if op is None:
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
            if op is None:
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
