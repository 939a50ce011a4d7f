"""Explaining the op that raised: which operands, which dims, where they came from, what to change.

Each explainer works from the recorded op (name, qualname, operand metadata), the failing call's
plain arguments and the module records; torch's message only confirms which kind it is.
"""

from __future__ import annotations

import math
import re
import warnings
from collections import Counter
from collections.abc import Callable

import torch

from shapetrace.capture.records import OpRecord, TensorMeta
from shapetrace.capture.source import short_location
from shapetrace.diagnose.callsite import CallSite, assignment_of
from shapetrace.diagnose.diagnostic import ERROR, Diagnostic, Operand, Origin
from shapetrace.diagnose.evidence import CallArguments, Evidence, ModuleAttribute
from shapetrace.diagnose.layout import dims_text, right_aligned, side_by_side
from shapetrace.diagnose.ops import (
    CATS,
    CONV_TRANSPOSES,
    CONVS,
    MATMULS,
    NO_DEVICE_KWARG,
    NOT_ELEMENTWISE,
    SIGNATURES,
    VIEWS,
    base_name,
)
from shapetrace.diagnose.provenance import Dataflow

_DEVICE_WORDS = re.compile(r"device", re.I)
_DTYPE_WORDS = re.compile(
    r"dtype|scalar type|result type|type \(|\b(Long|Int|Float|Double|Half|BFloat16|Bool)\b"
)
_SHAPE_WORDS = re.compile(r"must match|broadcast|expanded size|non-singleton|doesn't match|shape", re.I)
SIMPLE_NAME = re.compile(r"^[A-Za-z_][\w.]*$")
_LAYOUT_OPS = {"transpose", "permute", "t", "T", "mT", "mH", "H", "expand", "movedim", "swapaxes", "swapdims",
               "narrow", "[]", "unfold", "diagonal", "as_strided", "expand_as"}  # fmt: skip


class FailingOp:
    """The failing op with everything its explainers read."""

    def __init__(self, op: OpRecord, flow: Dataflow, evidence: Evidence | None, message: str) -> None:
        self.op = op
        self.flow = flow
        self.name = base_name(op.qualname)
        self.inputs = op.inputs
        self.call: CallArguments | None = evidence.call if evidence is not None else None
        if self.call is not None and len(self.call.contiguous) != len(op.inputs):
            self.call = None  # not this op's arguments
        self.message = message
        site = flow.site(op)
        self.site: CallSite | None = site if site is not None and site.is_call_of(op.op) else None
        self.texts = operand_texts(op, self.site, self.call, flow)
        self.roles = operand_roles(op, self.texts)
        self.operands = tuple(
            Operand(role, meta, flow.origin(meta, op.index)) for role, meta in zip(self.roles, op.inputs)
        )
        self.module = flow.module_text(op.module_index)

    def q(self, i: int) -> str:
        """Operand ``i``'s name, quoted for a sentence."""
        return f"`{self.roles[i]}`"

    @property
    def what(self) -> str:
        """The op as the user wrote it: `h @ image_toks`, or `linear` when a module ran it."""
        return f"`{self.site.text()}`" if self.site is not None else f"`{self.op.op}`"

    def simple_name(self, indices: list[int]) -> str | None:
        """A plain name (``att``, ``self.x``) among the given operands, for a fix to refer to."""
        for i in indices:
            text = self.texts[i]
            if text and SIMPLE_NAME.match(text):
                return text
        return None

    def diagnostic(self, kind: str, message: str, fix: str | None = None, details: list[str] | None = None,
                   subjects: tuple = ()) -> Diagnostic:  # fmt: skip
        op = self.op
        return Diagnostic(
            kind=kind, severity=ERROR, message=message, file=op.file, line=op.line, op_index=op.index,
            code=op.code, op=op.op, module=self.module, fix=fix, details=tuple(details or ()),
            operands=self.operands, subjects=subjects,
        )  # fmt: skip


