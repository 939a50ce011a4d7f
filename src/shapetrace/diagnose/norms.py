"""Normalization layers fed the wrong shape: LayerNorm on a channels-first tensor, BatchNorm on
(B, N, C) tokens, GroupNorm or BatchNorm built for another channel count."""

from __future__ import annotations

import math

from shapetrace.diagnose.checking import Fix
from shapetrace.diagnose.diagnostic import Diagnostic
from shapetrace.diagnose.failing import FailingOp, atom, dim_labels, labelled
from shapetrace.diagnose.layout import dims_text, right_aligned


def _moved_around(f: FailingOp, forward: tuple[int, ...], back: tuple[int, ...]) -> tuple[str, tuple] | None:
    """The layer's call with its input's channels moved last and the result's moved back:
    ``self.norm(h.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)`` (``transpose(1, 2)`` for 3 dims)."""
    there = ".transpose(1, 2)" if len(forward) == 3 else f".permute({', '.join(map(str, forward))})"
    home = ".transpose(1, 2)" if len(back) == 3 else f".permute({', '.join(map(str, back))})"
    site = f.module_site()
    if site is not None and site.node.args:
        node = site.node.args[0]
        inner = site.rewritten({node: f"{atom(site.text(node))}{there}"})
        return f"{inner}{home}", site.edits({site.node: f"{inner}{home}"})
    if f.site is not None and f.nodes and f.nodes[0] is not None:
        inner = f.site.rewritten({f.nodes[0]: f"{atom(f.site.text(f.nodes[0]))}{there}"})
        return f"{atom(inner)}{home}", f.site.edits({f.site.node: f"{atom(inner)}{home}"})
    return None


