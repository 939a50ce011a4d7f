"""Shape failures: matmul and linear inner dims, cat/stack, view/reshape, conv channels, a kernel
larger than its input, expand, broadcasting. Each names the operand and dim at fault, where the
size came from, and a fix that was re-run on meta tensors when it is code."""

from __future__ import annotations

import ast
import math

from shapetrace.capture.records import OpRecord, TensorMeta
from shapetrace.capture.source import short_location
from shapetrace.diagnose.align import broadcast, index_text, missing, placed_shape, placement
from shapetrace.diagnose.checking import Fix
from shapetrace.diagnose.diagnostic import Diagnostic
from shapetrace.diagnose.failing import SHAPE_WORDS, FailingOp, atom, dim_labels
from shapetrace.diagnose.layout import dims_text, right_aligned, side_by_side
from shapetrace.diagnose.ops import (
    CATS,
    CONV_TRANSPOSES,
    CONVS,
    MATMULS,
    NOT_ELEMENTWISE,
    VIEWS,
    base_name,
)

_LAYOUT_OPS = {"transpose", "permute", "t", "T", "mT", "mH", "H", "expand", "movedim", "swapaxes", "swapdims",
               "narrow", "[]", "unfold", "diagonal", "as_strided", "expand_as"}  # fmt: skip


def ints(shape: tuple) -> bool:
    return all(isinstance(s, int) for s in shape)


def changed_operand(f: FailingOp, i: int, new: str) -> tuple[str, tuple]:
    """The failing expression with operand ``i`` written as ``new``: its text and the edits
    (no edits when the operand's expression is not known)."""
    node = f.nodes[i] if i < len(f.nodes) else None
    if f.site is None or node is None:
        return new, ()
    if new.startswith("("):
        node = f.site.grouped(node)
    return f.site.rewritten({node: new}), f.site.edits({node: new})


# --- matmul and linear ----------------------------------------------------------------------------


def explain_linear(f: FailingOp) -> Diagnostic | None:
    if f.name != "linear" or len(f.inputs) < 2:
        return None
    x, w = f.inputs[0], f.inputs[1]
    if not x.shape or len(w.shape) != 2 or not ints(x.shape + w.shape) or x.shape[-1] == w.shape[-1]:
        return None
    k, (out_features, in_features) = x.shape[-1], w.shape
    attribute = f.attribute(1)
    details = side_by_side(["input ", (x.shape, {-1}), "   weight ", (w.shape, {-1})])
    replay = f.replay()
    check = replay.check({1: lambda t: t.new_empty((out_features, k))}) if replay else None
    if attribute is not None:
        owner = attribute.module or "the model"
        message = (
            f"`{owner}` ({attribute.module_type}) has in_features={in_features} — its weight "
            f"`{attribute.label}` {w.shape_text(named_only=True)} is (out_features, in_features) — but the last dim of "
            f"its input {x.shape_text(named_only=True)} is {k}."
        )
        built = f.construction()
        changed = built.with_argument(0, "in_features", str(k)) if built is not None else None
        if changed is not None:
            fix = Fix(f"`{changed[0]}` fits this input (at {built.location}); or change what feeds `{owner}` "
                      f"so that its last dim is {in_features}", changed[1], check)  # fmt: skip
        else:
            layer = f"nn.Linear(in_features={k}, out_features={out_features})"
            fix = Fix(f"`{layer}` fits this input; or change what feeds `{owner}` so that its last dim is "
                      f"{in_features}", (), check)  # fmt: skip
    else:
        message = (
            f"{f.what} multiplies the last dim of {f.q(0)} {x.shape_text(named_only=True)} ({k}) with the last dim "
            f"of {f.q(1)} {w.shape_text(named_only=True)} (in_features, {in_features}): they must be equal."
        )
        fix = Fix(f"make the weight ({out_features}, {k}), or the input's last dim {in_features}", (), check)
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
    if not a.shape or not b.shape or not ints(a.shape + b.shape):
        return None
    if f.name in ("mm", "addmm") and (len(a.shape) != 2 or len(b.shape) != 2):
        bad = f"`{ra}`" if len(a.shape) != 2 else f"`{rb}`"
        shape = (a if len(a.shape) != 2 else b).shape_text(named_only=True)
        return f.diagnostic("matmul-shape", f"{f.what} multiplies 2-D matrices, but {bad} is {shape}.",
                            "use `@` (torch.matmul) for batched or 1-D operands")  # fmt: skip
    inner_b = -2 if len(b.shape) >= 2 else -1
    k_a, k_b = a.shape[-1], b.shape[inner_b]
    sep = " @ "
    replay = f.replay()
    if k_a != k_b:
        position = "second-to-last" if inner_b == -2 else "only"
        message = (
            f"{f.what}: the inner dims must match — (n, k) @ (k, m) -> (n, m) — but the last dim of `{ra}` "
            f"{a.shape_text(named_only=True)} is {k_a} and the {position} dim of `{rb}` {b.shape_text(named_only=True)} is {k_b}."
        )
        details = side_by_side([(a.shape, {-1}), sep, (b.shape, {inner_b})])
        if len(b.shape) >= 2 and b.shape[-1] == k_a:
            turned, which = b.shape[:-2] + (b.shape[-1], b.shape[-2]), right
        elif len(a.shape) >= 2 and a.shape[-2] == k_b:
            turned, which = a.shape[:-2] + (a.shape[-1], a.shape[-2]), left
        else:
            which = None
        if which is None:
            return f.diagnostic("matmul-shape", message,
                                f"make the last dim of `{ra}` equal to the {position} dim of `{rb}`", details)  # fmt: skip
        role = f.roles[which]
        new = f"{atom(role)}.transpose(-2, -1)"
        text, edits = changed_operand(f, which, new)
        check = replay.check({which: lambda t: t.transpose(-2, -1)}) if replay else None
        fix = Fix(f"`{new}` is {dims_text(turned)} and fits: `{text}`", edits, check)
        return f.diagnostic("matmul-shape", message, fix, details)
    batch_a, batch_b = a.shape[:-2], b.shape[:-2]
    if f.name in ("bmm", "baddbmm") and batch_a != batch_b:
        message = (
            f"{f.what} needs equal batch sizes (dim 0), but `{ra}` {a.shape_text(named_only=True)} has {batch_a[0] if batch_a else '-'} "
            f"and `{rb}` {b.shape_text(named_only=True)} has {batch_b[0] if batch_b else '-'}; bmm does not broadcast."
        )
        details = side_by_side([(a.shape, {0}), sep, (b.shape, {0})])
        return f.diagnostic("matmul-shape", message,
                            "use `@` (torch.matmul) to broadcast the batch dims, or expand one operand", details)  # fmt: skip
    if batch_a and batch_b:
        columns = incompatible_columns([batch_a, batch_b])
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


