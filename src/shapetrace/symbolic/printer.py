"""Size expressions as the seeds write them: ``H*W``, ``(H//32)*(W//32) + 1``, ``(H - 4)//2``,
and, when the sizes are divisible, ``H/2`` for ``(H - 1)//2 + 1`` and ``H*W/1024`` for
``(H//32)*(W//32)``.

sympy's own printer adds torch's defensive brackets (``((H//32))*((W//32))``); this one writes
Python-valid text with only the brackets the operators need (a ``/`` is an exact division: the
shape-comment grammar reads it as ``//``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache

import sympy

# Binding strength: a sub-expression weaker than its context gets brackets.
_ADD, _MUL, _POW, _ATOM = 1, 2, 3, 4

Namer = Callable[[sympy.Symbol], str]


@lru_cache(maxsize=1)
def _torch_functions():
    """torch's sympy functions on sizes (``FloorDiv``, ``CeilDiv``, ...), imported on first use:
    the shape-comment code prints plain sympy without paying for torch's symbolic machinery."""
    from shapetrace._private.torch_symbolic import sympy_functions

    return sympy_functions


def expr_text(expr: sympy.Expr | int, name: Namer | None = None) -> str:
    """``expr`` as text; ``name(symbol)`` gives each symbol's text (its own name by default)."""
    if isinstance(expr, int):
        return str(expr)
    return _text(sympy.sympify(expr), name or (lambda s: s.name))[0]


@lru_cache(maxsize=4096)
def renamed_text(expr: sympy.Expr, aliases: tuple[tuple[str, str], ...] = ()) -> str:
    """:func:`expr_text` of a size expression, each symbol written as ``aliases`` names it (symbol
    name -> text; its own name otherwise). Remembered: a pure function of both, and a pass prints
    the sizes the last pass over the same code printed (sympy's term ordering is most of a text's
    cost, ~60 µs for ``(H - 1)//2 + 1``)."""
    names = dict(aliases)
    return expr_text(expr, (lambda s: names.get(s.name, s.name)) if names else None)


def shape_text(dims: Sequence[str]) -> str:
    """``["B", "C"]`` -> ``(B, C)``; one dim keeps its comma: ``(T,)``."""
    return "(" + ", ".join(dims) + (",)" if len(dims) == 1 else ")")


# --- sizes assumed divisible ---------------------------------------------------------------------


def floor_form(expr: sympy.Expr) -> sympy.Expr:
    """``expr`` in plain sympy: torch's ``FloorDiv(a, b)`` is ``floor(a/b)``, ``CeilDiv`` is
    ``ceiling``, its ``Mod``/``PythonMod`` ``Mod``, its ``Max``/``Min`` sympy's."""
    if not isinstance(expr, sympy.Basic) or not expr.args:
        return expr
    fn = _torch_functions()
    args = [floor_form(a) for a in expr.args]
    if isinstance(expr, (fn.FloorDiv, fn.CleanDiv)):
        return sympy.floor(args[0] / args[1])
    if isinstance(expr, fn.CeilDiv):
        return sympy.ceiling(args[0] / args[1])
    if isinstance(expr, (fn.Mod, fn.PythonMod)):
        return sympy.Mod(*args)
    if isinstance(expr, fn.Max):
        return sympy.Max(*args)
    if isinstance(expr, fn.Min):
        return sympy.Min(*args)
    if isinstance(expr, fn.PowByNatural):
        return args[0] ** args[1]
    if isinstance(expr, (fn.TruncToInt, fn.FloorToInt, fn.Identity)) and len(args) == 1:
        return args[0]
    return expr.func(*args) if any(a is not b for a, b in zip(args, expr.args)) else expr


def _floors() -> tuple[type, ...]:
    """The operations that round (a size is no multiple there): torch's and sympy's."""
    fn = _torch_functions()
    return (fn.FloorDiv, fn.CleanDiv, fn.CeilDiv, fn.Mod, fn.PythonMod, sympy.floor, sympy.ceiling, sympy.Mod)


