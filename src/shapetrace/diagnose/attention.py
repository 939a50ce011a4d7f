"""Attention shapes: scaled_dot_product_attention's query, key, value and mask, and einsum
subscripts against the operands' shapes."""

from __future__ import annotations

import ast
from itertools import permutations

from shapetrace.diagnose.align import broadcast, index_text, placement
from shapetrace.diagnose.checking import Fix
from shapetrace.diagnose.diagnostic import Diagnostic
from shapetrace.diagnose.evidence import OperandRef
from shapetrace.diagnose.failing import FailingOp, atom, dim_labels
from shapetrace.diagnose.layout import dims_text, right_aligned
from shapetrace.diagnose.shapes import changed_operand, incompatible_columns, ints, mask_shapes


def _mask_operand(f: FailingOp) -> int | None:
    value = f.call.get(3, "attn_mask") if f.call is not None else None
    return value.index if isinstance(value, OperandRef) else None


def explain_sdpa(f: FailingOp) -> Diagnostic | None:
    if f.name != "scaled_dot_product_attention" or len(f.inputs) < 3 or f.call is None:
        return None
    q, k, v = f.inputs[:3]
    if not ints(q.shape + k.shape + v.shape) or min(len(q.shape), len(k.shape), len(v.shape)) < 2:
        return None
    replay = f.replay()
    wrong = _qkv_mismatch(q, k, v)
    if wrong is not None:
        for i in (1, 2):
            turned = _turned(f.inputs, i)
            if turned is not None and _qkv_mismatch(*turned) is None:
                new = f"{atom(f.roles[i])}.transpose(1, 2)"
                text, edits = changed_operand(f, i, new)
                check = replay.check({i: lambda t: t.transpose(1, 2)}) if replay else None
                message = f"{wrong} {f.q(i)} {dims_text(f.inputs[i].shape)} looks like (B, N, h, d): its heads are dim 2."
                return f.diagnostic(
                    "attention-shape", message, Fix(f"`{text}`" if edits else f"`{new}`", edits, check)
                )
        return f.diagnostic(
            "attention-shape", f"{wrong} (query (..., L, E), key (..., S, E), value (..., S, Ev))."
        )
    m = _mask_operand(f)
    if m is None:
        return None
    mask = f.inputs[m]
    batch = broadcast(q.shape[:-2], k.shape[:-2])
    if batch is None:
        return None
    scores = (*batch, q.shape[-2], k.shape[-2])
    if not incompatible_columns([mask.shape, scores]):
        return None
    names = ("B", "h", "L", "S")[-len(scores) :] if len(scores) <= 4 else None
    generic = f"({', '.join(names)})" if names else "(..., L, S)"
    message = (
        f"`attn_mask` must broadcast to the scores' shape {generic}: queries L by keys S. {f.q(m)} "
        f"{mask.shape_text(named_only=True)} does not: compared right to left, its sizes meet other dims."
    )
    message += " " + (mask_shapes(scores) if len(scores) == 4 else f"Scores here are {dims_text(scores)}.")
    details = right_aligned([(f.roles[m], mask.shape), ("scores", scores)],
                            incompatible_columns([mask.shape, scores]), "equal or 1")  # fmt: skip
    labels = dim_labels(q)[:-2] + [dim_labels(q)[-2], dim_labels(k)[-2]]
    positions = placement(mask.shape, scores, dim_labels(mask), labels)
    if positions is None:
        return f.diagnostic("attention-mask", message, None, details)
    index = index_text(positions, len(scores))
    new = f"{atom(f.roles[m])}{index}"
    text, edits = changed_operand(f, m, new)
    key = tuple(slice(None) if d in positions else None for d in range(positions[0], len(scores)))
    check = replay.check({m: lambda t: t[key]}) if replay else None
    return f.diagnostic("attention-mask", message, Fix(f"`{new}`", edits, check), details)


def _qkv_mismatch(q, k, v) -> str | None:
    qs, ks, vs = (getattr(t, "shape", t) for t in (q, k, v))
    if qs[-1] != ks[-1]:
        return f"query and key must end with the same width E: query {dims_text(qs)} ends with {qs[-1]}, key {dims_text(ks)} with {ks[-1]}."
    if ks[-2] != vs[-2]:
        return f"key and value must hold the same number of keys S (dim -2): key {dims_text(ks)} has {ks[-2]}, value {dims_text(vs)} has {vs[-2]}."
    for name, shape in (("key", ks), ("value", vs)):
        if incompatible_columns([qs[:-2], shape[:-2]]):
            return f"the batch dims (all but the last two) must broadcast: query {dims_text(qs)}, {name} {dims_text(shape)}."
    return None