# --- cat and stack ------------------------------------------------------------------------------


def explain_cat(f: FailingOp) -> Diagnostic | None:
    if (f.name not in CATS and f.name != "stack") or len(f.inputs) < 2:
        return None
    shapes = [m.shape for m in f.inputs]
    if not all(ints(s) for s in shapes):
        return None
    dim = f.call.get(1, "dim", 0) if f.call is not None else None
    rows = list(zip(f.roles, shapes))
    if f.name == "stack":
        first = next((i for i, s in enumerate(shapes) if s != shapes[0]), None)
        if first is None:
            return None
        s0, si = shapes[0], shapes[first]
        if len(s0) != len(si):
            message = f"{f.what} needs tensors of one shape, but {f.q(first)} {f.inputs[first].shape_text(named_only=True)} has {len(si)} dims and {f.q(0)} {f.inputs[0].shape_text(named_only=True)} has {len(s0)}."
            return f.diagnostic("stack-shape", message, None, right_aligned(rows, set()))
        bad = [d for d in range(len(s0)) if s0[d] != si[d]]
        message = (
            f"{f.what} puts tensors side by side along a new dim, so they must all have the same shape, but "
            f"{f.q(first)} {f.inputs[first].shape_text(named_only=True)} differs from {f.q(0)} {f.inputs[0].shape_text(named_only=True)} "
            f"in dim {bad[0]} ({si[bad[0]]} vs {s0[bad[0]]})."
        )
        columns = {d - len(s0) for d in bad}
        return f.diagnostic("stack-shape", message, f"make dim {bad[0]} of every tensor the same; `torch.cat` joins tensors that differ along one dim",
                            right_aligned(rows, columns, f"dim {bad[0]}"))  # fmt: skip
    ndims = {len(s) for s in shapes if s != (0,)}
    if len(ndims) > 1:
        first = next(i for i, s in enumerate(shapes) if len(s) != len(shapes[0]))
        message = (
            f"{f.what} joins tensors with the same number of dims, but {f.q(0)} {f.inputs[0].shape_text(named_only=True)} "
            f"has {len(shapes[0])} and {f.q(first)} {f.inputs[first].shape_text(named_only=True)} has {len(shapes[first])}."
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
                f"{f.inputs[i].shape_text(named_only=True)} has {s[d]} in dim {d} where {f.q(i0)} {f.inputs[i0].shape_text(named_only=True)} "
                f"has {s0[d]}."
            )
            if all(t[e] == s0[e] for _, t in full for e in range(ndim) if e != d):
                fix = _cat_dim_fix(f, d, s0[d])
            else:
                fix = Fix(
                    f"make dim {d} of every tensor {s0[d]} (only dim {dim}, the one joined, may differ)"
                )
            return f.diagnostic("cat-shape", message, fix, right_aligned(rows, {d - ndim}, f"dim {d}"))
    return None


