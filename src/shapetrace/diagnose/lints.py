"""Device lints: the device bugs a CPU-only run does not raise, each at its line.

One pass over the ops follows which tensors come from the model (its inputs, parameters and
buffers: they move with ``model.to(device)`` and the data) and which are pinned to the CPU (a
factory call in a forward without ``device=``, a ``.cpu()``, a plain tensor attribute of a
module, and what is computed from them until a ``.to(x.device)``); a pinned tensor meeting a
model tensor in an op is a failure waiting for a GPU. Also: ops that mixed devices without
raising, and host syncs in a forward.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

import torch

from shapetrace.capture.records import OpRecord, TensorMeta
from shapetrace.capture.source import short_location
from shapetrace.diagnose.callsite import CallSite, assignment_of
from shapetrace.diagnose.checking import Check, Replay, fixed, passes, site_arguments
from shapetrace.diagnose.devices import cpu_scalar, describe_device_origin, name_at, register_buffer_fix
from shapetrace.diagnose.diagnostic import WARNING, Diagnostic
from shapetrace.diagnose.failing import SIMPLE_NAME, operand_nodes, operand_roles, operand_texts
from shapetrace.diagnose.ops import (
    FACTORIES,
    HOST_SYNCS,
    INDEXING,
    NO_DEVICE_KWARG,
    REHOMING,
    installed_package,
)
from shapetrace.diagnose.provenance import Dataflow

if TYPE_CHECKING:
    from shapetrace.trace import Trace

FOLLOWS = "follows"  # comes from the model's inputs, parameters or buffers


@dataclass(frozen=True)
class Pinned:
    """On the CPU whatever the model's device: made by op ``op_index`` (a factory without
    ``device=``, or ``.cpu()``), or a plain tensor attribute of a module (``attribute`` is its id),
    or computed from one of those."""

    op_index: int | None = None
    attribute: int | None = None


class _Findings:
    """Lints in the order found; one per subject, counting repeats (a module called in a loop)."""

    def __init__(self) -> None:
        self.found: dict[tuple, Diagnostic] = {}

    def repeat(self, key: tuple) -> bool:
        """Count one more occurrence of a known lint; ``False`` when ``key`` is new."""
        known = self.found.get(key)
        if known is not None:
            self.found[key] = replace(known, count=known.count + 1)
        return known is not None

    def add(self, key: tuple, diagnostic: Diagnostic) -> None:
        self.found[key] = diagnostic


def device_lints(trace: Trace, flow: Dataflow) -> list[Diagnostic]:
    """Every device lint of ``trace`` (the op that raised, if any, is left to the diagnosis)."""
    held: dict[int, object] = {
        tensor_id: Pinned(attribute=tensor_id) if a.kind == "attribute" else FOLLOWS
        for tensor_id, a in flow.attributes.items()
    }
    taint = dict(held)
    roots: dict[int, list[TensorMeta]] = {}
    for call in trace.modules:
        if call.parent is None:
            roots.setdefault(call.first_op, []).extend(call.inputs)
    findings = _Findings()
    for op in flow.ops:
        for meta in roots.get(op.index, ()):
            taint[meta.tensor_id] = FOLLOWS
        if op.failed:
            continue
        considered = _device_operands(op)
        _check_mixed(op, considered, flow, findings)
        in_forward = op.module_index is not None
        site = flow.site(op)
        site = site if site is not None and site.is_call_of(op.op) else None
        target = _to_target(op, site) if op.qualname == "Tensor.to" else None
        if in_forward and op.module not in flow.torch_modules and not installed_package(op.file):
            # a torch layer's own syncs, or a library's, are not the user's to fix
            _check_host_sync(op, target, flow, findings)
        out = _propagate(op, considered, site, target, in_forward, taint, flow, findings)
        for meta in op.outputs:
            # a module built inside the trace: its tensors are made by ops outside any forward
            taint[meta.tensor_id] = held[meta.tensor_id] if not in_forward and meta.tensor_id in held else out
    lints = list(findings.found.values())
    moved = {d.op_index for d in lints if d.kind == "cpu-meets-device"}  # says more than its host-sync
    lints = [d for d in lints if not (d.kind == "host-sync" and d.op_index in moved)]
    return sorted(lints, key=lambda d: (d.op_index is None, d.op_index or 0))


def _device_operands(op: OpRecord) -> list[int]:
    """Operands that must share a device: none for re-homing ops, the indexed tensor for `[]`,
    never a 0-dim CPU tensor."""
    if op.qualname in REHOMING:
        return []
    indices = [0] if op.qualname in INDEXING else range(len(op.inputs))
    return [i for i in indices if i < len(op.inputs) and not cpu_scalar(op.inputs[i])]


def _propagate(op: OpRecord, considered: list[int], site: CallSite | None, target: str | None, in_forward: bool,
               taint: dict, flow: Dataflow, findings: _Findings) -> object:  # fmt: skip
    """The taint of the op's outputs, reporting a pinned tensor that meets a model tensor."""
    q = op.qualname
    first = taint.get(op.inputs[0].tensor_id) if op.inputs else None
    if q in FACTORIES and not op.inputs:
        if not in_forward or all(len(m.shape) == 0 for m in op.outputs):
            return None
        if flow.lacks_device(op):
            return Pinned(op_index=op.index)
        device = site.keyword("device") if site is not None else None
        literal = isinstance(device, ast.Constant) and str(device.value).startswith("cpu")
        return None if literal or device is None else FOLLOWS
    if q == "Tensor.cpu" or target == "cpu":
        return Pinned(op_index=op.index) if in_forward else None
    if q == "Tensor.to":
        return FOLLOWS if target == "device" else first if target == "dtype" else None
    if q in ("Tensor.cuda", "Tensor.type_as"):
        return FOLLOWS
    if q in REHOMING:
        return first
    taints = [taint.get(op.inputs[i].tensor_id) for i in considered]
    pinned = [t for t in taints if isinstance(t, Pinned)]
    if pinned and FOLLOWS in taints:
        texts = operand_texts(op, site, flow=flow)
        model_side = [i for i, t in zip(considered, taints) if t is FOLLOWS]
        name = next((texts[i] for i in model_side if texts[i] and SIMPLE_NAME.match(texts[i])), None)
        cpu_side = [i for i, t in zip(considered, taints) if isinstance(t, Pinned)]
        check = _gpu_check(op, site, cpu_side, flow)
        for source in dict.fromkeys(pinned):
            if source.op_index is not None:
                _report_pinned(flow.ops[source.op_index], op, name, flow, findings, check)
            else:
                _report_attribute(source.attribute, op, name, flow, findings, check)
    return FOLLOWS if FOLLOWS in taints else pinned[0] if pinned else None


