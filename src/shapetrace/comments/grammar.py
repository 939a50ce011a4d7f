"""Shape comments as the seeds write them: ``# (B, C, H*W)``, read into sympy and written back.

A comment is *owned* (read by ``--check``, rewritten by ``--write``) when its text is ``#``, then
a rendering, then nothing or prose that starts with ``,`` ``;`` or a spaced dash or ``#``::

    rendering := group (" | " group)* [" | ..."]        one group per distinct run of the line
    group     := item (", " item)* [", ..."]            the tensors one run produced
    item      := tuple [" x" count]                     ``x3``: that many equal tensors in a row
    tuple     := "(" ")" | "(" dim "," ")" | "(" dim ("," dim)+ [","] ")"
    dim       := names, integers, + - * // / % **, parentheses, min(...), max(...);
                 ``D?`` is the name ``D`` marked as a guess (named by value only)

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
    return tuple(_to_sympy(node) for node in _tuple_nodes(text))


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
    except SyntaxError:
        raise NotAShape(text) from None
    if not isinstance(tree, ast.Tuple):
        raise NotAShape(text)
    return tuple(tree.elts)


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