def operand_texts(op: OpRecord, site: CallSite | None, call: CallArguments | None = None,
                  flow: Dataflow | None = None) -> list[str | None]:  # fmt: skip
    """Each operand's source expression, where the call site tells them apart; for an op a
    module ran (``site`` is ``None``), the module call's argument it came in as."""
    n = len(op.inputs)
    nodes = site.operand_nodes(n, op.qualname.startswith("Tensor."), call) if site is not None else None
    texts = [site.text(node) if node is not None else None for node in nodes] if nodes else [None] * n
    if site is None and flow is not None and op.module_index is not None:
        module_call = flow.trace.modules[op.module_index]
        texts = [t or flow.argument_text(module_call, m.tensor_id) for t, m in zip(texts, op.inputs)]
    return texts


def operand_roles(op: OpRecord, texts: list[str | None]) -> list[str]:
    """Names for an op's operands: their source text, else the signature's names."""
    name = base_name(op.qualname)
    signature = SIGNATURES.get(name)
    method = op.qualname.startswith("Tensor.")
    roles = []
    for i, text in enumerate(texts):
        if text and len(text) <= 40:
            roles.append(text)
        elif name in CATS or name == "stack":
            roles.append(f"tensors[{i}]")
        elif signature and i < len(signature):
            roles.append(signature[i])
        elif len(texts) == 2:
            roles.append(("self", "other")[i] if method else ("input", "other")[i])
        else:
            roles.append(f"operand {i}")
    return roles


def explain_failure(op: OpRecord, flow: Dataflow, evidence: Evidence | None, message: str) -> Diagnostic:
    """The diagnosis of the op that raised ``message``."""
    failure = FailingOp(op, flow, evidence, message)
    for explain in EXPLAINERS:
        try:
            found = explain(failure)
        except Exception as error:  # one explainer's bug must not hide the failure: try the next
            warnings.warn(f"shapetrace: {explain.__name__} failed: {error!r}", RuntimeWarning, stacklevel=2)
            continue
        if found is not None:
            return found
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    return failure.diagnostic("op-error", f"{failure.what} raised: {first}")


# --- devices and dtypes ---------------------------------------------------------------------------


def cpu_scalar(meta: TensorMeta) -> bool:
    """0-dim CPU tensors mix with tensors on any device."""
    return len(meta.shape) == 0 and meta.device.type == "cpu"


def explain_device(f: FailingOp) -> Diagnostic | None:
    considered = [i for i, m in enumerate(f.inputs) if not cpu_scalar(m)]
    devices = {f.inputs[i].device_name for i in considered}
    if len(devices) < 2 or not _DEVICE_WORDS.search(f.message):
        return None
    origins = {i: f.flow.device_origin(f.inputs[i], f.op.index) for i in considered}
    reference = _reference_device(f, considered, origins, devices)
    odd = [i for i in considered if f.inputs[i].device_name != reference]
    same = [i for i in considered if i not in odd]
    on = ", ".join(f"{f.q(i)} {f.inputs[i].shape_text()} is on {f.inputs[i].device_name}" for i in considered)
    lines = [f"{f.what} mixes devices: {on}. All tensors of one op must be on the same device."]
    fixes = []
    ref_name = f.simple_name(same)
    for i in odd:
        sentence, fix = describe_device_origin(
            f.roles[i], f.inputs[i], origins[i], reference, ref_name, f.flow
        )
        lines.append(sentence)
        if fix and fix not in fixes:
            fixes.append(fix)
    subjects = tuple(origins[i].key for i in odd if origins[i].key)
    return f.diagnostic("device-mismatch", " ".join(lines), "; ".join(fixes) or None, subjects=subjects)


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
                           flow: Dataflow) -> tuple[str, str | None]:  # fmt: skip
    """Why ``role`` is on its device, and the fix: one sentence each."""
    device = meta.device_name
    target = f"{ref_name}.device" if ref_name else f'"{reference}"'
    op = flow.ops[origin.op_index] if origin.op_index is not None else None
    site = flow.site(op) if op is not None else None
    if origin.kind in ("factory", "factory-with-device") and op is not None:
        sentence = (
            f"{_q(role)} is on {device}: it comes from {origin.text}, which {origin.detail} ({device})."
        )
        if origin.kind == "factory-with-device":
            return sentence, f"pass `device={target}` to {origin.text}"
        if site is not None and site.is_call_of(op.op) and op.qualname not in NO_DEVICE_KWARG:
            return sentence, f"`{site.with_keyword('device', target)}`"
        return sentence, f"move it where it is made: `.to({target})`"
    if origin.kind == "moved":
        return (
            f"{_q(role)} is on {device}: {origin.text}.",
            f"remove that move, or bring it back with `.to({target})`",
        )
    if origin.kind == "attribute":
        attribute = flow.attributes.get(origin.key[1])
        sentence = (
            f"{_q(role)} is on {device}: it is {origin.text} — not a parameter or registered buffer, "
            f"so `model.to(...)` did not move it."
        )
        return sentence, register_buffer_fix(attribute) if attribute else None
    if origin.kind in ("parameter", "buffer"):
        return (
            f"{_q(role)} is on {device}: it is {origin.text}, left behind when the rest of the model "
            f"moved to {reference}.",
            "move the whole model once after building it (`model.to(device)`); a submodule kept in a "
            "plain list or dict is not registered — use nn.ModuleList / nn.ModuleDict",
        )
    if origin.kind == "input":
        move = f'`{origin.name}.to("{reference}")`' if origin.name else f'`.to("{reference}")`'
        return (
            f"{_q(role)} is on {device}: it is {origin.text}, while the model is on {reference}.",
            f"move the input to the model's device before the call: {move}",
        )
    if origin.kind == "op":
        return f"{_q(role)} is on {device}: {origin.text}.", f"make it on {reference}: `.to({target})`"
    return f"{_q(role)} is on {device}: it was {origin.text}.", f"`.to({target})`"


