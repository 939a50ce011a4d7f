"""A line's shape comment in its function's own names.

Inside a ``forward`` that reads ``B, C, H, W = x.shape``, the trace's names are the model
input's: a block called on a downsampled tensor ran ``(B, 128, H/4, W/4)`` where its own
``H`` is the input's ``H/2``. Written in the function's names that is ``(B, 128, H/2, W/2)``,
and the runs of a block called at every level of a U-Net become one comment,
``(B, 2*C, H/2, W/2)``, where the trace's names need one alternative per call. ``--write`` and
``--annotate`` write lines so; ``--check`` reads the names back through the same bindings
(:mod:`shapetrace.comments.bindings`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import lru_cache

import sympy

from shapetrace.capture.records import TensorMeta
from shapetrace.comments.bindings import Lookup, Value
from shapetrace.comments.files import TracedFile
from shapetrace.comments.grammar import NotAShape, guessed_dims, parse_shape
from shapetrace.comments.runs import Run, join_alternatives, render_items
from shapetrace.symbolic.printer import expr_text, shape_text

MAX_NOTE_SHAPES = 80  # characters of the runs' shapes quoted in a note


@dataclass(frozen=True)
class LineText:
    """What a line's comment says: ``text`` (``None``: no comment) and, when a line that ran
    with several shapes gets none, ``note`` says why."""

    text: str | None
    note: str = ""


@dataclass(frozen=True)
class _Dim:
    text: str  # in the function's names where they apply
    number: int


def traced_line_text(traced: TracedFile, line: int) -> LineText:
    """The comment of ``line`` of a traced file (see :func:`line_text`)."""
    resolver = traced.resolver
    return line_text(
        traced.runs.get(line, ()),
        lambda run: resolver.lookup(line, run),
        resolver.size_names(line),
        traced.source.code(line),
    )


def line_text(runs: Sequence[Run], lookup_at: Callable[[Run], Lookup], size_names: dict[str, int],
              code: str) -> LineText:  # fmt: skip
    """The comment of a line from its runs: one text when the function's own names make every
    run the same (``(B, 2*C, H/2, W/2)``); else the runs' alternatives when they are no longer
    than the line's code; else no comment, and a note. ``lookup_at(run)`` gives the line's
    :class:`~shapetrace.comments.bindings.Lookup` at a run, ``size_names`` the names the
    function binds to its arguments' sizes (``B, C, H, W``), each with the axis it reads."""
    ran = [run for run in runs if run.outputs and not run.failed]
    if not ran:
        return LineText(None)
    values: list[dict[str, Value]] = []
    shapes: list[list[list[_Dim]]] = []
    for run in ran:
        lookup = lookup_at(run)
        found = {name: value for name in size_names if (value := lookup(name)) is not None}
        values.append(found)
        shapes.append([_local_dims(meta, found, lookup) for meta in run.outputs])
    texts = [render_items([shape_text([d.text for d in shape]) for shape in run]) for run in shapes]
    if len(set(texts)) == 1:
        return LineText(texts[0])
    unified = _unified(shapes, values, size_names)
    if unified is not None:
        return LineText(unified)
    alternatives = join_alternatives(texts)
    if len(alternatives) <= len(code.strip()) and not alternatives.endswith("..."):
        return LineText(alternatives)
    shown = alternatives if len(alternatives) <= MAX_NOTE_SHAPES else alternatives[: MAX_NOTE_SHAPES - 3] + "..."
    return LineText(None, f"ran {len(set(texts))} different shapes ({shown}), which no one expression in the "
                          "function's names covers, and the list would be longer than the code")  # fmt: skip


def _written_dims(meta: TensorMeta) -> list[str]:
    """A tensor's dims as the trace writes them (``D?`` kept)."""
    text = meta.shape_text()
    body, parts, depth, start = text.strip()[1:-1], [], 0, 0
    for i, char in enumerate(body):
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(body[start:i].strip())
            start = i + 1
    if body[start:].strip():
        parts.append(body[start:].strip())
    return parts if len(parts) == len(meta.shape) else [str(size) for size in meta.shape]


def _local_dims(meta: TensorMeta, values: dict[str, Value], lookup: Lookup) -> list[_Dim]:
    """One tensor's dims in the function's names: a dim over the trace's ``H``, where the
    function's ``H`` is the trace's ``H/2``, is written over the function's ``H``."""
    plain = [_Dim(_checkable(text, int(size), lookup), int(size)) for text, size in zip(_written_dims(meta), meta.shape)]
    if meta.expr is None or not values:
        return plain
    try:
        exprs, guessed = parse_shape(meta.expr), guessed_dims(meta.expr)
    except NotAShape:
        return plain
    multiples = lookup.resolver.multiples({s for e in exprs for s in e.free_symbols})
    solved, own = _solved(values, multiples)
    whole = _whole_dims(values)
    if not solved and not whole:
        return plain
    dims = []
    for dim, expr, guess in zip(plain, exprs, guessed):
        if guess or not expr.free_symbols:
            dims.append(dim)
            continue
        local = expr.xreplace(whole)  # the function's N where it is the trace's H*W/16
        if local.free_symbols & solved.keys():
            local = local.xreplace(multiples).xreplace(solved)
            back = {s: s / multiples[s].coeff(s) for s in local.free_symbols if s in multiples}  # the trace's other dims
            local = local.xreplace(back).xreplace(own)
        dims.append(dim if local == expr else _Dim(expr_text(local), dim.number))
    return dims