def _cat_dim_fix(f: FailingOp, d: int, size: int) -> Fix:
    text = f"to join along dim {d} instead, pass `dim={d}`; otherwise make dim {d} of every tensor {size}"
    replay = f.replay()
    check = (
        replay.check(kwargs={"dim": d}) if replay is not None and f.call.keyword("dim") is not None else None
    )
    if f.site is None:
        return Fix(text, (), check)
    change = f.site.keyword_change("dim", str(d))
    return Fix(text, f.site.edits(change), check) if f.call.keyword("dim") is not None else Fix(text)


# --- view and reshape -----------------------------------------------------------------------------


def explain_view(f: FailingOp) -> Diagnostic | None:
    if f.name not in VIEWS or not f.inputs or f.call is None:
        return None
    x = f.inputs[0]
    target = view_target(f.call)
    if target is None or not ints(x.shape):
        return None
    args = ", ".join(str(t) for t in target)
    replay = f.replay()
    if "stride" in f.message and f.call.contiguous and not f.call.contiguous[0]:
        reorder = _layout_origin(f, x)
        cause = f" — {reorder}" if reorder else ""
        message = (
            f"{f.what}: view never copies, so the input's memory must already be laid out in that order, but "
            f"{f.q(0)} {x.shape_text(named_only=True)} is not contiguous{cause}."
        )
        fix = Fix(f"`.reshape({args})` copies when it must; or `.contiguous().view({args})`", (),
                  replay.check({0: lambda t: t.contiguous()}) if replay else None)  # fmt: skip
        if (
            f.site is not None
            and isinstance(f.site.node, ast.Call)
            and isinstance(f.site.node.func, ast.Attribute)
        ):
            func = f.site.node.func
            changes = {func: f"{f.site.text(func.value)}.reshape"} if func.attr == "view" else {}
            if changes:
                fix = Fix(fix.text, f.site.edits(changes), fix.check)
        return f.diagnostic("view-stride", message, fix)
    numel = math.prod(x.shape)
    known = math.prod(t for t in target if t != -1)
    free = sum(1 for t in target if t == -1)
    if free > 1 or (free == 1 and known and numel % known == 0) or (free == 0 and known == numel):
        return None
    factors = " × ".join(str(s) for s in x.shape) or "1"
    if free and known:
        message = (
            f"{f.what}: {f.q(0)} {x.shape_text(named_only=True)} holds {numel} elements ({factors}); the sizes besides -1 "
            f"multiply to {known}, which does not divide {numel} ({numel} / {known} = {numel / known:g})."
        )
    elif free:
        message = f"{f.what}: the sizes besides -1 multiply to 0, so -1 cannot be inferred."
    else:
        message = (
            f"{f.what} asks for {' × '.join(str(t) for t in target)} = {known} elements, but {f.q(0)} "
            f"{x.shape_text(named_only=True)} holds {numel} elements ({factors})."
        )
    details = side_by_side([(x.shape, set()), f" -> {f.name}", (target, set())])
    heads = _heads_split(f, x, target)
    if heads is not None:
        return f.diagnostic("view-size", message + " " + heads[0], heads[1], details)
    fix = None
    if len(x.shape) >= 2 and len(target) == 2 and target[0] in (-1, x.shape[0]) and target[1] != -1:
        per = numel // x.shape[0]
        rest = " × ".join(str(s) for s in x.shape[1:])
        message += (
            f" Per item of dim 0 ({x.shape[0]}), the input holds {per} elements ({rest}), not {target[1]}."
        )
        call = f"{f.roles[0]}.{f.name}" if f.op.qualname.startswith("Tensor.") else f"torch.{f.name}"
        check = replay.check(args={1: target[0], 2: per}) if replay and len(f.call.args) == 3 else None
        size = f.site.argument(1, "") if f.site is not None else None
        edits = f.site.edits({size: str(per)}) if size is not None and len(f.call.args) == 3 else ()
        fix = Fix(f"`{call}({target[0]}, {per})` — and whatever reads the result must expect {per} (e.g. a "
                  "Linear's in_features)", edits, check)  # fmt: skip
    elif free == 0:
        fix = _resized_view(f, numel, target, replay)
    return f.diagnostic("view-size", message, fix, details)