def _denominator(node: sympy.Basic) -> int:
    """What ``node`` divides by when it rounds (``H//4``, ``H % 4``, ``floor(H/4)``), else 1."""
    fn = _torch_functions()
    if isinstance(node, (fn.FloorDiv, fn.CleanDiv, fn.CeilDiv, fn.Mod, fn.PythonMod, sympy.Mod)):
        denominator = node.args[1]
    elif isinstance(node, (sympy.floor, sympy.ceiling)):
        denominator = sympy.fraction(sympy.together(node.args[0]))[1]
    else:
        return 1
    return int(denominator) if denominator.is_Integer and int(denominator) > 1 else 1


def required_divisors(expr: sympy.Expr) -> dict[sympy.Symbol, int]:
    """Per symbol of ``expr`` (torch's size expression, or its :func:`floor_form`), the multiple
    it must be of for every floor in ``expr`` to divide exactly: the product of the denominators
    of the floors around it (``((H - 4)//2 - 4)//2`` needs H divisible by 4)."""
    needed: dict[sympy.Symbol, int] = {}

    def visit(node: sympy.Basic, outer: int) -> None:
        denominator = _denominator(node)
        if denominator > 1:
            outer *= denominator
            for sym in node.free_symbols:
                needed[sym] = math.lcm(needed.get(sym, 1), outer)
        for arg in node.args:
            visit(arg, outer)

    visit(expr, 1)
    return needed


def divided(expr: sympy.Expr, divisors: Mapping[sympy.Symbol, int]) -> sympy.Expr | None:
    """``expr`` (torch's size expression, or its :func:`floor_form`) where each symbol is a
    multiple of its divisor: ``(H - 1)//2 + 1`` is ``H/2`` and ``4*(H//4)`` is ``H`` when 4
    divides H. ``None`` when a floor stays (the divisors are not enough) or nothing changes."""
    used = {sym: d for sym, d in divisors.items() if d > 1 and sym in expr.free_symbols}
    if not used or not expr.has(*_floors()):
        return None
    return _divided(expr, tuple(sorted(used.items(), key=lambda item: item[0].name)))


@lru_cache(maxsize=4096)
def _divided(expr: sympy.Expr, used: tuple[tuple[sympy.Symbol, int], ...]) -> sympy.Expr | None:
    multiples = {sym: sympy.Dummy(sym.name, integer=True, positive=True) for sym, _ in used}
    scaling = {sym: d * multiples[sym] for sym, d in used}
    try:
        scaled = _exactly(expr, scaling)
    except _NotPolynomial:  # a max, a power of a size, ...: sympy's floor decides
        scaled = floor_form(expr).xreplace(scaling)
        if scaled.has(sympy.floor, sympy.ceiling, sympy.Mod):
            return None
    if scaled is None:
        return None
    return scaled.xreplace({multiples[sym]: sym / d for sym, d in used})


class _NotPolynomial(Exception):
    """A size expression with an operation :func:`_exactly` does not divide."""


def _exactly(expr: sympy.Expr, scaling: Mapping[sympy.Symbol, sympy.Expr]) -> sympy.Expr | None:
    """``expr`` with its symbols scaled, as a polynomial, when every floor division, ceiling
    division and remainder in it comes out exact (``(4*h - 1)//2`` is ``2*h - 1``: the terms
    with a symbol divide, the constant rounds); ``None`` when one does not. Sizes are sums of
    products of integers and symbols: this asks sympy for no more than sums and products
    (its ``floor`` asks its assumptions about every term: ~10 ms per nested size on a first
    pass, when its caches are empty)."""
    if expr.is_Symbol:
        return scaling.get(expr, expr)
    if expr.is_Integer:
        return expr
    args = []
    for arg in expr.args:
        exact = _exactly(arg, scaling)
        if exact is None:
            return None
        args.append(exact)
    if expr.is_Add:
        return sympy.Add(*args)
    if expr.is_Mul:
        return sympy.Mul(*args)
    fn = _torch_functions()
    if isinstance(expr, (fn.FloorDiv, fn.CleanDiv)):
        return _floor_divided(args[0], args[1])
    if isinstance(expr, fn.CeilDiv):
        quotient = _floor_divided(-args[0], args[1])
        return None if quotient is None else -quotient
    if isinstance(expr, (fn.Mod, fn.PythonMod, sympy.Mod)):
        quotient = _floor_divided(args[0], args[1])
        return None if quotient is None else args[0] - args[1] * quotient
    raise _NotPolynomial


