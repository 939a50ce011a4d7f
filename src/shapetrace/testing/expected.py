"""An expected shape, as a test writes it, matched against a recorded tensor.

Two spellings, one meaning::

    "(B, (H//32)*(W//32) + 1, D)"     a tuple, as the seeds' comments write shapes
    "B N D"                           a dims spec, as jaxtyping writes them

Each dim is a name, an integer or an expression (``H*W``, ``C//2``, ``P + 1``; in a dims spec
without spaces). ``_`` is any one dim, ``...`` any number of dims, ``*name`` any number of dims,
the same every time ``name`` is used. A name the trace knows (a named dim such as ``B``, or a
named constant) means that dim; any other name binds, the first time it is met, to what it is
matched with (``N`` in ``"B N D"``), and must be the same wherever it comes again in the same
assertion.

Where the trace has a symbolic shape, a dim must be the same expression, not only the same
number at this run's sizes: ``H*W`` does not match ``H*H`` even when ``H == W``. Where it has
only a number (no symbolic pass, or a dim torch specialised), the expectation is evaluated at
this run's sizes.
"""

from __future__ import annotations

import ast
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import sympy

from shapetrace._private.torch_symbolic import FloorDiv
from shapetrace.capture.records import TensorMeta
from shapetrace.comments.grammar import NotAShape, parse_shape
from shapetrace.symbolic.printer import expr_text

ANY_DIM = "_"


class ShapeMismatch(AssertionError):
    """A shape assertion failed; the message has expected and actual shapes and the source line."""


ShapeMismatch.__module__ = "shapetrace.testing"


class InvalidExpectation(ValueError):
    """The expected shape cannot be read; the message says which part and why."""


@dataclass(frozen=True)
class Variadic:
    """``...`` (``name`` is ``None``) or ``*name``: any number of dims."""

    name: str | None


Item = Any  # sympy.Expr | Variadic | ANY_DIM


@dataclass(frozen=True)
class ExpectedShape:
    """A parsed expectation: ``text`` as the test wrote it, ``items`` one per dim."""

    text: str
    items: tuple[Item, ...]
    tokens: tuple[str, ...]  # each item as written

    @property
    def fixed(self) -> int:
        return sum(not isinstance(item, Variadic) for item in self.items)


def parse_expected(expected: str | Sequence[int | str]) -> ExpectedShape:
    """An :class:`ExpectedShape` from ``"(B, H*W, C)"``, ``"B N D"``, ``(2, 17, 512)`` or
    ``("B", "H*W", 512)``; :class:`InvalidExpectation` when it cannot be read."""
    if isinstance(expected, str):
        text = expected.strip()
        tokens = _tuple_tokens(text) if text.startswith("(") else text.split()
    else:
        try:
            tokens = [str(int(size)) if not isinstance(size, str) else size.strip() for size in expected]
        except (TypeError, ValueError):
            raise InvalidExpectation(
                f"expected shape {expected!r}: not a str or a sequence of dims"
            ) from None
        text = "(" + ", ".join(tokens) + (",)" if len(tokens) == 1 else ")")
    items = tuple(_item(token, text) for token in tokens)
    if sum(isinstance(item, Variadic) for item in items) > 1:
        raise InvalidExpectation(f"expected shape {text!r}: at most one of '...' and '*name'")
    return ExpectedShape(text, items, tuple(tokens))


def _tuple_tokens(text: str) -> list[str]:
    try:
        node = ast.parse(text, mode="eval").body
    except SyntaxError:
        raise InvalidExpectation(f"expected shape {text!r}: not a tuple such as (B, H*W, C)") from None
    if not isinstance(node, ast.Tuple):
        raise InvalidExpectation(f"expected shape {text!r}: a one-dim tuple needs its comma: (B,)")
    return [ast.get_source_segment(text, element) or ast.unparse(element) for element in node.elts]


_NAME = re.compile(r"[A-Za-z_]\w*\Z")


def _item(token: str, text: str) -> Item:
    if token == "...":
        return Variadic(None)
    if token == ANY_DIM:
        return ANY_DIM
    if token.startswith("*"):
        if not _NAME.match(token[1:]):
            raise InvalidExpectation(f"expected shape {text!r}: {token!r} is not *name")
        return Variadic(token[1:])
    try:
        return parse_shape(f"({token},)")[0]
    except NotAShape:
        raise InvalidExpectation(f"expected shape {text!r}: cannot read the dim {token!r}") from None


