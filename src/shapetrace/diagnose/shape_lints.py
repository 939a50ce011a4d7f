"""Shape bugs that raise nothing, each at its line with a fix re-run on meta tensors.

- ``broadcast-reduced``: an elementwise op whose operands broadcast to a result larger than both
  ((B, 1) - (B,) -> (B, B)), then reduced to a number or used in a loss: every prediction is
  compared with every target and the mean hides it. Outer products written on purpose (an
  operand made by ``x[:, None]``, ``unsqueeze``, ``view``...) are left alone.
- ``heads-split``: (B, N, D) viewed straight as (B, h, N, d): the memory holds each token's heads
  side by side, so the split is ``view(B, N, h, d).transpose(1, 2)``.
- ``heads-merge``: (B, h, N, d) reshaped straight to (B, N, D): ``transpose(1, 2)`` first.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

import torch

from shapetrace.capture.records import OpRecord
from shapetrace.capture.source import short_location
from shapetrace.diagnose.align import broadcast
from shapetrace.diagnose.callsite import CallSite, module_call_site
from shapetrace.diagnose.checking import Check, Fix, Replay, like, passes, site_arguments
from shapetrace.diagnose.diagnostic import WARNING, Diagnostic, Operand
from shapetrace.diagnose.evidence import CallArguments, OperandRef
from shapetrace.diagnose.failing import atom, operand_nodes, operand_roles, operand_texts
from shapetrace.diagnose.layout import dims_text, right_aligned
from shapetrace.diagnose.ops import ELEMENTWISE_LOSSES, VIEWS, base_name, installed_package
from shapetrace.diagnose.provenance import Dataflow

if TYPE_CHECKING:
    from shapetrace.trace import Trace

ELEMENTWISE = frozenset(
    {"__add__", "__radd__", "__sub__", "__rsub__", "__mul__", "__rmul__", "__truediv__", "__rtruediv__",
     "add", "sub", "subtract", "mul", "multiply", "div", "divide", "true_divide"}
)  # fmt: skip
# Producers of a tensor whose size-1 or missing dims were laid out on purpose, for an outer product.
_ARRANGED = frozenset(
    {"unsqueeze", "[]", "__getitem__", "view", "reshape", "expand", "expand_as", "view_as", "reshape_as",
     "unflatten", "repeat", "outer", "arange", "meshgrid", "T", "mT", "t", "transpose", "permute"}
)  # fmt: skip
_FOLLOW = 12  # ops using a broadcast's result, within which it must be reduced to be reported


def shape_lints(trace: Trace, flow: Dataflow) -> list[Diagnostic]:
    """The broadcast and head-split lints of ``trace``, one per line, repeats counted."""
    found: dict[tuple, Diagnostic] = {}
    for op in flow.ops:
        if op.failed or installed_package(op.file):
            continue
        name = base_name(op.qualname)
        lint = None
        if name in ELEMENTWISE or name in ELEMENTWISE_LOSSES:
            lint = _broadcast_reduced(op, name, flow)
        elif name in VIEWS:
            lint = _heads(op, name, flow)
        if lint is None:
            continue
        key = (lint.kind, lint.file, lint.line)
        known = found.get(key)
        found[key] = lint if known is None else _counted(known)
    return list(found.values())


def _counted(known: Diagnostic) -> Diagnostic:
    return replace(known, count=known.count + 1)


def _site(flow: Dataflow, op: OpRecord) -> CallSite | None:
    site = flow.site(op)
    return site if site is not None and site.is_call_of(op.op) else None


def _lint(op: OpRecord, flow: Dataflow, kind: str, message: str, fix: Fix | None, roles: list[str],
          details=()) -> Diagnostic:  # fmt: skip
    operands = tuple(
        Operand(role, meta, flow.origin(meta, op.index)) for role, meta in zip(roles, op.inputs[: len(roles)])
    )
    return Diagnostic(
        kind, WARNING, message, op.file, op.line, op.index, op.code, op.op, flow.module_text(op.module_index),
        fix.text if fix else None, passes(fix.check) if fix else False, fix.edits if fix else (), tuple(details),
        operands, subjects=(("op", op.index),),
    )  # fmt: skip


# --- a broadcast larger than both operands, then reduced --------------------------------------


def _broadcast_reduced(op: OpRecord, name: str, flow: Dataflow) -> Diagnostic | None:
    pair = [
        i
        for i, m in enumerate(op.inputs[:2])
        if len(m.shape) > 0 and all(isinstance(s, int) for s in m.shape)
    ]
    if len(pair) != 2 or len(op.inputs) < 2:
        return None
    a, b = op.inputs[0], op.inputs[1]
    result = broadcast(a.shape, b.shape)
    if result is None:
        return None
    if math.prod(result) <= max(math.prod(a.shape), math.prod(b.shape)):
        return None
    if any(_arranged(flow, m.tensor_id, op.index) for m in (a, b)):
        return None
    loss = name in ELEMENTWISE_LOSSES
    reducer = None if loss else _reduced_later(flow, op)
    if not loss and reducer is None:
        return None
    site, nodes = _operand_source(flow, op)
    roles = operand_roles(op, [site.text(n) if site and n else None for n in nodes])
    what = f"`{site.text()}`" if site is not None else f"`{op.op}`"
    message = (
        f"{what}: `{roles[0]}` {a.shape_text(named_only=True)} and `{roles[1]}` {b.shape_text(named_only=True)} broadcast to "
        f"{dims_text(result)}, larger than both: compared right to left, each operand's size meets the "
        f"other's 1 or missing dim, so every element of one is paired with every element of the other."
    )
    if loss:
        message += (
            f" `{op.op}` then averages all {math.prod(result)} pairs into one number, and nothing fails."
        )
    else:
        message += (
            f" `{reducer.op}` at {short_location(reducer.file, reducer.line)} then reduces them to one "
            f"number, and nothing fails."
        )
    details = right_aligned([(roles[0], a.shape), (roles[1], b.shape), ("result", result)], set())
    fix = _squeeze_fix(op, site, nodes, roles, loss, result, flow)
    return _lint(op, flow, "broadcast-reduced", message, fix, roles[:2], details)


def _operand_source(flow: Dataflow, op: OpRecord) -> tuple[CallSite | None, list]:
    """Where the op's operands are written: its own call, or, for an op a torch module ran
    (``criterion(pred, y)`` running ``mse_loss``), the module call's arguments."""
    site = _site(flow, op)
    if site is not None:
        return site, operand_nodes(op, site)
    if op.module_index is None:
        return None, [None] * len(op.inputs)
    call = flow.trace.modules[op.module_index]
    module_site = module_call_site(flow.trace, call.index)
    if (
        call.path not in flow.torch_modules
        or module_site is None
        or not isinstance(module_site.node, ast.Call)
    ):
        return None, [None] * len(op.inputs)
    positions = {m.tensor_id: m.path for m in call.inputs}
    nodes = []
    for meta in op.inputs:
        path = positions.get(meta.tensor_id, "")
        index = int(path[1:-1]) if path[1:-1].isdigit() else None
        args = module_site.node.args
        nodes.append(args[index] if index is not None and index < len(args) else None)
    return module_site, nodes


