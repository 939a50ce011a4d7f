"""Size expressions as the seeds write them: ``H*W``, ``(H//32)*(W//32) + 1``, ``(H - 4)//2``.

sympy's own printer adds torch's defensive brackets (``((H//32))*((W//32))``); this one writes
Python-valid text with only the brackets the operators need.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import sympy

from shapetrace._private.torch_symbolic import sympy_functions as fn

# Binding strength: a sub-expression weaker than its context gets brackets.
_ADD, _MUL, _POW, _ATOM = 1, 2, 3, 4

Namer = Callable[[sympy.Symbol], str]


def expr_text(expr: sympy.Expr | int, name: Namer | None = None) -> str:
    """``expr`` as text; ``name(symbol)`` gives each symbol's text (its own name by default)."""
    if isinstance(expr, int):
        return str(expr)
    return _text(sympy.sympify(expr), name or (lambda s: s.name))[0]


def shape_text(dims: Sequence[str]) -> str:
    """``["B", "C"]`` -> ``(B, C)``; one dim keeps its comma: ``(T,)``."""
    return "(" + ", ".join(dims) + (",)" if len(dims) == 1 else ")")


def _text(e: sympy.Expr, name: Namer) -> tuple[str, int]:
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
    if e.is_Pow or isinstance(e, fn.PowByNatural):
        base, exp = e.args
        return f"{_wrap(base, name, _ATOM)}**{_wrap(exp, name, _ATOM)}", _POW
    if isinstance(e, (fn.FloorDiv, fn.CleanDiv)):
        return f"{_wrap(e.args[0], name, _POW)}//{_wrap(e.args[1], name, _ATOM)}", _MUL
    if isinstance(e, fn.CeilDiv):
        return f"-(-{_wrap(e.args[0], name, _ATOM)}//{_wrap(e.args[1], name, _ATOM)})", _ADD
    if isinstance(e, (sympy.Mod, fn.Mod, fn.PythonMod)):
        return f"{_wrap(e.args[0], name, _ATOM)} % {_wrap(e.args[1], name, _ATOM)}", _MUL
    if isinstance(e, fn.IntTrueDiv):
        return f"{_wrap(e.args[0], name, _MUL)}/{_wrap(e.args[1], name, _ATOM)}", _MUL
    if isinstance(e, (sympy.Max, fn.Max)):
        return f"max({', '.join(_text(a, name)[0] for a in _sorted(e.args))})", _ATOM
    if isinstance(e, (sympy.Min, fn.Min)):
        return f"min({', '.join(_text(a, name)[0] for a in _sorted(e.args))})", _ATOM
    if isinstance(e, (fn.TruncToInt, fn.FloorToInt, fn.Identity)) and len(e.args) == 1:
        return _text(e.args[0], name)
    # Anything else (rare on sizes): sympy's text with our names.
    names = {s: sympy.Symbol(name(s)) for s in e.free_symbols}
    return sympy.sstr(e.xreplace(names)), _ATOM


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
    parts = [] if coefficient == 1 else [_wrap(coefficient, name, _ATOM)]
    for factor in factors:
        text, strength = _text(factor, name)
        # `a//b` and `a % b` inside a product get brackets: `(H//32)*(W//32)`, never `H//32*W//32`.
        needs = strength < _MUL or (strength == _MUL and not factor.is_Mul)
        parts.append(f"({text})" if needs else text)
    return "*".join(parts), _MUL