# --- the actual side ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ActualShape:
    """A recorded tensor's dims: ``exprs`` (symbolic where the trace knows, else integers),
    ``sizes`` (this run's numbers) and ``texts`` (each dim as the trace prints it)."""

    exprs: tuple[sympy.Expr, ...]
    sizes: tuple[int, ...]
    texts: tuple[str, ...]

    @classmethod
    def of(cls, meta: TensorMeta) -> ActualShape:
        sizes = tuple(int(size) for size in meta.shape)
        exact = meta.expr_exact or meta.expr  # `(H//32)*(W//32)`, not `H*W/1024` (printed where 32 divides H, W)
        if exact is not None:
            texts = split_dims(exact)
            try:
                exprs = parse_shape(exact)
            except NotAShape:
                exprs = None
            if exprs is not None and len(exprs) == len(sizes) and len(texts) == len(sizes):
                return cls(exprs, sizes, tuple(texts))
        return cls(tuple(sympy.Integer(size) for size in sizes), sizes, tuple(str(size) for size in sizes))

    @property
    def text(self) -> str:
        return "(" + ", ".join(self.texts) + (",)" if len(self.texts) == 1 else ")")

    @property
    def sizes_text(self) -> str:
        return "(" + ", ".join(map(str, self.sizes)) + (",)" if len(self.sizes) == 1 else ")")

    @property
    def is_symbolic(self) -> bool:
        return any(expr.free_symbols for expr in self.exprs)


def split_dims(text: str) -> list[str]:
    """``"(B, f(H, W), D)"`` -> ``["B", "f(H, W)", "D"]``: the top-level items of a tuple text."""
    inner = text.strip()
    if inner.startswith("(") and inner.endswith(")"):
        inner = inner[1:-1]
    parts, depth, start = [], 0, 0
    for i, char in enumerate(inner):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append(inner[start:i].strip())
            start = i + 1
    last = inner[start:].strip()
    if last:
        parts.append(last)
    return parts


# --- matching ----------------------------------------------------------------------------------


@dataclass
class Scope:
    """The names one assertion has bound so far: ``name -> (value, dim text, where)``."""

    values: Mapping[str, int]  # the trace's named dims and constants at this run
    bound: dict[str, tuple[Any, str, str]] = field(default_factory=dict)


def match(expected: ExpectedShape, actual: ActualShape, scope: Scope, label: str = "") -> list[str]:
    """Why ``actual`` does not match ``expected`` (one line per bad dim; empty when it does).
    Names bound while matching are added to ``scope``. ``label`` prefixes the dim names
    (``[1] dim 0``) when one assertion checks several tensors."""
    items = expected.items
    rank = len(actual.exprs)
    variadic = next((i for i, item in enumerate(items) if isinstance(item, Variadic)), None)
    if (variadic is None and rank != len(items)) or (variadic is not None and rank < len(items) - 1):
        wanted = f"{len(items)}" if variadic is None else f"at least {len(items) - 1}"
        return [f"{label}rank: expected {wanted} dims, got {rank}"]
    written = list(zip(items, expected.tokens))
    if variadic is None:
        pairs = list(enumerate(written))
    else:
        head, tail = written[:variadic], written[variadic + 1 :]
        pairs = list(enumerate(head)) + [(rank - len(tail) + i, pair) for i, pair in enumerate(tail)]
        problem = _match_variadic(items[variadic], actual, variadic, rank - len(tail), scope, label)
        if problem:
            return [problem]
    known = set(scope.values)
    for expr in actual.exprs:
        known.update(symbol.name for symbol in expr.free_symbols)
    problems: list[str] = []
    pending = [(index, pair) for index, pair in pairs if pair[0] != ANY_DIM]
    while pending:
        deferred = []
        for index, (item, token) in pending:
            outcome = _match_dim(item, token, index, actual, scope, known, label)
            if outcome is _DEFER:
                deferred.append((index, (item, token)))
            elif outcome:
                problems.append(outcome)
        if len(deferred) == len(pending):
            for index, (item, _) in deferred:
                names = ", ".join(sorted(s.name for s in _unbound(_bind(item, scope), known)))
                problems.append(f"{label}dim {index}: cannot tell {names} from {actual.texts[index]}")
            break
        pending = deferred
    return sorted(problems, key=_dim_order)


_DEFER = object()


def _dim_order(problem: str) -> tuple[int, str]:
    found = re.search(r"dim (\d+)", problem)
    return (int(found.group(1)) if found else -1, problem)


def _match_variadic(
    item: Variadic, actual: ActualShape, start: int, end: int, scope: Scope, label: str
) -> str:
    if item.name is None:
        return ""
    key = "*" + item.name
    exprs, texts = actual.exprs[start:end], actual.texts[start:end]
    text = "(" + ", ".join(texts) + (",)" if len(texts) == 1 else ")")
    if key not in scope.bound:
        scope.bound[key] = (exprs, text, f"{label}dims {start}..{end - 1}")
        return ""
    previous, previous_text, where = scope.bound[key]
    if len(previous) != len(exprs) or any(not _same(a, b, scope.values) for a, b in zip(previous, exprs)):
        return f"{label}dims {start}..{end - 1}: *{item.name} is {text}, but was {previous_text} at {where}"
    return ""


def _bind(expr: sympy.Expr, scope: Scope) -> sympy.Expr:
    replacements = {
        symbol: scope.bound[symbol.name][0]
        for symbol in expr.free_symbols
        if symbol.name in scope.bound and not symbol.name.startswith("*")
    }
    return expr.xreplace(replacements) if replacements else expr