def register_buffer_fix(attribute: ModuleAttribute) -> str:
    """``self.register_buffer("mask", <value>)`` in place of a plain tensor attribute."""
    name = attribute.name.split("[", 1)[0]
    found = assignment_of(attribute.owner, name)
    value = found[2] if found else "..."
    where = f" (instead of `self.{name} = ...` at {short_location(found[0], found[1])})" if found else ""
    if "[" in attribute.name:
        return f"keep the tensors as registered buffers{where}, one `self.register_buffer(name, tensor)` each"
    return f'`self.register_buffer("{name}", {value})` in `__init__`{where}'


def explain_dtype(f: FailingOp) -> Diagnostic | None:
    if (
        f.name == "embedding"
        and f.inputs
        and (f.inputs[0].dtype.is_floating_point or f.inputs[0].dtype.is_complex)
    ):
        meta = f.inputs[0]
        origin = f.flow.dtype_origin(meta, f.op.index)
        return f.diagnostic(
            "dtype-mismatch",
            f"{f.what} looks rows up by index, so {f.q(0)} must be an integer tensor (int64 or int32), "
            f"but {f.q(0)} {meta.shape_text()} is {meta.dtype_name}: {origin.text}.",
            f"pass integer indices: `{f.roles[0]}.long()`, or make them with an integer dtype (e.g. `torch.randint`)",
        )
    considered = [i for i, m in enumerate(f.inputs) if len(m.shape) > 0]
    dtypes = {f.inputs[i].dtype for i in considered}
    if len(dtypes) < 2 or not _DTYPE_WORDS.search(f.message):
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
    fix = f"make it {str(reference).removeprefix('torch.')} where it is made{where}, or convert it here: `{f.roles[odd[0]]}.to({target})`"
    return f.diagnostic(
        "dtype-mismatch", " ".join(lines), fix, subjects=tuple(o.key for o in origins if o.key)
    )


# --- shapes -------------------------------------------------------------------------------------


def _ints(shape: tuple) -> bool:
    return all(isinstance(s, int) for s in shape)


