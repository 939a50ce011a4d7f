"""Shape comments as the seeds write them: ``# (B, C, H*W)``, read into sympy and written back.

A comment is *owned* (read by ``--check``, rewritten by ``--write``) when its text is ``#``, then
a rendering, then nothing or prose that starts with ``,`` ``;`` or a spaced dash or ``#``::

    rendering := group (" | " group)* [" | ..."]        one group per distinct run of the line
    group     := item (", " item)* [", ..."]            the tensors one run produced
    item      := tuple [" x" count]                     ``x3``: that many equal tensors in a row
    tuple     := "(" ")" | "(" dim "," ")" | "(" dim ("," dim)+ [","] ")"
    dim       := names, integers, + - * // / % **, parentheses, min(...), max(...);
                 ``D?`` is the name ``D`` marked as a guess (named by value only)

A comment asks for a bounded amount of work: the exponent of ``**`` is a whole number written
out, a dim's value must fit in ``MAX_DIM_BITS`` bits when every name is a 64-bit size, and a
count ``xN`` is at most ``MAX_COUNT``. ``# (2, 9**9**9)`` is therefore prose, never evaluated.

``/`` is read as floor division (sizes are integers; the seeds write ``H/ps`` for a division they
know is exact). docs/comments.md has the full rules.
"""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from functools import lru_cache

import sympy

ELLIPSIS = "..."
_GUESS = "__guessed"
_GUESSED_NAME = re.compile(r"([A-Za-z_]\w*)\?")
_ITEM_COUNT = re.compile(r" x(\d+)")
_PROSE_START = re.compile(r"[,;]|\s+(-|--|\u2014|#)(\s|$)")

MAX_DIM_BITS = 4096  # bound on a dim's bit length, every name taken as a 64-bit size
MAX_COUNT = 100_000  # bound on ``xN``: that many equal tensors in a row
_NAME_BITS = 64


class NotAShape(ValueError):
    """The text is not a shape tuple of the grammar."""


@dataclass(frozen=True)
class ShapeComment:
    """A parsed owned comment: ``alternatives`` (one per distinct run) of tuples of dims.

    ``shape_text`` is the rendering as written, ``rest`` the prose after it (kept by ``--write``),
    ``texts`` the text of each alternative. ``more_runs``/``more_tensors`` mark a rendering cut
    with ``...``.
    """

    shape_text: str
    rest: str
    alternatives: tuple[tuple[tuple[sympy.Expr, ...], ...], ...]
    more_runs: bool = False
    more_tensors: tuple[bool, ...] = ()
    texts: tuple[str, ...] = ()


def parse_comment(comment: str) -> ShapeComment | None:
    """The owned shape comment in ``comment`` (a ``#...`` token), ``None`` when it is not one."""
    if not comment.startswith("#"):
        return None
    body = comment[1:].lstrip()
    if not body.startswith("("):
        return None
    try:
        alternatives, flags, texts, more_runs, end = _scan_rendering(body)
    except NotAShape:
        return None
    rest = body[end:]
    if rest.strip() and not _PROSE_START.match(rest):
        return None
    return ShapeComment(body[:end], rest, alternatives, more_runs, flags, texts)


def _scan_rendering(text: str) -> tuple[tuple, tuple[bool, ...], tuple[str, ...], bool, int]:
    alternatives, flags, texts = [], [], []
    pos = 0
    while True:
        start = pos
        group, more, pos = _scan_group(text, pos)
        alternatives.append(group)
        flags.append(more)
        texts.append(text[start:pos])
        if not text.startswith(" | ", pos):
            return tuple(alternatives), tuple(flags), tuple(texts), False, pos
        if text.startswith(ELLIPSIS, pos + 3):
            return tuple(alternatives), tuple(flags), tuple(texts), True, pos + 3 + len(ELLIPSIS)
        pos += 3


def _scan_group(text: str, pos: int) -> tuple[tuple, bool, int]:
    items: list[tuple[sympy.Expr, ...]] = []
    while True:
        end = _matching_paren(text, pos)
        dims = parse_shape(text[pos : end + 1])
        pos = end + 1
        count = _ITEM_COUNT.match(text, pos)
        if count:
            if int(count.group(1)) > MAX_COUNT:
                raise NotAShape(f"x{count.group(1)}: more than {MAX_COUNT} tensors")
            items.extend([dims] * int(count.group(1)))
            pos = count.end()
        else:
            items.append(dims)
        if text.startswith(", (", pos):
            pos += 2
        elif text.startswith(", " + ELLIPSIS, pos):
            return tuple(items), True, pos + 2 + len(ELLIPSIS)
        else:
            return tuple(items), False, pos