def _arranged(flow: Dataflow, tensor_id: int, at: int) -> bool:
    made = flow.producer(tensor_id, at)
    return made is not None and (made.op in _ARRANGED or base_name(made.qualname) in _ARRANGED)


def _reduced_later(flow: Dataflow, op: OpRecord) -> OpRecord | None:
    """The op, among the next few that use the result or what is computed from it, that makes a
    0-dim tensor of it (``.mean()``, ``.sum()``, a loss)."""
    frontier = [op]
    seen: set[int] = set()
    while frontier and len(seen) < _FOLLOW:
        made = frontier.pop(0)
        for meta in made.outputs:
            for index in flow.consumers(meta.tensor_id, made.index):
                if index in seen:
                    continue
                seen.add(index)
                later = flow.ops[index]
                if any(len(m.shape) == 0 for m in later.outputs):
                    return later
                frontier.append(later)
    return None


def _squeeze_fix(op: OpRecord, site: CallSite | None, nodes: list, roles: list[str], loss: bool, result: tuple,
                 flow: Dataflow) -> Fix | None:  # fmt: skip
    """Squeeze the trailing 1 of the operand that has it, when the other is its shape without."""
    shapes = [op.inputs[0].shape, op.inputs[1].shape]
    for i, j in ((0, 1), (1, 0)):
        if shapes[i] == (*shapes[j], 1):
            break
    else:
        return Fix("make both operands the same shape (a trailing `.squeeze(-1)` or a `[:, None]`)")
    new = f"{atom(roles[i])}.squeeze(-1)"
    edits, text = (), f"`{new}`"
    if site is not None and nodes[i] is not None:
        edits = site.edits({nodes[i]: new})
        text = f"`{site.rewritten({nodes[i]: new})}`"
    check = _shape_check(op, site, flow, i, loss, result, shapes[j])
    return Fix(text, edits, check)


def _shape_check(op: OpRecord, site: CallSite | None, flow: Dataflow, i: int, loss: bool, result: tuple,
                 expected: tuple) -> Check | None:  # fmt: skip
    """Re-run the op on meta tensors: as recorded it gives ``result``; with operand ``i``
    squeezed, ``expected`` (a loss is re-run with ``reduction="none"`` to see its shape)."""
    func = flow.func(op)
    if loss:  # input and target, as the functional loss takes them
        arguments = CallArguments((OperandRef(0), OperandRef(1)), (), (True, True))
    elif site is not None:
        arguments = site_arguments(site.node, operand_nodes(op, site), op.qualname.startswith("Tensor."))
    else:
        arguments = None
    if func is None or arguments is None:
        return None
    replay = Replay(func, arguments, op.inputs)
    kwargs = {"reduction": "none"} if loss else None

    def check() -> bool:
        before = replay.run(kwargs=kwargs)
        after = replay.run({i: lambda t: t.squeeze(-1)}, kwargs=kwargs)
        return tuple(before.shape) == result and tuple(after.shape) == tuple(expected)

    return check