def _gpu_check(op: OpRecord, site: CallSite | None, pinned: list[int], flow: Dataflow) -> Check | None:
    """Re-run the op where a pinned tensor meets the model's as it would run on a GPU (the
    model's tensors on meta, the pinned ones on the CPU), which must fail, and with the pinned
    ones moved along with the model, which must pass."""
    if site is None:
        return None
    arguments = site_arguments(site.node, operand_nodes(op, site), op.qualname.startswith("Tensor."))
    func = flow.func(op)
    if arguments is None or func is None:
        return None
    replay = Replay(func, arguments, op.inputs)
    on_gpu = ["cpu" if i in pinned else "meta" for i in range(len(op.inputs))]
    moved = ["meta"] * len(op.inputs)
    return fixed(replay.on_devices(on_gpu).run, replay.on_devices(moved).run)


def _report_pinned(made: OpRecord, meets: OpRecord, name: str | None, flow: Dataflow, findings: _Findings,
                   check: Check | None = None) -> None:  # fmt: skip
    kind = "factory-without-device" if made.qualname in FACTORIES else "cpu-meets-device"
    key = (kind, made.file, made.line)
    if findings.repeat(key):
        return
    where = flow.module_text(made.module_index)
    site = flow.site(made)
    site = site if site is not None and site.is_call_of(made.op) else None
    call = site.text() if site is not None else f"{made.op}(...)"
    who = f"`{name}`" if name else "a tensor"
    meeting = (
        f"at {short_location(meets.file, meets.line)} (`{meets.op}`) it meets {who}, which comes from the "
        f"model's inputs or parameters. On a GPU that op fails: CUDA and CPU tensors do not mix."
    )
    at_hand = name_at(flow, made, meets, flow.model_device() or "cpu", name)
    target = f"{at_hand}.device" if at_hand else "x.device"
    edits: tuple = ()
    if kind == "factory-without-device":
        message = f"`{call}` in {where} has no device=, so it is made on the default device (cpu); {meeting}"
        if site is not None and made.qualname not in NO_DEVICE_KWARG and at_hand:
            change = site.keyword_change("device", target)
            fix, edits = f"`{site.rewritten(change)}`", site.edits(change)
        else:
            fix = f"`.to({target})` where it is made"
    else:
        message = f"`{call}` in {where} copies to the CPU; {meeting}"
        fix = f"keep it on the device (drop `.{made.op}()`), or move it back with `.to({target})`"
    if not at_hand:
        fix += ", `x` being a tensor on the model's device"
        check = None
    findings.add(key, Diagnostic(kind, WARNING, message, made.file, made.line, made.index, made.code, made.op,
                                 where, fix, passes(check) if edits else False, edits,
                                 subjects=(("op", made.index),)))  # fmt: skip


def _report_attribute(tensor_id: int, meets: OpRecord, name: str | None, flow: Dataflow, findings: _Findings,
                      check: Check | None = None) -> None:  # fmt: skip
    subject = ("attribute", tensor_id)
    key = ("unregistered-tensor", subject)
    attribute = flow.attributes[tensor_id]
    if findings.repeat(key):
        return
    found = assignment_of(attribute.owner, attribute.name.split("[", 1)[0])
    where_set = f" (set at {short_location(found.file, found.line)})" if found else ""
    who = f"`{name}`" if name else "a tensor"
    message = (
        f"`self.{attribute.name}` of {attribute.where} is a plain tensor attribute{where_set}, not a parameter "
        f"or registered buffer: `model.to(device)` will not move it. Here (`{meets.op}`) it meets {who}, "
        f"which comes from the model's inputs or parameters: on a GPU that op fails."
    )
    fix = register_buffer_fix(attribute)
    findings.add(key, Diagnostic(
        "unregistered-tensor", WARNING, message, meets.file, meets.line, meets.index, meets.code, meets.op,
        flow.module_text(meets.module_index), fix.text, passes(check) if fix.edits else False, fix.edits,
        subjects=(subject,),
    ))  # fmt: skip


