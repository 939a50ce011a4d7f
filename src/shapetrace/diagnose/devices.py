"""Device and dtype mismatches: which operand is where, why, and a fix that names the tensor at
hand (``device=x.device``), never a hard-coded device."""

from __future__ import annotations

import ast
from collections import Counter

from shapetrace.capture.records import ModuleCall, OpRecord, TensorMeta
from shapetrace.capture.source import short_location
from shapetrace.diagnose.callsite import assignment_of, module_call_site
from shapetrace.diagnose.checking import Check, Fix, fixed
from shapetrace.diagnose.diagnostic import Diagnostic, Origin
from shapetrace.diagnose.evidence import ModuleAttribute
from shapetrace.diagnose.failing import DEVICE_WORDS, DTYPE_WORDS, FailingOp, atom, q
from shapetrace.diagnose.ops import NO_DEVICE_KWARG
from shapetrace.diagnose.provenance import Dataflow


def cpu_scalar(meta: TensorMeta) -> bool:
    """0-dim CPU tensors mix with tensors on any device."""
    return len(meta.shape) == 0 and meta.device.type == "cpu"


def explain_device(f: FailingOp) -> Diagnostic | None:
    considered = [i for i, m in enumerate(f.inputs) if not cpu_scalar(m)]
    devices = {f.inputs[i].device_name for i in considered}
    if len(devices) < 2 or not DEVICE_WORDS.search(f.message):
        return None
    origins = {i: f.flow.device_origin(f.inputs[i], f.op.index) for i in considered}
    reference = _reference_device(f, considered, origins, devices)
    odd = [i for i in considered if f.inputs[i].device_name != reference]
    same = [i for i in considered if i not in odd]
    on = ", ".join(f"{f.q(i)} {f.inputs[i].shape_text(named_only=True)} is on {f.inputs[i].device_name}" for i in considered)
    lines = [f"{f.what} mixes devices: {on}. All tensors of one op must be on the same device."]
    texts, edits = [], []
    ref_name = f.simple_name(same)
    for i in odd:
        sentence, fix = describe_device_origin(
            f.roles[i], f.inputs[i], origins[i], reference, ref_name, f.flow, f.op
        )
        lines.append(sentence)
        if fix is not None and fix.text not in texts:
            texts.append(fix.text)
            edits.extend(fix.edits)
    subjects = tuple(origins[i].key for i in odd if origins[i].key)
    fix = Fix("; ".join(texts), tuple(edits), _device_check(f, odd, reference)) if texts else None
    return f.diagnostic("device-mismatch", " ".join(lines), fix, subjects=subjects)


def _device_check(f: FailingOp, odd: list[int], reference: str) -> Check | None:
    """Re-run the op with its operands where they were (CPU ones materialised, the others on
    meta), which must fail, and with the odd ones moved to the reference device."""
    replay = f.replay()
    if replay is None:
        return None

    def placed(meta: TensorMeta) -> str:
        return "cpu" if meta.device.type == "cpu" else "meta"

    recorded = [placed(m) for m in f.inputs]
    target = "cpu" if reference.startswith("cpu") else "meta"
    repaired = [target if i in odd else device for i, device in enumerate(recorded)]
    if len(set(recorded)) < 2:
        return None  # the mismatch is not one between the CPU and another device
    return fixed(replay.on_devices(recorded).run, replay.on_devices(repaired).run)


def _reference_device(
    f: FailingOp, considered: list[int], origins: dict[int, Origin], devices: set[str]
) -> str:
    """The device the op should run on: the model's, or that of operands from the model."""
    model = f.flow.model_device()
    if model in devices:
        return model
    from_model = {
        f.inputs[i].device_name for i in considered if origins[i].kind in ("parameter", "buffer", "input")
    }
    if len(from_model) == 1:
        return from_model.pop()
    counts = Counter(f.inputs[i].device_name for i in considered)
    top = max(counts.values())
    return next(f.inputs[i].device_name for i in considered if counts[f.inputs[i].device_name] == top)