# --- heads split or merged without the transpose ------------------------------------------------


def _heads(op: OpRecord, name: str, flow: Dataflow) -> Diagnostic | None:
    if not op.inputs or not op.outputs:
        return None
    x, out = op.inputs[0].shape, op.outputs[0].shape
    if not all(isinstance(s, int) for s in (*x, *out)):
        return None
    site = _site(flow, op)
    role = operand_roles(op, operand_texts(op, site, flow=flow))[0]
    if len(x) == 3 and len(out) == 4 and _splits(x, out):
        return _split_lint(op, name, site, flow, x, out, role)
    if len(x) == 4 and len(out) == 3 and _merges(x, out):
        return _merge_lint(op, name, site, flow, x, out, role)
    return None


def _splits(x: tuple, out: tuple) -> bool:
    """(B, N, D) -> (B, h, N, d) with h * d = D."""
    (batch, tokens, width), (b, heads, n, head_dim) = x, out
    return (
        b == batch and n == tokens and heads * head_dim == width and heads not in (1, tokens) and tokens > 1
    )


def _merges(x: tuple, out: tuple) -> bool:
    """(B, h, N, d) -> (B, N, h * d)."""
    (batch, heads, tokens, head_dim), (b, n, width) = x, out
    return (
        b == batch and n == tokens and width == heads * head_dim and heads not in (1, tokens) and tokens > 1
    )


def _split_lint(
    op: OpRecord, name: str, site: CallSite | None, flow: Dataflow, x: tuple, out: tuple, role: str
) -> Diagnostic:
    batch, tokens, width = x
    heads, head_dim = out[1], out[3]
    what = f"`{site.text()}`" if site is not None else f"`{op.op}`"
    message = (
        f"{what} turns `{role}` (B, N, D) = {dims_text(x)} into (B, h, N, d) = {dims_text(out)} in one step, but "
        f"{name} keeps the memory order: each token's {width} values are its {heads} heads side by side, so "
        f"read straight as (B, h, N, d) every head gets a mix of {tokens // math.gcd(tokens, heads)}-token slices "
        f"instead of one head of every token. Split as (B, N, h, d) = {dims_text((batch, tokens, heads, head_dim))}, "
        f"then transpose(1, 2). Nothing fails: the sizes fit."
    )
    fix = _rewritten_view(site, lambda a: [a[0], a[2], a[1], a[3]], ".transpose(1, 2)", "",
                          lambda t: t.view(batch, tokens, heads, head_dim).transpose(1, 2), x, out)  # fmt: skip
    return _lint(op, flow, "heads-split", message, fix, [role])


def _merge_lint(
    op: OpRecord, name: str, site: CallSite | None, flow: Dataflow, x: tuple, out: tuple, role: str
) -> Diagnostic:
    batch, heads, tokens, head_dim = x
    what = f"`{site.text()}`" if site is not None else f"`{op.op}`"
    message = (
        f"{what} turns `{role}` (B, h, N, d) = {dims_text(x)} into (B, N, D) = {dims_text(out)} in one step, but {name} "
        f"reads the heads in memory order: row 0 of the result holds tokens 0 to {heads - 1} of head 0 side by "
        f"side, not the {heads} heads of token 0. Bring the tokens forward first: transpose(1, 2) to "
        f"(B, N, h, d), then {name}. Nothing fails: the sizes fit."
    )
    fix = _rewritten_view(site, lambda a: a, "", ".transpose(1, 2)",
                          lambda t: t.transpose(1, 2).reshape(out), x, out)  # fmt: skip
    return _lint(op, flow, "heads-merge", message, fix, [role])


def _rewritten_view(site: CallSite | None, reorder: Callable[[list[str]], list[str]], after: str, before: str,
                    fixed: Callable[[torch.Tensor], torch.Tensor], x: tuple, out: tuple) -> Fix | None:  # fmt: skip
    """``x.view(a, b, c, d)`` rewritten: its size arguments reordered, ``after`` appended and
    ``before`` put between the receiver and the call; checked on a meta tensor to give ``out``."""

    def check() -> bool:
        return tuple(fixed(like(x)).shape) == tuple(out)

    node = site.node if site is not None else None
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)) or node.keywords:
        return Fix("`view(B, N, h, d).transpose(1, 2)`" if after else "`transpose(1, 2).reshape(B, N, D)`",
                   (), check)  # fmt: skip
    sizes = list(node.args)
    if len(sizes) == 1 and isinstance(sizes[0], (ast.Tuple, ast.List)):
        sizes = list(sizes[0].elts)
    if len(sizes) != len(out) or any(isinstance(s, ast.Starred) for s in sizes):
        return Fix(f"`.{node.func.attr}(...)`: {'split as (B, N, h, d), then transpose(1, 2)' if after else 'transpose(1, 2) first'}",
                   (), check)  # fmt: skip
    texts = reorder([site.text(s) for s in sizes])
    receiver = atom(site.text(node.func.value))
    new = f"{receiver}{before}.{node.func.attr}({', '.join(texts)}){after}"
    return Fix(f"`{new}`", site.edits({node: new}), check)