def _resized_view(f: FailingOp, numel: int, target: tuple[int, ...], replay) -> Fix | None:
    """The target with the sizes that hold every element: two equal sizes (a square map, 7 x 7 ->
    8 x 8) scaled together, else one size; the others as written."""
    candidates: list[dict[int, int]] = []
    for i in range(1, len(target)):
        for j in range(i + 1, len(target)):
            rest = math.prod(t for k, t in enumerate(target) if k not in (i, j))
            side = math.isqrt(numel // rest) if rest and numel % rest == 0 else 0
            if target[i] == target[j] and side > 1 and side * side * rest == numel:
                candidates.append({i: side, j: side})
    if not candidates:
        for i in range(len(target) - 1, 0, -1):
            rest = math.prod(t for k, t in enumerate(target) if k != i)
            if rest and numel % rest == 0:
                candidates.append({i: numel // rest})
                break
    if not candidates:
        return None
    sizes = candidates[-1]
    new_target = tuple(sizes.get(k, t) for k, t in enumerate(target))
    check = None
    if replay is not None and len(f.call.args) == len(target) + 1:
        check = replay.check(args={k + 1: v for k, v in sizes.items()})
    node = f.site.node if f.site is not None else None
    if isinstance(node, ast.Call) and len(node.args) == len(target):
        changes = {node.args[k]: str(v) for k, v in sizes.items()}
        return Fix(f"`{f.site.rewritten(changes)}` holds all {numel} elements — if the sizes before it are right",
                   f.site.edits(changes), check)  # fmt: skip
    return Fix(f"`.{f.name}{dims_text(new_target)}` holds all {numel} elements", (), check)


def _heads_split(f: FailingOp, x: TensorMeta, target: tuple[int, ...]) -> tuple[str, Fix] | None:
    """A (B, M, D) tensor viewed as (B, h, N, d) with h * d = D: the split that keeps tokens
    and heads apart is view(B, M, h, d).transpose(1, 2), whatever M is."""
    if len(x.shape) != 3 or len(target) != 4 or target[0] not in (-1, x.shape[0]):
        return None
    (batch, tokens, width), (_, heads, _, head_dim) = x.shape, target
    if heads <= 1 or head_dim <= 0 or heads * head_dim != width:
        return None
    sentence = (
        f"{f.q(0)} is (B, N, D) with N = {tokens} tokens and D = {width} = {heads} heads × {head_dim}: in memory "
        f"each token's {width} values are its heads side by side, so the heads split as (B, N, h, d) = "
        f"{dims_text((batch, tokens, heads, head_dim))}, and transpose(1, 2) makes (B, h, N, d); a view "
        f"straight to (B, h, N, d) would mix tokens into heads even where the sizes fit."
    )
    site, node = f.site, f.site.node if f.site is not None else None
    replay = f.replay()
    check = (
        replay.check(args={1: target[0], 2: -1, 3: heads, 4: head_dim},
                     accept=lambda out: tuple(out.transpose(1, 2).shape) == (batch, heads, tokens, head_dim))
        if replay is not None and len(f.call.args) == 5 else None
    )  # fmt: skip
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and len(node.args) == 4):
        return sentence, Fix(f"`.{f.name}({target[0]}, -1, {heads}, {head_dim}).transpose(1, 2)`", (), check)
    a = [site.text(arg) for arg in node.args]
    new = f"{site.text(node.func.value)}.{node.func.attr}({a[0]}, -1, {a[1]}, {a[3]}).transpose(1, 2)"
    return sentence, Fix(f"`{new}`", site.edits({node: new}), check)


def view_target(call) -> tuple[int, ...] | None:
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


# --- convolutions and pooling ---------------------------------------------------------------------


def explain_conv(f: FailingOp) -> Diagnostic | None:
    if f.name not in CONVS | CONV_TRANSPOSES or len(f.inputs) < 2:
        return None
    x, w = f.inputs[0], f.inputs[1]
    if not ints(x.shape + w.shape) or len(w.shape) < 3:
        return None
    spatial = len(w.shape) - 2
    attribute = f.attribute(1)
    owner = f"`{attribute.module}` ({attribute.module_type})" if attribute and attribute.module else f.what
    layer = attribute.module_type if attribute else f"Conv{spatial}d"
    if len(x.shape) not in (spatial + 1, spatial + 2):
        names = ", ".join(["C", *"DHW"[3 - spatial :]]) if spatial <= 3 else "C, ..."
        message = (
            f"{owner} takes ({names}) or (B, {names}) input — {spatial + 1} or {spatial + 2} dims — but "
            f"{f.q(0)} is {x.shape_text(named_only=True)} ({len(x.shape)} dims)."
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
        f"{owner} expects {expected} input channels (weight {w.shape_text(named_only=True)}{grouped}), but dim {channel_dim} "
        f"of its input {x.shape_text(named_only=True)} is {channels}."
    )
    details = side_by_side(
        ["input ", (x.shape, {channel_dim}), "   weight ", (w.shape, {0 if transposed else 1})]
    )
    if x.shape[-1] == expected and len(x.shape) == spatial + 2 and spatial >= 2 and x.shape[1] == x.shape[2]:
        order = ", ".join(str(d) for d in (0, len(x.shape) - 1, *range(1, len(x.shape) - 1)))
        message += f" Its last dim is {expected}: it looks channels-last; `.permute({order})` puts channels in dim 1."
    replay = f.replay()
    check = None
    if replay is not None and not transposed and channels % groups == 0:
        shape = (w.shape[0], channels // groups, *w.shape[2:])
        check = replay.check({1: lambda t: t.new_empty(shape)})
    built = f.construction()
    changed = built.with_argument(0, "in_channels", str(channels)) if built is not None else None
    if changed is not None:
        fix = Fix(f"`{changed[0]}` fits this input (at {built.location}); or make the layer before it output "
                  f"{expected} channels", changed[1], check)  # fmt: skip
    else:
        fix = Fix(f"`nn.{layer}(in_channels={channels}, ...)` fits this input; or make the layer before it output "
                  f"{expected} channels", (), check)  # fmt: skip
    return f.diagnostic("conv-channels", message, fix, details)


# --- expand and broadcasting ----------------------------------------------------------------------


def explain_expand(f: FailingOp) -> Diagnostic | None:
    if f.name != "expand" or not f.inputs or f.call is None:
        return None
    target = view_target(f.call)
    x = f.inputs[0]
    if target is None or not ints(x.shape) or len(target) < len(x.shape):
        return None
    offset = len(target) - len(x.shape)
    bad = [d for d, size in enumerate(x.shape) if target[offset + d] not in (-1, size) and size != 1]
    if not bad:
        return None
    d = bad[0]
    message = (
        f"{f.what} can only stretch dims of size 1, but dim {d} of {f.q(0)} {x.shape_text(named_only=True)} is {x.shape[d]} "
        f"and the target asks for {target[offset + d]}."
    )
    rows = [(f.roles[0], x.shape), ("target", target)]
    return f.diagnostic("broadcast", message, "use -1 to keep a dim, or 1-sized dims where it must stretch",
                        right_aligned(rows, {d - len(x.shape)}, f"{x.shape[d]} vs {target[offset + d]}"))  # fmt: skip


def incompatible_columns(shapes: list[tuple]) -> set[int]:
    """Columns (from the right, -1 = last dim) where sizes differ and none is 1; empty when
    the shapes broadcast."""
    if broadcast(*shapes) is not None:
        return set()
    columns = set()
    for c in range(1, max(len(s) for s in shapes) + 1):
        sizes = {s[-c] for s in shapes if len(s) >= c and s[-c] != 1}
        if len(sizes) > 1:
            columns.add(-c)
    return columns


def explain_broadcast(f: FailingOp) -> Diagnostic | None:
    considered = [i for i, m in enumerate(f.inputs) if len(m.shape) > 0 and ints(m.shape)]
    if len(considered) < 2 or f.name in NOT_ELEMENTWISE or not SHAPE_WORDS.search(f.message):
        return None
    shapes = [f.inputs[i].shape for i in considered]
    rows = [(f.roles[i], f.inputs[i].shape) for i in considered]
    columns = incompatible_columns(shapes)
    if not columns:
        return _in_place_growth(f, shapes, rows)
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
    if f.name in ("masked_fill", "masked_fill_") and len(shapes[0]) == 4:
        message += " " + mask_shapes(shapes[0])
    lined_up = missing_axes(f, considered)
    if lined_up is not None:
        sentence, fix = lined_up
        return f.diagnostic(
            "broadcast", f"{message} {sentence}", fix, right_aligned(rows, columns, "equal or 1")
        )
    fix = None
    for i, size in sizes:
        attribute = f.attribute(i)
        other = next((s for j, s in sizes if j != i), None)
        if attribute is not None and other is not None:
            fix = (
                f"`{attribute.label}` {f.inputs[i].shape_text(named_only=True)} was built with {size} in {dim}, the other operand "
                f"has {other}: check the sizes {attribute.where} was built for against this input"
            )
            break
    return f.diagnostic("broadcast", message, fix, right_aligned(rows, columns, "equal or 1"))


def mask_shapes(scores: tuple) -> str:
    """The mask shapes that broadcast against attention scores (B, h, L, S)."""
    b, _, length, keys = scores
    return (
        f"A mask for scores (B, h, L, S) = {dims_text(scores)} broadcasts as (L, S) = {dims_text((length, keys))}, "
        f"(B, 1, L, S) = {dims_text((b, 1, length, keys))}, (B, 1, 1, S) = {dims_text((b, 1, 1, keys))} for a key "
        f"padding mask, or (B, h, L, S)."
    )


def missing_axes(f: FailingOp, considered: list[int]) -> tuple[str, Fix] | None:
    """An operand with fewer dims whose dims line up with the other's leading (or first and last)
    dims: it lacks the axes in between, and indexing with ``None`` adds them."""
    big = max(considered, key=lambda i: len(f.inputs[i].shape))
    target = f.inputs[big]
    for i in considered:
        small = f.inputs[i]
        if len(small.shape) >= len(target.shape):
            continue
        positions = placement(small.shape, target.shape, dim_labels(small), dim_labels(target))
        if positions is None:
            continue
        ndim = len(target.shape)
        index = index_text(positions, ndim)
        lacking = missing(positions, ndim)
        labels = dim_labels(target)
        named = all(not label.isdigit() for label in labels)
        names = f" ({', '.join(labels[d] for d in lacking)})" if named else ""
        where = ", ".join(str(p) for p in positions)
        new = f"{atom(f.roles[i])}{index}"
        sentence = (
            f"{f.q(i)} {small.shape_text(named_only=True)} lines up with dim{'s' if len(positions) > 1 else ''} {where} of "
            f"{f.q(big)} {target.shape_text(named_only=True)}, but has no axes for dim{'s' if len(lacking) > 1 else ''} "
            f"{', '.join(map(str, lacking))}{names}, so right-aligned its sizes meet the wrong dims; "
            f"`{new}` is {dims_text(placed_shape(small.shape, positions, ndim))} and broadcasts."
        )
        text, edits = changed_operand(f, i, new)
        key = tuple(slice(None) if d in positions else None for d in range(positions[0], ndim))
        replay = f.replay()
        check = replay.check({i: lambda t, key=key: t[key]},
                             accept=lambda out: tuple(out.shape) == tuple(target.shape)) if replay else None  # fmt: skip
        return sentence, Fix(f"`{text}`" if edits else f"`{new}`", edits, check)
    return None


def _in_place_growth(f: FailingOp, shapes: list[tuple], rows: list) -> Diagnostic | None:
    result = broadcast(*shapes)
    target = f.inputs[0]
    if not _in_place(f.op) or result == target.shape:
        return None
    message = (
        f"{f.what} writes its result into {f.q(0)} {target.shape_text(named_only=True)}, but the operands broadcast "
        f"to {dims_text(result)}: an in-place op cannot grow its left operand."
    )
    rows.append(("result", result))
    fix = (
        f"write a new tensor instead: `{f.roles[0]} = {f.roles[0]} {f.op.op.rstrip('=')} ...`"
        if f.op.op.endswith("=")
        else "use the out-of-place op (without `_`)"
    )
    return f.diagnostic("broadcast", message, fix, right_aligned(rows, set()))


def _in_place(op: OpRecord) -> bool:
    name = base_name(op.qualname)
    return (name.endswith("_") and not name.startswith("__")) or name.startswith("__i")
