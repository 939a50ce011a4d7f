"""A conv or pool window larger than its (padded) input: the size at each step that shrank it,
the input sizes that would work (from the symbolic shape), and the padding or ``ceil_mode`` that
fits, re-run on meta tensors."""

from __future__ import annotations

import ast
import math
import re
from collections.abc import Mapping

from shapetrace.capture.records import OpRecord, TensorMeta
from shapetrace.capture.source import short_location
from shapetrace.diagnose.checking import Fix
from shapetrace.diagnose.diagnostic import Diagnostic
from shapetrace.diagnose.failing import FailingOp, split_dims
from shapetrace.diagnose.ops import CONVS, POOLS
from shapetrace.diagnose.shapes import ints

_TOO_SMALL = re.compile(
    r"Kernel size can't be greater|output size is too small|Output size is too small", re.I
)


def explain_kernel_size(f: FailingOp) -> Diagnostic | None:
    """A conv or pool window larger than its (padded) input: the sizes at each step that shrank
    it, the input sizes that would work, and padding or ceil_mode that fits."""
    if (f.name not in CONVS and f.name not in POOLS) or not f.inputs or f.call is None:
        return None
    if not _TOO_SMALL.search(f.message):
        return None
    x = f.inputs[0]
    window = _window(f)
    if window is None or not ints(x.shape):
        return None
    kernel, stride, padding, dilation = window
    spatial = len(kernel)
    sizes = x.shape[-spatial:]
    reach = [d * (k - 1) + 1 for k, d in zip(kernel, dilation)]  # the window's span
    bad = [i for i in range(spatial) if sizes[i] + 2 * padding[i] < reach[i]]
    if not bad:
        return None
    dim = bad[0]
    steps = _shrinking_steps(f, x, spatial)
    history = [step[1][dim] for step in steps] + [sizes[dim]]
    spans = " x ".join(str(r) for r in reach)
    padded = " x ".join(str(s + 2 * p) for s, p in zip(sizes, padding))
    owner = f.owner(1 if f.name in CONVS else None)[0]
    message = (
        f"{owner} slides a {spans} window over its input, but {f.q(0)} {x.shape_text(named_only=True)} is only {padded}"
        f"{' with padding' if any(padding) else ''} there."
    )
    if len(history) > 1:
        message += f" Dim {len(x.shape) - spatial + dim} shrank at each downsampling: {' → '.join(map(str, history))}."
    working = _working_sizes(f, x, spatial, bad, reach, padding)
    if working:
        message += f" Inputs with {working} work."
    details = [f"{_sizes_text(size)}  {text}" for text, size in _step_lines(f, steps, sizes)]
    fix = _kernel_fix(f, sizes, reach, padding, stride, bad)
    return f.diagnostic("kernel-size", message, fix, details)


def _window(f: FailingOp) -> tuple[tuple[int, ...], ...] | None:
    """kernel, stride, padding, dilation per spatial dim."""
    call = f.call
    if f.name in CONVS:
        if len(f.inputs) < 2:
            return None
        kernel = tuple(f.inputs[1].shape[2:])
        stride, padding, dilation = (
            call.get(3, "stride", 1),
            call.get(4, "padding", 0),
            call.get(5, "dilation", 1),
        )
    else:
        spatial = int(re.search(r"(\d)d", f.name).group(1))
        kernel = call.get(1, "kernel_size")
        stride = call.get(2, "stride") or kernel
        padding = call.get(3, "padding", 0)
        dilation = call.get(4, "dilation", 1) if f.name.startswith("max") else 1
        kernel = _per_dim(kernel, spatial)
    n = len(kernel) if kernel else 0
    found = [kernel, _per_dim(stride, n), _per_dim(padding, n), _per_dim(dilation, n)]
    return tuple(found) if all(v is not None for v in found) and n else None  # type: ignore[return-value]


def _per_dim(value, n: int) -> tuple[int, ...] | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, (list, tuple)) and len(value) == n and all(isinstance(v, int) for v in value):
        return tuple(value)
    return None


def _shrinking_steps(f: FailingOp, x: TensorMeta, spatial: int) -> list[tuple[OpRecord, tuple[int, ...]]]:
    """The ops before this one that changed the spatial size, earliest first, each with the size
    it got; the first entry's op is ``None`` and its size the earliest seen."""
    steps: list = []
    tensor_id, index, current = x.tensor_id, f.op.index, tuple(x.shape[-spatial:])
    for _ in range(500):
        op = f.flow.producer(tensor_id, index)
        if op is None or not op.inputs:
            break
        source = op.inputs[0]
        if len(source.shape) != len(x.shape) or not ints(source.shape):
            break
        before = tuple(source.shape[-spatial:])
        if before != current:
            steps.append((op, before))
        tensor_id, index, current = source.tensor_id, op.index, before
    steps.reverse()
    return steps


def _step_lines(f: FailingOp, steps, sizes) -> list[tuple[str, tuple]]:
    lines = []
    for i, (op, before) in enumerate(steps):
        if i == 0:
            lines.append(("the input", before))
        lines.append((f"after `{op.op}`{_in(f, op)} at {short_location(op.file, op.line)}",
                      steps[i + 1][1] if i + 1 < len(steps) else tuple(sizes)))  # fmt: skip
    return lines