def explain_linear(f: FailingOp) -> Diagnostic | None:
    if f.name != "linear" or len(f.inputs) < 2:
        return None
    x, w = f.inputs[0], f.inputs[1]
    if not x.shape or len(w.shape) != 2 or not _ints(x.shape + w.shape) or x.shape[-1] == w.shape[-1]:
        return None
    k, (out_features, in_features) = x.shape[-1], w.shape
    attribute = f.flow.attribute(w.tensor_id, f.op.index)
    details = side_by_side(["input ", (x.shape, {-1}), "   weight ", (w.shape, {-1})])
    if attribute is not None:
        owner = attribute.module or "the model"
        message = (
            f"`{owner}` ({attribute.module_type}) has in_features={in_features} — its weight "
            f"`{attribute.label}` {w.shape_text()} is (out_features, in_features) — but the last dim of "
            f"its input {x.shape_text()} is {k}."
        )
        layer = f"nn.Linear(in_features={k}, out_features={out_features})"
        fix = (
            f"`{layer}` fits this input; or change what feeds `{owner}` so that its last dim is {in_features}"
        )
    else:
        message = (
            f"{f.what} multiplies the last dim of {f.q(0)} {x.shape_text()} ({k}) with the last dim "
            f"of {f.q(1)} {w.shape_text()} (in_features, {in_features}): they must be equal."
        )
        fix = f"make the weight ({out_features}, {k}), or the input's last dim {in_features}"
    others = [d for d, size in enumerate(x.shape[:-1]) if size == in_features]
    if others:
        message += f" Dim {others[0]} of the input is {in_features}: is the input transposed?"
    return f.diagnostic("matmul-shape", message, fix, details)


def explain_matmul(f: FailingOp) -> Diagnostic | None:
    if f.name not in MATMULS or len(f.inputs) < 2:
        return None
    left, right = (
        (1, 0) if f.name == "__rmatmul__" else (1, 2) if f.name.startswith(("add", "badd")) else (0, 1)
    )
    if max(left, right) >= len(f.inputs):
        return None
    a, b = f.inputs[left], f.inputs[right]
    ra, rb = f.roles[left], f.roles[right]
    if not a.shape or not b.shape or not _ints(a.shape + b.shape):
        return None
    if f.name in ("mm", "addmm") and (len(a.shape) != 2 or len(b.shape) != 2):
        bad = f"`{ra}`" if len(a.shape) != 2 else f"`{rb}`"
        shape = (a if len(a.shape) != 2 else b).shape_text()
        return f.diagnostic("matmul-shape", f"{f.what} multiplies 2-D matrices, but {bad} is {shape}.",
                            "use `@` (torch.matmul) for batched or 1-D operands")  # fmt: skip
    inner_b = -2 if len(b.shape) >= 2 else -1
    k_a, k_b = a.shape[-1], b.shape[inner_b]
    sep = " @ "
    if k_a != k_b:
        position = "second-to-last" if inner_b == -2 else "only"
        message = (
            f"{f.what}: the inner dims must match — (n, k) @ (k, m) -> (n, m) — but the last dim of `{ra}` "
            f"{a.shape_text()} is {k_a} and the {position} dim of `{rb}` {b.shape_text()} is {k_b}."
        )
        details = side_by_side([(a.shape, {-1}), sep, (b.shape, {inner_b})])
        if len(b.shape) >= 2 and b.shape[-1] == k_a:
            fix = f"`{rb}.transpose(-2, -1)` is {dims_text(b.shape[:-2] + (b.shape[-1], b.shape[-2]))} and fits: `{ra} @ {rb}.transpose(-2, -1)`"
        elif len(a.shape) >= 2 and a.shape[-2] == k_b:
            fix = f"`{ra}.transpose(-2, -1)` is {dims_text(a.shape[:-2] + (a.shape[-1], a.shape[-2]))} and fits: `{ra}.transpose(-2, -1) @ {rb}`"
        else:
            fix = f"make the last dim of `{ra}` equal to the {position} dim of `{rb}`"
        return f.diagnostic("matmul-shape", message, fix, details)
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    if f.name in ("bmm", "baddbmm") and batch_a != batch_b:
        message = (
            f"{f.what} needs equal batch sizes (dim 0), but `{ra}` {a.shape_text()} has {batch_a[0] if batch_a else '-'} "
            f"and `{rb}` {b.shape_text()} has {batch_b[0] if batch_b else '-'}; bmm does not broadcast."
        )
        details = side_by_side([(a.shape, {0}), sep, (b.shape, {0})])
        return f.diagnostic(
            "matmul-shape",
            message,
            "use `@` (torch.matmul) to broadcast the batch dims, or expand one operand",
            details,
        )
    if batch_a and batch_b:
        columns = _incompatible_columns([batch_a, batch_b])
        if columns:
            c = max(columns)
            dims = " and ".join(
                f"dim {len(s) + c} of `{r}` is {s[c]}" for s, r in ((batch_a, ra), (batch_b, rb))
            )
            message = (
                f"{f.what}: the inner dims fit ({k_a}), but the batch dims (all but the last two) broadcast "
                f"right to left and must be equal or 1: {dims}."
            )
            rows = [(ra, a.shape), (rb, b.shape)]
            details = right_aligned(rows, {col - 2 for col in columns}, "batch dims: equal or 1")
            return f.diagnostic("broadcast", message, None, details)
    return None