def _check_mixed(op: OpRecord, considered: list[int], flow: Dataflow, findings: _Findings) -> None:
    devices = {op.inputs[i].device_name for i in considered}
    key = ("mixed-devices", op.file, op.line)
    if len(devices) < 2 or findings.repeat(key):
        return
    reference = flow.model_device()
    if reference not in devices:
        reference = op.inputs[considered[0]].device_name
    site = flow.site(op)
    site = site if site is not None and site.is_call_of(op.op) else None
    texts = operand_texts(op, site, flow=flow)
    roles = operand_roles(op, texts)
    same = [i for i in considered if op.inputs[i].device_name == reference]
    name = next((texts[i] for i in same if texts[i] and SIMPLE_NAME.match(texts[i])), None)
    on = ", ".join(
        f"`{roles[i]}` {op.inputs[i].shape_text(named_only=True)} on {op.inputs[i].device_name}" for i in considered
    )
    what = f"`{site.text()}`" if site is not None else f"`{op.op}`"
    sentences, fixes, subjects = (
        [f"{what} mixes devices without failing here: {on}. On a GPU this op raises."],
        [],
        [],
    )
    for i in considered:
        if op.inputs[i].device_name != reference:
            origin = flow.device_origin(op.inputs[i], op.index)
            sentence, fix = describe_device_origin(roles[i], op.inputs[i], origin, reference, name, flow, op)
            sentences.append(sentence)
            subjects.append(origin.key)
            if fix and fix.text not in fixes:
                fixes.append(fix.text)
    findings.add(key, Diagnostic(
        "mixed-devices", WARNING, " ".join(sentences), op.file, op.line, op.index, op.code, op.op,
        flow.module_text(op.module_index), "; ".join(fixes) or None, subjects=tuple(subjects),
    ))  # fmt: skip


def _check_host_sync(op: OpRecord, target: str | None, flow: Dataflow, findings: _Findings) -> None:
    what = HOST_SYNCS.get(op.qualname)
    if what is None and target == "cpu":
        what = '`.to("cpu")` copies the tensor to the host'
    if (
        what is None
        and op.qualname == "Tensor.__getitem__"
        and any(m.dtype == torch.bool for m in op.inputs[1:])
    ):
        what = (
            "indexing with a boolean mask has a data-dependent size, so the host waits for the mask's count"
        )
    key = ("host-sync", op.file, op.line, op.qualname)
    if what is None or findings.repeat(key):
        return
    where = flow.module_text(op.module_index)
    message = f"In {where}, {what}: on a GPU the forward waits here until every queued kernel has run."
    fix = "keep the value on the device (tensor ops, `torch.where`), or move this out of the forward"
    findings.add(key, Diagnostic("host-sync", WARNING, message, op.file, op.line, op.index, op.code, op.op, where,
                                 fix, subjects=(("op", op.index),)))  # fmt: skip


_DTYPE_NAMES = {"float", "double", "half", "bfloat16", "float16", "float32", "float64", "int", "long", "int64",
                "int32", "int16", "int8", "uint8", "bool", "complex64", "complex128", "short"}  # fmt: skip


def _to_target(op: OpRecord, site: CallSite | None) -> str | None:
    """What a ``.to(...)`` call changes: ``"cpu"``, ``"device"`` (another tensor's, or a named
    device), ``"dtype"`` only, or ``None`` when its arguments do not say."""
    if len(op.inputs) > 1:
        return "device"  # .to(other): other's device and dtype
    if site is None or not isinstance(site.node, ast.Call):
        return None
    kinds = [_argument_kind(node) for node in site.node.args]
    for keyword in site.node.keywords:
        if keyword.arg == "dtype":
            kinds.append("dtype")
        elif keyword.arg == "device":
            kinds.append(_argument_kind(keyword.value) or "device")
        elif keyword.arg is None:
            kinds.append(None)
    if "cpu" in kinds:
        return "cpu"
    if "device" in kinds:
        return "device"
    return "dtype" if kinds and all(k == "dtype" for k in kinds) else None


def _argument_kind(node: ast.AST) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return "cpu" if node.value.startswith("cpu") else "device"
    if isinstance(node, ast.Attribute):
        if node.attr == "device":
            return "device"
        if node.attr == "dtype" or node.attr in _DTYPE_NAMES:
            return "dtype"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "device":
        first = node.args[0] if node.args else None
        if isinstance(first, ast.Constant) and isinstance(first.value, str) and first.value.startswith("cpu"):
            return "cpu"
        return "device"
    return None