def _matching_paren(text: str, start: int) -> int:
    if start >= len(text) or text[start] != "(":
        raise NotAShape(text[start:])
    depth = 0
    for i in range(start, len(text)):
        if text[i] == "(":
            depth += 1
        elif text[i] == ")":
            depth -= 1
            if depth == 0:
                return i
    raise NotAShape(text[start:])


@lru_cache(maxsize=4096)
def parse_shape(text: str) -> tuple[sympy.Expr, ...]:
    """``"(B, H*W, C)"`` -> ``(B, H*W, C)`` as sympy expressions; :class:`NotAShape` otherwise.

    A single dim needs its trailing comma (``(B,)``): ``(optional)`` is prose, not a shape.
    """
    try:
        return tuple(_to_sympy(node) for node in _tuple_nodes(text))
    except RecursionError:
        raise NotAShape(text) from None


def guessed_dims(text: str) -> tuple[bool, ...]:
    """Which dims of a shape text hold a name marked as a guess (``D?``: named by value only)."""
    return tuple(
        any(isinstance(n, ast.Name) and n.id.endswith(_GUESS) for n in ast.walk(node))
        for node in _tuple_nodes(text)
    )


@lru_cache(maxsize=4096)
def _tuple_nodes(text: str) -> tuple[ast.expr, ...]:
    try:
        tree = ast.parse(_GUESSED_NAME.sub(r"\1" + _GUESS, text.strip()), mode="eval").body
        if not isinstance(tree, ast.Tuple):
            raise NotAShape(text)
        for dim in tree.elts:
            if _bits(dim) > MAX_DIM_BITS:
                raise NotAShape(f"{ast.unparse(dim)}: larger than any size")
    except NotAShape:
        raise
    except (SyntaxError, ValueError, RecursionError, MemoryError):  # e.g. 5000 digits, 10k nested terms
        raise NotAShape(text) from None
    return tuple(tree.elts)


def _bits(node: ast.expr) -> int:
    """An upper bound on the bit length of a dim's value when every name is a 64-bit size, so
    that a comment asking for an astronomic number is refused before sympy evaluates it. The
    exponent of ``**`` must be a whole number written out."""
    if isinstance(node, ast.Name):
        return _NAME_BITS
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return node.value.bit_length()
    if isinstance(node, ast.UnaryOp):
        return _bits(node.operand)
    if isinstance(node, ast.Call):
        return max((_bits(arg) for arg in node.args), default=0)
    if not isinstance(node, ast.BinOp):
        return 0  # not part of the grammar: _to_sympy refuses it
    left = _bits(node.left)
    if isinstance(node.op, ast.Pow):
        exponent = node.right
        if not (isinstance(exponent, ast.Constant) and type(exponent.value) is int):
            raise NotAShape(f"{ast.unparse(node)}: the exponent is not a whole number")
        return max(left, 1) * exponent.value
    right = _bits(node.right)
    if isinstance(node.op, ast.Mult):
        return left + right
    if isinstance(node.op, (ast.Add, ast.Sub)):
        return max(left, right) + 1
    return max(left, right)  # // / %: no larger than their operands


def symbol(name: str) -> sympy.Symbol:
    """The sympy symbol a dim name stands for (a positive integer)."""
    return sympy.Symbol(name, integer=True, positive=True)


_BINARY = {
    ast.Add: lambda a, b: a + b,
    ast.Sub: lambda a, b: a - b,
    ast.Mult: lambda a, b: a * b,
    ast.FloorDiv: lambda a, b: sympy.floor(a / b),
    ast.Div: lambda a, b: sympy.floor(a / b),
    ast.Mod: lambda a, b: sympy.Mod(a, b),
    ast.Pow: lambda a, b: a**b,
}
_CALLS = {"min": sympy.Min, "Min": sympy.Min, "max": sympy.Max, "Max": sympy.Max}


def _to_sympy(node: ast.expr) -> sympy.Expr:
    if isinstance(node, ast.Name):
        return symbol(node.id.removesuffix(_GUESS))
    if isinstance(node, ast.Constant) and type(node.value) is int:
        return sympy.Integer(node.value)
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left, right = _to_sympy(node.left), _to_sympy(node.right)
        if right == 0 and isinstance(node.op, (ast.FloorDiv, ast.Div, ast.Mod)):
            raise NotAShape("division by zero")
        return _BINARY[type(node.op)](left, right)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        operand = _to_sympy(node.operand)
        return -operand if isinstance(node.op, ast.USub) else operand
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in _CALLS
        and len(node.args) >= 2
        and not node.keywords
    ):
        return _CALLS[node.func.id](*(_to_sympy(arg) for arg in node.args))
    raise NotAShape(ast.dump(node))