def explain_cat(f: FailingOp) -> Diagnostic | None:
    if (f.name not in CATS and f.name != "stack") or len(f.inputs) < 2:
        return None
    shapes = [m.shape for m in f.inputs]
    if not all(_ints(s) for s in shapes):
        return None
    dim = f.call.get(1, "dim", 0) if f.call is not None else None
    rows = list(zip(f.roles, shapes))
    if f.name == "stack":
        first = next((i for i, s in enumerate(shapes) if s != shapes[0]), None)
        if first is None:
            return None
        s0, si = shapes[0], shapes[first]
        if len(s0) != len(si):
            message = f"{f.what} needs tensors of one shape, but {f.q(first)} {f.inputs[first].shape_text()} has {len(si)} dims and {f.q(0)} {f.inputs[0].shape_text()} has {len(s0)}."
            return f.diagnostic("stack-shape", message, None, right_aligned(rows, set()))
        bad = [d for d in range(len(s0)) if s0[d] != si[d]]
        message = (
            f"{f.what} puts tensors side by side along a new dim, so they must all have the same shape, but "
            f"{f.q(first)} {f.inputs[first].shape_text()} differs from {f.q(0)} {f.inputs[0].shape_text()} "
            f"in dim {bad[0]} ({si[bad[0]]} vs {s0[bad[0]]})."
        )
        columns = {d - len(s0) for d in bad}
        return f.diagnostic("stack-shape", message, f"make dim {bad[0]} of every tensor the same; `torch.cat` joins tensors that differ along one dim",
                            right_aligned(rows, columns, f"dim {bad[0]}"))  # fmt: skip
    ndims = {len(s) for s in shapes if s != (0,)}
    if len(ndims) > 1:
        first = next(i for i, s in enumerate(shapes) if len(s) != len(shapes[0]))
        message = (
            f"{f.what} joins tensors with the same number of dims, but {f.q(0)} {f.inputs[0].shape_text()} "
            f"has {len(shapes[0])} and {f.q(first)} {f.inputs[first].shape_text()} has {len(shapes[first])}."
        )
        return f.diagnostic("cat-shape", message, "unsqueeze or reshape so every tensor has the same number of dims",
                            right_aligned(rows, set()))  # fmt: skip
    ndim = ndims.pop() if ndims else 0
    if not isinstance(dim, int) or ndim == 0:
        return None
    dim %= ndim
    full = [(i, s) for i, s in enumerate(shapes) if len(s) == ndim]
    i0, s0 = full[0]
    for i, s in full[1:]:
        bad = [d for d in range(ndim) if d != dim and s[d] != s0[d]]
        if bad:
            d = bad[0]
            message = (
                f"{f.what} joins along dim {dim}, so every other dim must match, but {f.q(i)} "
                f"{f.inputs[i].shape_text()} has {s[d]} in dim {d} where {f.q(i0)} {f.inputs[i0].shape_text()} "
                f"has {s0[d]}."
            )
            if all(t[e] == s0[e] for _, t in full for e in range(ndim) if e != d):
                fix = f"to join along dim {d} instead, pass `dim={d}`; otherwise make dim {d} of every tensor {s0[d]}"
            else:
                fix = f"make dim {d} of every tensor {s0[d]} (only dim {dim}, the one joined, may differ)"
            return f.diagnostic("cat-shape", message, fix, right_aligned(rows, {d - ndim}, f"dim {d}"))
    return None