def _unbound(expr: sympy.Expr, known: set[str]) -> list[sympy.Symbol]:
    return [symbol for symbol in expr.free_symbols if symbol.name not in known]


def _match_dim(
    item: sympy.Expr, token: str, index: int, actual: ActualShape, scope: Scope, known: set[str], label: str
):
    got, got_text, size = actual.exprs[index], actual.texts[index], actual.sizes[index]
    expr = _bind(item, scope)
    free = _unbound(expr, known)
    where = f"{label}dim {index}"
    if free:
        if len(free) > 1:
            return _DEFER
        name = free[0]
        if expr == name:
            scope.bound[name.name] = (got, got_text, where)
            return ""
        unknown = sympy.Dummy(name.name)  # no integer assumption: a fractional answer is reported
        try:
            solutions = sympy.solve(sympy.Eq(expr.xreplace({name: unknown}), got), unknown)
        except (NotImplementedError, TypeError, ValueError):
            return _DEFER
        if len(solutions) != 1:
            return _DEFER
        solution = sympy.simplify(solutions[0])
        sizes = {
            s: sympy.Integer(scope.values[s.name]) for s in solution.free_symbols if s.name in scope.values
        }
        at_run = solution.xreplace(sizes)
        if not at_run.free_symbols and not (at_run.is_Integer and at_run >= 0):
            return (
                f"{where}: is {got_text}{_at_run(got, size)}; no whole {name.name} makes {token} equal to it"
            )
        scope.bound[name.name] = (solution, _text(solution), where)
        return ""
    if _same(expr, got, scope.values):
        return ""
    return (
        f"{where}: expected {_described(item, token, expr, scope)}, got {got_text}{_at_run(got, size)}"
        + _why(expr, got, scope.values)
    )


def _same(expected: sympy.Expr, got: sympy.Expr, values: Mapping[str, int]) -> bool:
    """Whether a dim is what was expected: the same expression where the trace has one (names
    the actual dim does not use are taken at this run's sizes: a dim torch specialised), the
    same number where it has only a number."""
    got_names = {symbol.name for symbol in got.free_symbols}
    fixed = {s: values[s.name] for s in expected.free_symbols if s.name not in got_names and s.name in values}
    if fixed:
        expected = expected.xreplace({s: sympy.Integer(v) for s, v in fixed.items()})
    if not expected.free_symbols or not got.free_symbols:
        left, right = _evaluate(expected, values), _evaluate(got, values)
        return left is not None and left == right
    if sympy.simplify(expected - got) == 0:
        return True
    return _equal_everywhere(expected, got)


def _equal_everywhere(left: sympy.Expr, right: sympy.Expr, samples: int = 24) -> bool:
    """Equal at many positive integer points: the equalities of floor divisions that
    ``simplify`` cannot prove (``(H//32)//2`` and ``H//64``)."""
    symbols = sorted(left.free_symbols | right.free_symbols, key=lambda s: s.name)
    rng = random.Random(0)
    for _ in range(samples):
        point = {symbol: sympy.Integer(rng.randint(1, 4096)) for symbol in symbols}
        if left.xreplace(point) != right.xreplace(point):
            return False
    return True


def _evaluate(expr: sympy.Expr, values: Mapping[str, int]) -> int | None:
    """``expr`` at this run's sizes; ``None`` when a name in it has no size."""
    if expr.free_symbols:
        missing = [s for s in expr.free_symbols if s.name not in values]
        if missing:
            return None
        expr = expr.xreplace({s: sympy.Integer(values[s.name]) for s in expr.free_symbols})
    return int(expr) if expr.is_Integer else None


def _described(item: sympy.Expr, text: str, bound: sympy.Expr, scope: Scope) -> str:
    """``D`` or ``D (D = 64 from dim 0)``; ``H*W`` with its value at this run."""
    notes = []
    for symbol in sorted(item.free_symbols, key=lambda s: s.name):
        if symbol.name in scope.bound:
            _, value_text, where = scope.bound[symbol.name]
            notes.append(f"{symbol.name} = {value_text} from {where}")
    value = _evaluate(bound, scope.values)
    if value is not None and text != str(value) and text not in scope.bound:
        notes.append(f"= {value}")
    return f"{text} ({'; '.join(notes)})" if notes else text


def _at_run(got: sympy.Expr, size: int) -> str:
    return f" (= {size})" if got.free_symbols else ""


def _why(expected: sympy.Expr, got: sympy.Expr, values: Mapping[str, int]) -> str:
    left, right = _evaluate(expected, values), _evaluate(got, values)
    if left is not None and left == right and got.free_symbols:
        return "; equal at this run's sizes, but not the same expression"
    return ""


def _text(expr: sympy.Expr) -> str:
    """A dim as shape comments write it (``(H//32)*(W//32)``), with the symbolic pass's printer."""
    floor_divisions = expr.replace(
        lambda e: isinstance(e, sympy.floor),
        lambda e: FloorDiv(*sympy.fraction(sympy.together(e.args[0]))),
    )
    return expr_text(floor_divisions)
