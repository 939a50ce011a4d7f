"""Class-index lookups that fail: cross_entropy/nll_loss targets of the wrong shape, dtype or
range, and embedding ids outside the table."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from shapetrace.capture.records import TensorMeta
from shapetrace.diagnose.checking import Fix, fixed
from shapetrace.diagnose.construction import module_construction
from shapetrace.diagnose.diagnostic import Diagnostic
from shapetrace.diagnose.failing import FailingOp, atom, dim_labels
from shapetrace.diagnose.layout import dims_text

_CLASS_LOSSES = frozenset({"cross_entropy", "nll_loss"})


def _changed(f: FailingOp, changes: dict[int, str]) -> tuple[str, tuple]:
    """The failing call with operands rewritten (``{operand: new text}``)."""
    nodes = {f.nodes[i]: new for i, new in changes.items() if i < len(f.nodes) and f.nodes[i] is not None}
    if f.site is None or len(nodes) != len(changes):
        return " and ".join(changes.values()), ()
    return f.site.rewritten(nodes), f.site.edits(nodes)


def explain_loss_target(f: FailingOp) -> Diagnostic | None:
    if f.name not in _CLASS_LOSSES or len(f.inputs) < 2:
        return None
    x, target = f.inputs[0], f.inputs[1]
    if not x.shape:
        return None
    loss = f"`F.{f.name}`"
    replay = f.replay()
    classes = x.shape[1] if len(x.shape) > 1 else x.shape[0]
    if (target.dtype.is_floating_point or target.dtype.is_complex) and target.shape != x.shape:
        message = (
            f"{loss} reads a float target as class probabilities, shaped like its input {x.shape_text(named_only=True)}; "
            f"{f.q(1)} {target.shape_text(named_only=True)} is {target.dtype_name}, so it is meant as class indices — "
            f"which must be integers (int64)."
        )
        new = f"{atom(f.roles[1])}.long()"
        text, edits = _changed(f, {1: new})
        check = replay.check({1: lambda t: t.long()}) if replay else None
        return f.diagnostic("loss-target", message, Fix(f"`{text}`" if edits else f"`{new}`", edits, check))
    expected = (x.shape[0], *x.shape[2:]) if len(x.shape) > 1 else ()
    if target.shape == expected:
        return _target_range(f, x, target, classes)
    labels = dim_labels(x)
    if len(x.shape) >= 3 and target.shape == x.shape[:-1]:
        flat = x.shape[0] * x.shape[1] if len(x.shape) == 3 else None
        message = (
            f"{loss} reads the classes in dim 1 of its input: for {f.q(0)} {x.shape_text(named_only=True)} that is "
            f"{labels[1]} = {x.shape[1]}, so it expects targets {dims_text(expected)}, but {f.q(1)} is "
            f"{target.shape_text(named_only=True)}. With the classes in the last dim, flatten both: the input (B, T, V) to "
            f"(B*T, V){' = ' + dims_text((flat, x.shape[-1])) if flat else ''}, the targets (B, T) to (B*T,)."
        )
        span = "0, 1" if len(x.shape) == 3 else "0, -2"
        changes = {0: f"{atom(f.roles[0])}.flatten({span})", 1: f"{atom(f.roles[1])}.flatten()"}
        text, edits = _changed(f, changes)
        check = replay.check({0: lambda t: t.flatten(0, -2), 1: lambda t: t.flatten()}) if replay else None
        return f.diagnostic("loss-target", message,
                            Fix(f"`{text}`; or move the classes to dim 1: `{atom(f.roles[0])}.transpose(1, 2)`",
                                edits, check))  # fmt: skip
    if len(x.shape) == 2 and target.shape == (x.shape[0], 1):
        message = (
            f"{loss} wants one class index per row: targets ({labels[0]},) = ({x.shape[0]},) for {f.q(0)} "
            f"{x.shape_text(named_only=True)}, but {f.q(1)} is {target.shape_text(named_only=True)}, a column."
        )
        new = f"{atom(f.roles[1])}.squeeze(1)"
        text, edits = _changed(f, {1: new})
        check = replay.check({1: lambda t: t.squeeze(1)}) if replay else None
        return f.diagnostic("loss-target", message, Fix(f"`{text}`" if edits else f"`{new}`", edits, check))
    message = (
        f"{loss} takes input (B, C) with targets (B,), or input (B, C, d1, ...) with targets (B, d1, ...): "
        f"the classes are dim 1. {f.q(0)} is {x.shape_text(named_only=True)}, so targets must be {dims_text(expected)}, "
        f"but {f.q(1)} is {target.shape_text(named_only=True)}."
    )
    return f.diagnostic("loss-target", message)


def _target_range(f: FailingOp, x: TensorMeta, target: TensorMeta, classes: int) -> Diagnostic | None:
    found = f.call.value_range(1) if f.call is not None else None
    ignore = f.call.get(4, "ignore_index", -100) if f.call is not None else -100
    if found is None:
        return None
    low, high = found
    if low >= 0 and high < classes or low == ignore:
        return None
    bad = high if high >= classes else low
    message = (
        f"`F.{f.name}` looks up each target's class in dim 1 of {f.q(0)} {x.shape_text(named_only=True)}: {classes} classes, "
        f"0 to {classes - 1}; but {f.q(1)} holds {bad}"
        + (f" (its largest target is {high})." if bad == high else f" (its smallest target is {low}).")
    )
    if bad == low:
        return f.diagnostic(
            "loss-target", message, Fix(f"targets must be 0 to {classes - 1} (or ignore_index={ignore})")
        )
    check = fixed(
        lambda: F.cross_entropy(torch.zeros(1, classes), torch.tensor([high])),
        lambda: F.cross_entropy(torch.zeros(1, high + 1), torch.tensor([high])),
    )
    made = f.flow.producer(x.tensor_id, f.op.index)
    weight = (
        f.flow.attribute(made.inputs[1].tensor_id, made.index)
        if made and made.op == "linear" and len(made.inputs) > 1
        else None
    )
    if weight is not None:
        from_layer = _layer_fix(f, weight.module, high + 1)
        if from_layer is not None:
            return f.diagnostic("loss-target", message, Fix(from_layer[0], from_layer[1], check))
    return f.diagnostic("loss-target", message,
                        Fix(f"make the model output at least {high + 1} classes, or check the labels", (), check))  # fmt: skip


def _layer_fix(f: FailingOp, path: str, classes: int) -> tuple[str, tuple] | None:
    built = module_construction(f.flow, path)
    changed = built.with_argument(1, "out_features", str(classes)) if built is not None else None
    if changed is None:
        return None
    return f"`{changed[0]}` outputs {classes} classes (at {built.location}); or check the labels", changed[1]


def explain_embedding_index(f: FailingOp) -> Diagnostic | None:
    if f.name != "embedding" or len(f.inputs) < 2 or f.call is None or len(f.inputs[1].shape) != 2:
        return None
    found = f.call.value_range(0)
    rows = f.inputs[1].shape[0]
    if found is None:
        return None
    low, high = found
    if low >= 0 and high < rows:
        return None
    weight = f.attribute(1)
    owner = f"`{weight.module}` ({weight.module_type})" if weight is not None and weight.module else f.what
    ids = f.inputs[0]
    if low < 0:
        message = f"{owner} looks up rows 0 to {rows - 1}, but {f.q(0)} {ids.shape_text(named_only=True)} holds a negative id, {low}."
        return f.diagnostic(
            "embedding-index", message, Fix("ids must be 0 or more: check how they were made")
        )
    message = (
        f"{owner} has num_embeddings={rows} — rows 0 to {rows - 1} of its weight {f.inputs[1].shape_text(named_only=True)} — "
        f"but {f.q(0)} {ids.shape_text(named_only=True)} holds ids up to {high}."
    )
    check = fixed(
        lambda: F.embedding(torch.tensor([high]), torch.empty(rows, 1)),
        lambda: F.embedding(torch.tensor([high]), torch.empty(high + 1, 1)),
    )
    built = f.construction()
    changed = built.with_argument(0, "num_embeddings", str(high + 1)) if built is not None else None
    if changed is not None:
        fix = Fix(f"`{changed[0]}` holds ids up to {high} (at {built.location}); or use the vocabulary size of "
                  "the tokenizer that made the ids", changed[1], check)  # fmt: skip
    else:
        fix = Fix(f"`nn.Embedding({high + 1}, ...)` holds ids up to {high}; or use the vocabulary size of the "
                  "tokenizer that made the ids", (), check)  # fmt: skip
    return f.diagnostic("embedding-index", message, fix)