def explain_view(f: FailingOp) -> Diagnostic | None:
    if f.name not in VIEWS or not f.inputs or f.call is None:
        return None
    x = f.inputs[0]
    target = _view_target(f.call)
    if target is None or not _ints(x.shape):
        return None
    args = ", ".join(str(t) for t in target)
    if "stride" in f.message and f.call.contiguous and not f.call.contiguous[0]:
        reorder = _layout_origin(f, x)
        cause = f" — {reorder}" if reorder else ""
        message = (
            f"{f.what}: view never copies, so the input's memory must already be laid out in that order, but "
            f"{f.q(0)} {x.shape_text()} is not contiguous{cause}."
        )
        fix = f"`.reshape({args})` copies when it must; or `.contiguous().view({args})`"
        return f.diagnostic("view-stride", message, fix)
    numel = math.prod(x.shape)
    known = math.prod(t for t in target if t != -1)
    free = sum(1 for t in target if t == -1)
    if free > 1 or (free == 1 and known and numel % known == 0) or (free == 0 and known == numel):
        return None
    factors = " × ".join(str(s) for s in x.shape) or "1"
    if free and known:
        message = (
            f"{f.what}: {f.q(0)} {x.shape_text()} holds {numel} elements ({factors}); the sizes besides -1 "
            f"multiply to {known}, which does not divide {numel} ({numel} / {known} = {numel / known:g})."
        )
    elif free:
        message = f"{f.what}: the sizes besides -1 multiply to 0, so -1 cannot be inferred."
    else:
        message = (
            f"{f.what} asks for {' × '.join(str(t) for t in target)} = {known} elements, but {f.q(0)} "
            f"{x.shape_text()} holds {numel} ({factors})."
        )
    details = side_by_side([(x.shape, set()), f" -> {f.name}", (target, set())])
    fix = None
    if len(x.shape) >= 2 and len(target) == 2 and target[0] in (-1, x.shape[0]) and target[1] != -1:
        per = numel // x.shape[0]
        rest = " × ".join(str(s) for s in x.shape[1:])
        message += (
            f" Per item of dim 0 ({x.shape[0]}), the input holds {per} elements ({rest}), not {target[1]}."
        )
        call = f"{f.roles[0]}.{f.name}" if f.op.qualname.startswith("Tensor.") else f"torch.{f.name}"
        fix = f"`{call}({target[0]}, {per})` — and whatever reads the result must expect {per} (e.g. a Linear's in_features)"
    return f.diagnostic("view-size", message, fix, details)


def _view_target(call: CallArguments) -> tuple[int, ...] | None:
    rest = tuple(call.args[1:])
    named = call.keyword("shape") if call.keyword("shape") is not None else call.keyword("size")
    if named is not None:
        rest = (named,)
    if len(rest) == 1 and isinstance(rest[0], (list, tuple)):
        rest = tuple(rest[0])
    return rest if rest and all(isinstance(t, int) and not isinstance(t, bool) for t in rest) else None


def _layout_origin(f: FailingOp, meta: TensorMeta) -> str | None:
    """The op that made ``meta`` non-contiguous, walking back through its producers."""
    tensor_id, index = meta.tensor_id, f.op.index
    for _ in range(100):
        op = f.flow.producer(tensor_id, index)
        if op is None or not op.inputs:
            return None
        if op.op in _LAYOUT_OPS or base_name(op.qualname) in _LAYOUT_OPS:
            return f"`{op.op}` at {short_location(op.file, op.line)} reordered it"
        tensor_id, index = op.inputs[0].tensor_id, op.index
    return None