def describe_device_origin(role: str, meta: TensorMeta, origin: Origin, reference: str, ref_name: str | None,
                           flow: Dataflow, at: OpRecord) -> tuple[str, Fix | None]:  # fmt: skip
    """Why ``role`` is on its device (one sentence), and the fix, naming a tensor at hand."""
    device = meta.device_name
    made = flow.ops[origin.op_index] if origin.op_index is not None else None
    if origin.kind in ("factory", "factory-with-device") and made is not None:
        sentence = f"{q(role)} is on {device}: it comes from {origin.text}, which {origin.detail} ({device})."
        entry = flow.model_entry(meta, at.index) if made.module_index is None else None
        if entry is not None:  # made by the script, then given to the model
            call, tensor_id = entry
            name = flow.argument_text(call, tensor_id)
            sentence += (
                f" It enters the model {flow.module_text(call.index)} as "
                f"{f'`{name}`' if name else 'an input'} at {short_location(call.file, call.line)}, while the model "
                f"is on {reference}."
            )
            return sentence, _input_fix(flow, call, name)
        name = name_at(flow, made, at, reference, ref_name)
        site = flow.site(made)
        target = f"{name}.device" if name else None
        if origin.kind == "factory-with-device":
            return sentence, Fix(
                f"pass `device={target or '<a tensor on ' + reference + '>.device'}` to {origin.text}"
            )
        if site is not None and site.is_call_of(made.op) and made.qualname not in NO_DEVICE_KWARG and target:
            change = site.keyword_change("device", target)
            return sentence, Fix(f"`{site.rewritten(change)}`", site.edits(change))
        return sentence, Fix(
            f"move it where it is made: `.to({target or '<a tensor on the model device>.device'})`"
        )
    if origin.kind == "moved" and made is not None:
        sentence = f"{q(role)} is on {device}: {origin.text}."
        site = flow.site(made)
        name = name_at(flow, made, at, reference, ref_name) or "x"
        if site is not None and isinstance(site.node, ast.Call) and isinstance(site.node.func, ast.Attribute):
            kept = site.text(site.node.func.value)
            move = site.text()[len(kept) :] if site.text().startswith(kept) else f".{made.op}(...)"
            return sentence, Fix(
                f"keep it on the device: `{kept}` (without `{move}`)", site.edits({site.node: kept})
            )
        return sentence, Fix(f"remove that move, or bring it back with `.to({name}.device)`")
    if origin.kind == "attribute":
        attribute = flow.attributes.get(origin.key[1])
        sentence = (
            f"{q(role)} is on {device}: it is {origin.text} — not a parameter or registered buffer, "
            f"so `model.to(...)` did not move it."
        )
        return sentence, register_buffer_fix(attribute) if attribute else None
    if origin.kind in ("parameter", "buffer"):
        return (
            f"{q(role)} is on {device}: it is {origin.text}, left behind when the rest of the model "
            f"moved to {reference}.",
            Fix("move the whole model once after building it (`model.to(device)`); a submodule kept in a "
                "plain list or dict is not registered — use nn.ModuleList / nn.ModuleDict"),
        )  # fmt: skip
    if origin.kind == "input":
        sentence = f"{q(role)} is on {device}: it is {origin.text}, while the model is on {reference}."
        call = flow.module_input(meta.tensor_id, at.index)
        return sentence, _input_fix(flow, call, origin.name)
    name = ref_name or flow.tensor_at_hand(at, reference)
    target = f"{name}.device" if name else "<a tensor on the model's device>.device"
    if origin.kind == "op":
        return f"{q(role)} is on {device}: {origin.text}.", Fix(f"make it on {reference}: `.to({target})`")
    return f"{q(role)} is on {device}: it was {origin.text}.", Fix(f"`.to({target})`")


def name_at(flow: Dataflow, made: OpRecord, at: OpRecord, reference: str, ref_name: str | None) -> str | None:
    """A tensor on ``reference`` that the code where ``made`` ran can name: an argument of its
    forward, else the failing op's operand when both ran in the same function."""
    name = flow.tensor_at_hand(made, reference)
    if name is not None:
        return name
    same_code = flow.trace.recording.ops[made.index].code is flow.trace.recording.ops[at.index].code
    return ref_name if same_code else None