def _checkable(text: str, number: int, lookup: Lookup) -> str:
    """A guess (``D?``) where the line's scope gives that name this number, else the number: a
    written guess must read back as what ran."""
    if not text.endswith("?") or not text[:-1].isidentifier():
        return text
    found = lookup(text[:-1])
    return text if found is not None and found.number == number else str(number)


def _whole_dims(values: dict[str, Value]) -> dict[sympy.Expr, sympy.Symbol]:
    """``trace expression -> function name`` for the function's sizes that are an expression of
    several of the trace's dims (``N = x.shape[1]`` where it ran ``H*W/16``)."""
    return {
        value.expr: sympy.Symbol(name, integer=True, positive=True)
        for name, value in values.items()
        if value.expr is not None and len(value.expr.free_symbols) > 1
    }


def _solved(values: dict[str, Value], multiples: dict[sympy.Symbol, sympy.Expr]) -> tuple[dict, dict]:
    """``trace symbol -> expression of a function name`` (as placeholders) and ``placeholder ->
    name``: where the function's ``H`` is the trace's ``H/2``, with H taken as a multiple of 8
    (``H -> 8*H``), the function's H is 4 units, so the trace's H is ``H/4`` units of it.
    The same for every line of a function's run: solved once (the result is only read)."""
    return _solved_once(tuple(values.items()), tuple(multiples.items()))


@lru_cache(maxsize=1024)
def _solved_once(values: tuple[tuple[str, Value], ...], multiples: tuple[tuple[sympy.Symbol, sympy.Expr], ...]
                 ) -> tuple[dict, dict]:  # fmt: skip
    solved: dict[sympy.Symbol, sympy.Expr] = {}
    own: dict[sympy.Dummy, sympy.Symbol] = {}
    for name, value in values:
        expr = value.expr
        if expr is None or len(expr.free_symbols) != 1 or expr == sympy.Symbol(name, integer=True, positive=True):
            continue  # a number, an expression of several dims, or the trace's own dim
        (trace_symbol,) = expr.free_symbols
        scaled = expr.xreplace(dict(multiples))
        slope = sympy.diff(scaled, trace_symbol)
        if trace_symbol in solved or scaled.has(sympy.floor, sympy.ceiling, sympy.Mod) or not slope.is_Rational \
                or slope == 0:  # fmt: skip
            continue
        placeholder = sympy.Dummy(name, integer=True, positive=True)
        own[placeholder] = sympy.Symbol(name, integer=True, positive=True)
        solved[trace_symbol] = (placeholder - scaled.xreplace({trace_symbol: 0})) / slope
    return solved, own


def _unified(shapes: list[list[list[_Dim]]], values: list[dict[str, Value]], size_names: dict[str, int]) -> str | None:
    """One text for runs that differ only in spelling (``B`` where a run has ``B?``), or where a
    dim is the same multiple of one of the function's size names in every run (``2*C``: 128
    where C is 64, 256 where C is 128)."""
    if len({tuple(len(tensor) for tensor in run) for run in shapes}) != 1:
        return None
    tensors = []
    for i, first in enumerate(shapes[0]):
        dims = []
        for j in range(len(first)):
            column = [run[i][j] for run in shapes]
            axis = (j, j - len(first))  # from the front, from the end
            found = column[0].text if len({d.text for d in column}) == 1 else _column(column, values, size_names, axis)
            if found is None:
                return None
            dims.append(found)
        tensors.append(shape_text(dims))
    return render_items(tensors)


def _column(column: list[_Dim], values: list[dict[str, Value]], size_names: dict[str, int],
            axis: tuple[int, int]) -> str | None:  # fmt: skip
    """The dim of a column whose runs differ. The same number at every run, spelt differently:
    the one text that is neither a number nor a guess (``B``, where another run has ``B?``), else
    the number. Different numbers: ``k*name`` when the dim is ``k`` times one of the function's
    size names at every run, that name taking more than one size (one named in the runs' own
    texts first, then one read from the same ``axis``, from the front or the end); ``None``
    when no name or more than one fits."""
    if len({dim.number for dim in column}) == 1:
        named = {dim.text for dim in column if not dim.text.endswith("?") and not dim.text.isdigit()}
        return named.pop() if len(named) == 1 else str(column[0].number) if not named else None
    fitting = []
    for name in size_names:
        sizes = [found.get(name) for found in values]
        if any(size is None or size.number <= 0 for size in sizes) or len({s.number for s in sizes}) == 1:
            continue
        ratios = {Fraction(dim.number, size.number) for dim, size in zip(column, sizes)}
        if len(ratios) == 1:
            fitting.append((name, ratios.pop()))
    written = {name for dim in column for name in _names_in(dim.text)}
    preferred = [found for found in fitting if found[0] in written] or fitting
    if len(preferred) > 1:  # H and W of a square image: the one read from this axis
        preferred = [found for found in preferred if size_names[found[0]] in axis]
    if len(preferred) != 1:
        return None
    name, ratio = preferred[0]
    return expr_text(sympy.Rational(ratio.numerator, ratio.denominator) * sympy.Symbol(name))


def _names_in(text: str) -> set[str]:
    try:
        return {s.name for e in parse_shape(f"({text},)") for s in e.free_symbols}
    except NotAShape:
        return set()