def explain_conv(f: FailingOp) -> Diagnostic | None:
    if f.name not in CONVS | CONV_TRANSPOSES or len(f.inputs) < 2:
        return None
    x, w = f.inputs[0], f.inputs[1]
    if not _ints(x.shape + w.shape) or len(w.shape) < 3:
        return None
    spatial = len(w.shape) - 2
    attribute = f.flow.attribute(w.tensor_id, f.op.index)
    owner = f"`{attribute.module}` ({attribute.module_type})" if attribute and attribute.module else f.what
    layer = attribute.module_type if attribute else f"Conv{spatial}d"
    if len(x.shape) not in (spatial + 1, spatial + 2):
        names = ", ".join(["C", *"DHW"[3 - spatial :]]) if spatial <= 3 else "C, ..."
        message = (
            f"{owner} takes ({names}) or (B, {names}) input — {spatial + 1} or {spatial + 2} dims — but "
            f"{f.q(0)} is {x.shape_text()} ({len(x.shape)} dims)."
        )
        return f.diagnostic("conv-input", message, f"reshape the input to (B, {names})")
    groups = f.call.get(6, "groups", 1) if f.call is not None else 1
    groups = groups if isinstance(groups, int) and groups > 0 else 1
    channel_dim = 1 if len(x.shape) == spatial + 2 else 0
    channels = x.shape[channel_dim]
    transposed = f.name in CONV_TRANSPOSES
    expected = w.shape[0] if transposed else w.shape[1] * groups
    if channels == expected:
        return None
    grouped = f", groups={groups}" if groups > 1 else ""
    message = (
        f"{owner} expects {expected} input channels (weight {w.shape_text()}{grouped}), but dim {channel_dim} "
        f"of its input {x.shape_text()} is {channels}."
    )
    details = side_by_side(
        ["input ", (x.shape, {channel_dim}), "   weight ", (w.shape, {0 if transposed else 1})]
    )
    if x.shape[-1] == expected and len(x.shape) == spatial + 2 and spatial >= 2 and x.shape[1] == x.shape[2]:
        order = ", ".join(str(d) for d in (0, len(x.shape) - 1, *range(1, len(x.shape) - 1)))
        message += f" Its last dim is {expected}: it looks channels-last; `.permute({order})` puts channels in dim 1."
    fix = f"`nn.{layer}(in_channels={channels}, ...)` fits this input; or make the layer before it output {expected} channels"
    return f.diagnostic("conv-channels", message, fix, details)


def explain_expand(f: FailingOp) -> Diagnostic | None:
    if f.name != "expand" or not f.inputs or f.call is None:
        return None
    target = _view_target(f.call)
    x = f.inputs[0]
    if target is None or not _ints(x.shape) or len(target) < len(x.shape):
        return None
    offset = len(target) - len(x.shape)
    bad = [d for d, size in enumerate(x.shape) if target[offset + d] not in (-1, size) and size != 1]
    if not bad:
        return None
    d = bad[0]
    message = (
        f"{f.what} can only stretch dims of size 1, but dim {d} of {f.q(0)} {x.shape_text()} is {x.shape[d]} "
        f"and the target asks for {target[offset + d]}."
    )
    rows = [(f.roles[0], x.shape), ("target", target)]
    return f.diagnostic("broadcast", message, "use -1 to keep a dim, or 1-sized dims where it must stretch",
                        right_aligned(rows, {d - len(x.shape)}, f"{x.shape[d]} vs {target[offset + d]}"))  # fmt: skip


def explain_layer_norm(f: FailingOp) -> Diagnostic | None:
    if f.name != "layer_norm" or not f.inputs or f.call is None:
        return None
    x = f.inputs[0]
    normalized = f.call.get(1, "normalized_shape")
    normalized = (normalized,) if isinstance(normalized, int) else normalized
    if not isinstance(normalized, (list, tuple)) or not all(isinstance(n, int) for n in normalized):
        return None
    normalized = tuple(normalized)
    tail = x.shape[len(x.shape) - len(normalized) :] if len(normalized) <= len(x.shape) else x.shape
    if tail == normalized:
        return None
    weight = f.flow.attribute(f.inputs[1].tensor_id, f.op.index) if len(f.inputs) > 1 else None
    owner = f"`{weight.module}` ({weight.module_type})" if weight is not None and weight.module else f.what
    message = (
        f"{owner} normalizes the last {len(normalized)} dim{'s' if len(normalized) > 1 else ''} of its input, "
        f"built for {dims_text(normalized)}, but {f.q(0)} {x.shape_text()} ends with {dims_text(tail)}."
    )
    details = right_aligned([(f.roles[0], x.shape), ("normalized_shape", normalized)],
                            {-d for d in range(1, len(normalized) + 1)}, "must be equal")  # fmt: skip
    layer = weight.module_type if weight is not None else "LayerNorm"
    fix = f"`nn.{layer}({tail[0] if len(tail) == 1 else dims_text(tail)})` fits this input"
    return f.diagnostic("norm-shape", message, fix, details)