def _in(f: FailingOp, op: OpRecord) -> str:
    module = f.flow.module_text(op.module_index)
    return f" in {module}" if module else ""


def _sizes_text(size: tuple) -> str:
    return " x ".join(str(s) for s in size).rjust(9)


def _working_sizes(f: FailingOp, x: TensorMeta, spatial: int, bad: list[int], reach, padding) -> str | None:
    """Which input sizes would give this op a big enough input: from the symbolic shape of
    ``x`` (``(H - 1)//16 + 1``), the smallest value of each dim name that does."""
    expr = _expr_of(f, x)
    if expr is None:
        return None
    labels = split_dims(expr)
    if len(labels) != len(x.shape):
        return None
    dims = dict(getattr(f.flow.trace, "dims", {}) or {})
    found = []
    for i in bad:
        label = labels[len(x.shape) - spatial + i]
        names = sorted(set(re.findall(r"[A-Za-z_]\w*", label)) - {"floor", "ceil"})
        if len(names) != 1 or names[0] not in dims:
            return None
        name = names[0]
        start = dims[name]
        need = reach[i] - 2 * padding[i]
        smallest = next(
            (v for v in range(start, start * 64 + 64) if _evaluate(label, {**dims, name: v}) >= need), None
        )
        if smallest is None:
            return None
        found.append(f"{name} ≥ {smallest}")
    return " and ".join(dict.fromkeys(found))


def _expr_of(f: FailingOp, x: TensorMeta) -> str | None:
    if x.named_expr and "?" not in x.named_expr:
        return x.expr_exact or x.named_expr  # exact: `H//16`, not the printed `H/16`
    op = f.flow.producer(x.tensor_id, f.op.index)
    if op is None:
        return None
    out = next((m for m in op.outputs if m.tensor_id == x.tensor_id), None)
    if out is None or not out.named_expr or "?" in out.named_expr:
        return None
    return out.expr_exact or out.named_expr


_ARITHMETIC = {ast.Add: lambda a, b: a + b, ast.Sub: lambda a, b: a - b, ast.Mult: lambda a, b: a * b,
               ast.FloorDiv: lambda a, b: a // b, ast.Mod: lambda a, b: a % b}  # fmt: skip


def _evaluate(text: str, names: Mapping[str, int]) -> int:
    """An integer size expression (``(H - 1)//16 + 1``) at the given sizes."""

    def value(node: ast.AST) -> int:
        if isinstance(node, ast.Constant) and isinstance(node.value, int):
            return node.value
        if isinstance(node, ast.Name):
            return names[node.id]
        if isinstance(node, ast.BinOp) and type(node.op) in _ARITHMETIC:
            return _ARITHMETIC[type(node.op)](value(node.left), value(node.right))
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            return -value(node.operand)
        raise ValueError(f"not a size expression: {text}")

    return value(ast.parse(text, mode="eval").body)


def _kernel_fix(f: FailingOp, sizes, reach, padding, stride, bad) -> Fix | None:
    replay = f.replay()
    if f.name in CONVS:
        needed = max(math.ceil((reach[i] - sizes[i]) / 2) for i in bad)
        new_padding = max(needed, *padding)
        check = None
        if replay is not None:
            position = 4 if len(f.call.args) > 4 else None
            changes = (
                {"args": {position: (new_padding,) * len(sizes)}}
                if position
                else {"kwargs": {"padding": new_padding}}
            )
            check = replay.check(**changes)
        built = f.construction()
        if built is not None:
            text, edits = built.with_keyword("padding", str(new_padding))
            return Fix(
                f"`{text}` (at {built.location}) pads the input enough; or feed larger inputs", edits, check
            )
        return Fix(f"pad the input: `padding={new_padding}`; or feed larger inputs", (), check)
    if not all(_ceil_output(sizes[i], reach[i], padding[i], stride[i]) >= 1 for i in bad):
        return None
    check = replay.check(kwargs={"ceil_mode": True}) if replay is not None and len(f.call.args) <= 5 else None
    if f.site is not None and isinstance(f.site.node, ast.Call):
        change = f.site.keyword_change("ceil_mode", "True")
        return Fix(f"`{f.site.rewritten(change)}` keeps the last, partial window; or feed larger inputs",
                   f.site.edits(change), check)  # fmt: skip
    built = f.construction()
    if built is not None:
        text, edits = built.with_keyword("ceil_mode", "True")
        return Fix(
            f"`{text}` (at {built.location}) keeps the last, partial window; or feed larger inputs",
            edits,
            check,
        )
    return Fix("`ceil_mode=True` keeps the last, partial window; or feed larger inputs", (), check)


def _ceil_output(size: int, reach: int, padding: int, stride: int) -> int:
    out = math.ceil((size + 2 * padding - reach) / stride) + 1
    if (out - 1) * stride >= size + padding:
        out -= 1
    return out