def _channels_last_order(ndim: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    forward = (0, *range(2, ndim), 1)
    back = (0, ndim - 1, *range(1, ndim - 1))
    return forward, back


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
    owner, layer = f.owner(1)
    layer = layer or "LayerNorm"
    replay = f.replay()
    details = right_aligned([(f.roles[0], x.shape), ("normalized_shape", normalized)],
                            {-d for d in range(1, len(normalized) + 1)}, "must be equal")  # fmt: skip
    labels = dim_labels(x)
    if len(normalized) == 1 and len(x.shape) >= 3 and x.shape[1] == normalized[0]:
        forward, back = _channels_last_order(len(x.shape))
        message = (
            f"{owner} normalizes the last dim of its input, built for {normalized[0]} channels, but {f.q(0)} "
            f"{x.shape_text(named_only=True)} is channels-first: its channels are dim 1 ({labelled(labels[1], x.shape[1])}) and its "
            f"last dim is {labelled(labels[-1], x.shape[-1])}. LayerNorm over channels needs them last."
        )
        check = replay.check({0: lambda t: t.permute(forward)}) if replay else None
        moved = _moved_around(f, forward, back)
        text = (
            f"`{moved[0]}`"
            if moved
            else f"move the channels last before the layer and back after: `.permute{forward}`"
        )
        return f.diagnostic("norm-shape", message, Fix(text, moved[1] if moved else (), check), details)
    message = (
        f"{owner} normalizes the last {len(normalized)} dim{'s' if len(normalized) > 1 else ''} of its input, "
        f"built for {dims_text(normalized)}, but {f.q(0)} {x.shape_text(named_only=True)} ends with {dims_text(tail)}."
    )
    size = str(tail[0]) if len(tail) == 1 else dims_text(tail)
    check = None
    if replay is not None and len(f.inputs) >= 2:
        check = replay.check(
            {i: (lambda t: t.new_empty(tail)) for i in range(1, len(f.inputs))}, args={1: tail}
        )
    built = f.construction()
    changed = built.with_argument(0, "normalized_shape", size) if built is not None else None
    if changed is not None:
        fix = Fix(f"`{changed[0]}` fits this input (at {built.location})", changed[1], check)
    else:
        fix = Fix(f"`nn.{layer}({size})` fits this input", (), check)
    return f.diagnostic("norm-shape", message, fix, details)


def explain_group_norm(f: FailingOp) -> Diagnostic | None:
    if f.name != "group_norm" or len(f.inputs) < 2 or f.call is None or len(f.inputs[0].shape) < 2:
        return None
    x, weight = f.inputs[0], f.inputs[1]
    groups = f.call.get(1, "num_groups")
    channels, built_for = x.shape[1], weight.shape[0] if weight.shape else None
    if not isinstance(groups, int) or built_for is None:
        return None
    owner, _ = f.owner(1)
    if channels == built_for and channels % groups == 0:
        return None
    fits = channels % groups == 0
    message = (
        f"{owner} was built for {built_for} channels (num_channels={built_for}, in num_groups={groups} groups), "
        f"but dim 1 of its input {f.q(0)} {x.shape_text(named_only=True)} has {channels} channels"
        + ("." if fits else f", not a multiple of {groups}.")
    )
    new_groups = groups if fits else math.gcd(groups, channels)
    replay = f.replay()
    check = None
    if replay is not None:
        check = replay.check({i: (lambda t: t.new_empty((channels,))) for i in range(1, len(f.inputs))},
                             args={1: new_groups})  # fmt: skip
    built = f.construction()
    changed = None
    if built is not None and fits:
        changed = built.with_argument(1, "num_channels", str(channels))
    elif built is not None and built.argument_text(0, "num_groups") is not None:
        first = built.with_argument(0, "num_groups", str(new_groups))
        second = built.with_argument(1, "num_channels", str(channels))
        if first and second:
            call = built.site.rewritten({built.site.argument(0, "num_groups", built.call): str(new_groups),
                                         built.site.argument(1, "num_channels", built.call): str(channels)}, built.call)  # fmt: skip
            changed = (call, first[1] + second[1])
    text = (f"`{changed[0]}` fits this input (at {built.location}); or normalize where the tensor has {built_for} "
            f"channels" if changed else f"`nn.GroupNorm({new_groups}, {channels})` fits this input")  # fmt: skip
    details = [
        f"input {x.shape_text(named_only=True)}: {channels} channels in dim 1; the layer's weight {weight.shape_text(named_only=True)}"
    ]
    return f.diagnostic("norm-shape", message, Fix(text, changed[1] if changed else (), check), details)


def explain_batch_norm(f: FailingOp) -> Diagnostic | None:
    if f.name != "batch_norm" or len(f.inputs) < 2 or len(f.inputs[0].shape) < 2:
        return None
    x = f.inputs[0]
    stats = [m for m in f.inputs[1:] if len(m.shape) == 1]
    if not stats:
        return None
    built_for, channels = stats[0].shape[0], x.shape[1]
    if channels == built_for:
        return None
    owner, layer = f.owner(3)
    replay = f.replay()
    labels = dim_labels(x)
    if len(x.shape) == 3 and x.shape[-1] == built_for:
        message = (
            f"{owner} normalizes channels in dim 1 — it takes (B, C) or (B, C, L) — and was built for "
            f"{built_for} channels, but {f.q(0)} {x.shape_text(named_only=True)} has them last, as tokens (B, N, C) do: dim 1 is "
            f"{labelled(labels[1], channels)}."
        )
        check = replay.check({0: lambda t: t.transpose(1, 2)}) if replay else None
        moved = _moved_around(f, (0, 2, 1), (0, 2, 1))
        text = (
            f"`{moved[0]}`"
            if moved
            else "transpose to (B, C, N) before the layer and back after: `.transpose(1, 2)`"
        )
        return f.diagnostic("norm-shape", message, Fix(text, moved[1] if moved else (), check))
    message = (
        f"{owner} was built for {built_for} channels (its running statistics are ({built_for},)), but dim 1 of "
        f"its input {f.q(0)} {x.shape_text(named_only=True)} has {channels} channels."
    )
    check = None
    if replay is not None:
        check = replay.check({i: (lambda t: t.new_empty((channels,))) for i in range(1, len(f.inputs))
                              if len(f.inputs[i].shape) == 1})  # fmt: skip
    built = f.construction()
    changed = built.with_argument(0, "num_features", str(channels)) if built is not None else None
    if changed is not None:
        fix = Fix(f"`{changed[0]}` fits this input (at {built.location})", changed[1], check)
    else:
        fix = Fix(f"`nn.{layer or 'BatchNorm2d'}({channels})` fits this input", (), check)
    return f.diagnostic("norm-shape", message, fix)