def _turned(inputs, i: int):
    shapes = [tuple(m.shape) for m in inputs[:3]]
    s = shapes[i]
    if len(s) != 4:
        return None
    shapes[i] = (s[0], s[2], s[1], s[3])
    return shapes


# --- einsum ------------------------------------------------------------------------------------


def explain_einsum(f: FailingOp) -> Diagnostic | None:
    if f.name != "einsum" or f.call is None or not f.call.args or not isinstance(f.call.args[0], str):
        return None
    equation = f.call.args[0].replace(" ", "")
    if "..." in equation:
        return None
    lhs, _, rhs = equation.partition("->")
    subscripts = lhs.split(",")
    shapes = [m.shape for m in f.inputs]
    if len(subscripts) != len(shapes) or not all(ints(s) for s in shapes):
        return None
    call = f"`torch.einsum({f.call.args[0]!r}, ...)`"
    for i, (letters, shape) in enumerate(zip(subscripts, shapes)):
        if len(letters) != len(shape):
            message = (
                f"{call}: operand {i} {f.q(i)} {f.inputs[i].shape_text(named_only=True)} has {len(shape)} dims, but its "
                f"subscripts `{letters}` name {len(letters)}: one letter per dim (or `...` for the rest)."
            )
            return f.diagnostic("einsum", message)
    conflict = _conflict(subscripts, shapes)
    if conflict is None:
        return None
    letter, seen = conflict
    sizes = " and ".join(f"{size} in operand {i} ({f.q(i)})" for i, size in seen)
    message = (
        f"{call}: subscript {letter} is {sizes}: each letter names one size, in every operand it appears in."
    )
    details = _letter_table(subscripts, shapes, f.roles, letter)
    fixed = _permuted_equation(subscripts, shapes, rhs, [i for i, _ in seen][1:] + [seen[0][0]])
    if fixed is None:
        return f.diagnostic("einsum", message, None, details)
    operand, new_equation = fixed
    message += (
        f" With `{new_equation}`, {f.q(operand)} {f.inputs[operand].shape_text(named_only=True)} is read as "
        f"({', '.join(new_equation.split('->')[0].split(',')[operand])}) and every letter has one size."
    )
    replay = f.replay()
    check = replay.check(args={0: new_equation}) if replay else None
    node = f.site.argument(0, "equation") if f.site is not None else None
    edits = ()
    if node is not None and isinstance(node, ast.Constant) and isinstance(node.value, str):
        quote = f.site.text(node)[0]
        edits = f.site.edits({node: f"{quote}{new_equation}{quote}"})
    text = f'`"{new_equation}"`' + (f" — `{f.site.rewritten({node: repr(new_equation)})}`" if edits else "")
    return f.diagnostic("einsum", message, Fix(text, edits, check), details)


def _conflict(subscripts: list[str], shapes: list[tuple]) -> tuple[str, list[tuple[int, int]]] | None:
    for letter in dict.fromkeys("".join(subscripts)):
        seen = [(i, shape[letters.index(letter)]) for i, (letters, shape) in enumerate(zip(subscripts, shapes))
                if letter in letters]  # fmt: skip
        if len({size for _, size in seen if size != 1}) > 1:
            return letter, seen
    return None


def _letter_table(subscripts: list[str], shapes: list[tuple], roles: list[str], bad: str) -> list[str]:
    letters = list(dict.fromkeys("".join(subscripts)))
    width = max(len(r) for r in roles)
    head = "subscript  " + "  ".join(r.rjust(width) for r in roles)
    lines = [head]
    for letter in letters:
        cells = [
            str(shape[subs.index(letter)]) if letter in subs else "-"
            for subs, shape in zip(subscripts, shapes)
        ]
        mark = "  ✗" if letter == bad else ""
        lines.append(f"{letter:<9}  " + "  ".join(c.rjust(width) for c in cells) + mark)
    return lines


def _permuted_equation(
    subscripts: list[str], shapes: list[tuple], rhs: str, order: list[int]
) -> tuple[int, str] | None:
    """An equation in which one operand's subscripts are reordered so that every letter has one
    size: the operand tried first is the one listed first in ``order``; fewest letters moved."""
    for i in order:
        letters = subscripts[i]
        if len(letters) > 6:
            continue
        best = None
        for perm in permutations(letters):
            candidate = subscripts[:i] + ["".join(perm)] + subscripts[i + 1 :]
            if _conflict(candidate, shapes) is None:
                moved = sum(a != b for a, b in zip(perm, letters))
                if best is None or moved < best[0]:
                    best = (moved, candidate)
        if best is not None:
            return i, ",".join(best[1]) + (f"->{rhs}" if rhs else "")
    return None