def _incompatible_columns(shapes: list[tuple]) -> set[int]:
    """Columns (from the right, -1 = last dim) where sizes differ and none is 1... by the seeds'
    rule; empty when ``torch.broadcast_shapes`` accepts the shapes."""
    try:
        torch.broadcast_shapes(*shapes)
        return set()
    except RuntimeError:
        pass
    columns = set()
    for c in range(1, max(len(s) for s in shapes) + 1):
        sizes = {s[-c] for s in shapes if len(s) >= c and s[-c] != 1}
        if len(sizes) > 1:
            columns.add(-c)
    return columns


def explain_broadcast(f: FailingOp) -> Diagnostic | None:
    considered = [i for i, m in enumerate(f.inputs) if len(m.shape) > 0 and _ints(m.shape)]
    if len(considered) < 2 or f.name in NOT_ELEMENTWISE or not _SHAPE_WORDS.search(f.message):
        return None
    shapes = [f.inputs[i].shape for i in considered]
    rows = [(f.roles[i], f.inputs[i].shape) for i in considered]
    columns = _incompatible_columns(shapes)
    if not columns:
        result = tuple(torch.broadcast_shapes(*shapes))
        target = f.inputs[0]
        if _in_place(f.op) and result != target.shape:
            message = (
                f"{f.what} writes its result into {f.q(0)} {target.shape_text()}, but the operands broadcast "
                f"to {dims_text(result)}: an in-place op cannot grow its left operand."
            )
            rows.append(("result", result))
            fix = (
                f"write a new tensor instead: `{f.roles[0]} = {f.roles[0]} {f.op.op.rstrip('=')} ...`"
                if f.op.op.endswith("=")
                else "use the out-of-place op (without `_`)"
            )
            return f.diagnostic("broadcast", message, fix, right_aligned(rows, set()))
        return None
    c = max(columns)
    dim = f"dim {len(shapes[0]) + c}" if len({len(s) for s in shapes}) == 1 else f"dim {c} (from the right)"
    sizes = [
        (i, f.inputs[i].shape[c])
        for i in considered
        if len(f.inputs[i].shape) >= -c and f.inputs[i].shape[c] != 1
    ]
    message = (
        f"{f.what} broadcasts its operands: dims are compared right to left and must be equal or 1, "
        f"but in {dim} " + " and ".join(f"{f.q(i)} has {size}" for i, size in sizes) + "."
    )
    fix = None
    for i, size in sizes:
        attribute = f.flow.attribute(f.inputs[i].tensor_id, f.op.index)
        other = next((s for j, s in sizes if j != i), None)
        if attribute is not None and other is not None:
            fix = (
                f"`{attribute.label}` {f.inputs[i].shape_text()} was built with {size} in {dim}, the other operand "
                f"has {other}: check the sizes {attribute.where} was built for against this input"
            )
            break
    return f.diagnostic("broadcast", message, fix, right_aligned(rows, columns, "equal or 1"))


def _in_place(op: OpRecord) -> bool:
    name = base_name(op.qualname)
    return (name.endswith("_") and not name.startswith("__")) or name.startswith("__i")


def _q(text: str) -> str:
    return f"`{text}`"


EXPLAINERS: tuple[Callable[[FailingOp], Diagnostic | None], ...] = (
    explain_device, explain_dtype, explain_linear, explain_matmul, explain_cat, explain_view,
    explain_conv, explain_expand, explain_layer_norm, explain_broadcast,
)  # fmt: skip