def _floor_divided(numerator: sympy.Expr, divisor: sympy.Expr) -> sympy.Expr | None:
    """``numerator // divisor`` as a polynomial when every term with a symbol is a multiple of
    the divisor (the constant term rounds down), else ``None``."""
    if not divisor.is_Integer or int(divisor) <= 0:
        raise _NotPolynomial
    d = int(divisor)
    constant, terms = 0, []
    for term in sympy.Add.make_args(numerator):
        coefficient, rest = term.as_coeff_Mul()
        if not coefficient.is_Integer:
            raise _NotPolynomial
        if rest == 1:
            constant += int(coefficient)
        elif int(coefficient) % d:
            return None
        else:
            terms.append(int(coefficient) // d * rest)
    return sympy.Add(*terms, constant // d)


def divisors_for(exprs: Iterable[sympy.Expr], values: Mapping[sympy.Symbol, int]) -> dict[sympy.Symbol, int]:
    """The divisibility to assume per symbol: what the floors of ``exprs`` need, as far as the
    traced size ``values`` allow (a 28 is assumed divisible by 4, never 32)."""
    needed: dict[sympy.Symbol, int] = {}
    for expr in exprs:
        for sym, d in required_divisors(expr).items():
            needed[sym] = math.lcm(needed.get(sym, 1), d)
    found = {}
    for sym, d in needed.items():
        value = values.get(sym)
        if value:
            common = math.gcd(int(value), d)
            if common > 1:
                found[sym] = common
    return found


# --- text ----------------------------------------------------------------------------------------


def _text(e: sympy.Expr, name: Namer) -> tuple[str, int]:
    fn = _torch_functions() if not e.is_Atom and not _plain_sympy(e) else None
    if e.is_Symbol:
        return name(e), _ATOM
    if e.is_Integer:
        value = int(e)
        return str(value), _ATOM if value >= 0 else _ADD
    if e.is_Rational:
        return f"{e.p}/{e.q}", _MUL
    if e.is_Add:
        return _add(e, name), _ADD
    if e.is_Mul:
        return _mul(e, name)
    if isinstance(e, (sympy.floor, sympy.ceiling)):
        numerator, denominator = sympy.fraction(sympy.together(e.args[0]))
        if isinstance(e, sympy.ceiling):
            return f"-(-{_wrap(numerator, name, _ATOM)}//{_wrap(denominator, name, _ATOM)})", _ADD
        return f"{_wrap(numerator, name, _POW)}//{_wrap(denominator, name, _ATOM)}", _MUL
    if e.is_Pow or (fn is not None and isinstance(e, fn.PowByNatural)):
        base, exp = e.args
        return f"{_wrap(base, name, _ATOM)}**{_wrap(exp, name, _ATOM)}", _POW
    if isinstance(e, sympy.Mod) or (fn is not None and isinstance(e, (fn.Mod, fn.PythonMod))):
        return f"{_wrap(e.args[0], name, _ATOM)} % {_wrap(e.args[1], name, _ATOM)}", _MUL
    if isinstance(e, sympy.Max) or (fn is not None and isinstance(e, fn.Max)):
        return f"max({', '.join(_text(a, name)[0] for a in _sorted(e.args))})", _ATOM
    if isinstance(e, sympy.Min) or (fn is not None and isinstance(e, fn.Min)):
        return f"min({', '.join(_text(a, name)[0] for a in _sorted(e.args))})", _ATOM
    if fn is not None:
        if isinstance(e, (fn.FloorDiv, fn.CleanDiv)):
            return f"{_wrap(e.args[0], name, _POW)}//{_wrap(e.args[1], name, _ATOM)}", _MUL
        if isinstance(e, fn.CeilDiv):
            return f"-(-{_wrap(e.args[0], name, _ATOM)}//{_wrap(e.args[1], name, _ATOM)})", _ADD
        if isinstance(e, fn.IntTrueDiv):
            return f"{_wrap(e.args[0], name, _MUL)}/{_wrap(e.args[1], name, _ATOM)}", _MUL
        if isinstance(e, (fn.TruncToInt, fn.FloorToInt, fn.Identity)) and len(e.args) == 1:
            return _text(e.args[0], name)
    # Anything else (rare on sizes): sympy's text with our names.
    names = {s: sympy.Symbol(name(s)) for s in e.free_symbols}
    return sympy.sstr(e.xreplace(names)), _ATOM


_PLAIN = (sympy.Add, sympy.Mul, sympy.Pow, sympy.floor, sympy.ceiling, sympy.Mod, sympy.Max, sympy.Min)


def _plain_sympy(e: sympy.Expr) -> bool:
    """Whether ``e`` is one of sympy's own operations (no need to look at torch's)."""
    return type(e) in _PLAIN or isinstance(e, _PLAIN)


def _wrap(e: sympy.Expr, name: Namer, at_least: int) -> str:
    text, strength = _text(e, name)
    return f"({text})" if strength < at_least else text


def _sorted(args: Sequence[sympy.Expr]) -> list[sympy.Expr]:
    return sorted(args, key=sympy.default_sort_key)


def _add(e: sympy.Expr, name: Namer) -> str:
    terms = list(e.as_ordered_terms())
    constants = [t for t in terms if t.is_number]
    terms = [t for t in terms if not t.is_number] + constants  # `H - 4`, `N + 1`
    if _negative(terms[0]):
        positive = next((t for t in terms if not _negative(t)), None)
        if positive is not None:  # `4 - H` rather than `-H + 4`
            terms.remove(positive)
            terms.insert(0, positive)
    text = ""
    for i, term in enumerate(terms):
        if _negative(term):
            body = _wrap(-term, name, _MUL)
            text += f" - {body}" if i else f"-{body}"
        else:
            body = _wrap(term, name, _ADD + 1) if i else _text(term, name)[0]
            text += f" + {body}" if i else body
    return text


def _negative(term: sympy.Expr) -> bool:
    coefficient, _ = term.as_coeff_Mul()
    return bool(coefficient.is_negative)


def _mul(e: sympy.Expr, name: Namer) -> tuple[str, int]:
    coefficient, rest = e.as_coeff_Mul()
    if coefficient.is_negative:
        text = _wrap(-e, name, _MUL)
        return f"-{text}", _ADD
    factors = list(rest.as_ordered_factors()) if rest.is_Mul else [rest]
    numerator, denominator = (coefficient.p, coefficient.q) if coefficient.is_Rational else (coefficient, 1)
    parts = [] if numerator == 1 else [_wrap(sympy.sympify(numerator), name, _ATOM)]
    for factor in factors:
        text, strength = _text(factor, name)
        # `a//b` and `a % b` inside a product get brackets: `(H//32)*(W//32)`, never `H//32*W//32`.
        needs = strength < _MUL or (strength == _MUL and not factor.is_Mul)
        parts.append(f"({text})" if needs else text)
    text = "*".join(parts)
    return (f"{text}/{denominator}" if denominator != 1 else text), _MUL  # `H*W/1024`: an exact division