def _input_fix(flow: Dataflow, call: ModuleCall | None, name: str | None) -> Fix:
    """Move the model's input ``name`` where its parameters are, at the line that called it."""
    site = module_call_site(flow.trace, call.index) if call is not None else None
    if site is not None and isinstance(site.node, ast.Call) and name:
        callee = site.text(site.node.func)
        node = next((a for a in site.node.args if site.text(a) == name), None)
        if node is not None:
            moved = f"{atom(name)}.to(next({callee}.parameters()).device)"
            return Fix(
                f"move the input to the model's device before the call: `{site.rewritten({node: moved})}`",
                site.edits({node: moved}),
            )
    what = f"`{name}`" if name else "the input"
    return Fix(f"move {what} to the model's device before the call: `.to(next(model.parameters()).device)`")


def register_buffer_fix(attribute: ModuleAttribute) -> Fix:
    """``self.register_buffer("mask", <value>)`` in place of a plain tensor attribute."""
    name = attribute.name.split("[", 1)[0]
    found = assignment_of(attribute.owner, name)
    where = f" (instead of `self.{name} = ...` at {short_location(found.file, found.line)})" if found else ""
    if "[" in attribute.name:
        return Fix(
            f"keep the tensors as registered buffers{where}, one `self.register_buffer(name, tensor)` each"
        )
    value = found.text if found else "..."
    text = f'self.register_buffer("{name}", {value})'
    edits = (
        found.site.edits({found.site.node: text}) if found and isinstance(found.site.node, ast.Assign) else ()
    )
    return Fix(f"`{text}` in `__init__`{where}", edits)


def explain_dtype(f: FailingOp) -> Diagnostic | None:
    if (
        f.name == "embedding"
        and f.inputs
        and (f.inputs[0].dtype.is_floating_point or f.inputs[0].dtype.is_complex)
    ):
        meta = f.inputs[0]
        origin = f.flow.dtype_origin(meta, f.op.index)
        replay = f.replay()
        check = replay.check({0: lambda t: t.long()}) if replay else None
        return f.diagnostic(
            "dtype-mismatch",
            f"{f.what} looks rows up by index, so {f.q(0)} must be an integer tensor (int64 or int32), "
            f"but {f.q(0)} {meta.shape_text(named_only=True)} is {meta.dtype_name}: {origin.text}.",
            Fix(f"pass integer indices: `{atom(f.roles[0])}.long()`, or make them with an integer dtype "
                "(e.g. `torch.randint`)", check=check),
        )  # fmt: skip
    considered = [i for i, m in enumerate(f.inputs) if len(m.shape) > 0]
    dtypes = {f.inputs[i].dtype for i in considered}
    if len(dtypes) < 2 or not DTYPE_WORDS.search(f.message):
        return None
    params = Counter(m.dtype for m in f.flow.model_tensors)
    reference = next((d for d, _ in params.most_common() if d in dtypes), None)
    if reference is None:
        reference = Counter(f.inputs[i].dtype for i in considered).most_common(1)[0][0]
    odd = [i for i in considered if f.inputs[i].dtype != reference]
    same = [i for i in considered if i not in odd]
    listed = ", ".join(f"{f.q(i)} is {f.inputs[i].dtype_name}" for i in considered)
    lines = [f"{f.what} needs its operands in one dtype: {listed}."]
    origins = [f.flow.dtype_origin(f.inputs[i], f.op.index) for i in odd]
    lines.extend(f"{f.q(i)} is {f.inputs[i].dtype_name}: {origin.text}." for i, origin in zip(odd, origins))
    ref_name = f.simple_name(same)
    target = f"{ref_name}.dtype" if ref_name else str(reference)
    where = f" (at {short_location(origins[0].file, origins[0].line)})" if origins and origins[0].file else ""
    first = odd[0]
    converted = f"{atom(f.roles[first])}.to({target})"
    node = f.nodes[first]
    edits = f.site.edits({node: converted}) if f.site is not None and node is not None else ()
    replay = f.replay()
    check = replay.check({i: (lambda t: t.to(reference)) for i in odd}) if replay else None
    text = f"make it {str(reference).removeprefix('torch.')} where it is made{where}, or convert it here: `{converted}`"
    return f.diagnostic("dtype-mismatch", " ".join(lines), Fix(text, edits, check),
                        subjects=tuple(o.key for o in origins if o.key))  # fmt: skip
