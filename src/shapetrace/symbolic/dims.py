"""The names of a pass: one sympy symbol per dim name, its size, and how a size is written
(``H*W`` from an expression, ``D`` for a number the user named, ``B?`` for a guess by value).

Shapes travel between calls as *canonical* expressions over these symbols, independent of any
ShapeEnv: a tuple with, per dim, an expression, an int, or ``None`` (data-dependent: unknown).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sympy

from shapetrace.symbolic.printer import expr_text, shape_text
from shapetrace.symbolic.result import GUESS

Size = sympy.Expr | int | None
Shape = tuple[Size, ...]



def symbol(name: str) -> sympy.Symbol:
    """The canonical symbol of a dim name (a positive integer)."""
    return sympy.Symbol(name, integer=True, positive=True)


@dataclass
class Names:
    """Dim names bound so far (``name -> size``, first binding wins) and the named sizes the user
    gave as constants; ``notes`` collects names that could not be used, with why."""

    constants: dict[str, int] = field(default_factory=dict)
    values: dict[str, int] = field(default_factory=dict)  # bound dim names, in binding order
    notes: list[str] = field(default_factory=list)
    fixed: dict[str, str] = field(default_factory=dict)  # names bound to 0 or 1: why they are constants

    def bind(self, name: str, value: int, where: str) -> sympy.Symbol | None:
        """The symbol of ``name`` for a dim of size ``value``; ``None`` when ``name`` already
        stands for another size (noted) or when ``value`` is 0 or 1 (torch keeps those constant)."""
        known = self.values.get(name, self.constants.get(name))
        if known is not None and known != value:
            note = f"{name} is {known} but {value} {where}: that dim is left unnamed"
            if note not in self.notes:
                self.notes.append(note)
            return None
        self.values.setdefault(name, value)
        if value in (0, 1):
            self.fixed.setdefault(name, where)
            return None
        return symbol(name)

    @property
    def all(self) -> dict[str, int]:
        """Every named dim and named constant with its size."""
        return {**self.values, **self.constants}

    def value_of(self, expr: Size) -> int | None:
        """The size ``expr`` has in this run."""
        if expr is None:
            return None
        if isinstance(expr, int):
            return expr
        try:
            return int(expr.xreplace({symbol(n): v for n, v in self.all.items()}))
        except (TypeError, ValueError):
            return None


@dataclass
class Context:
    """How concrete numbers are named in one call: ``exact`` names stand for a number (the user's
    constants, dims torch specialised in this call); ``live`` names are this call's own symbols,
    so a plain number there is not them."""

    exact: dict[int, list[str]] = field(default_factory=dict)
    live: frozenset[str] = frozenset()


def make_context(names: Names, specialised: Iterable[str] = (), live: Iterable[str] = ()) -> Context:
    exact: dict[int, list[str]] = {}
    for name, value in names.constants.items():
        exact.setdefault(value, []).append(name)
    for name in specialised:
        value = names.values.get(name)
        if value is not None and name not in exact.get(value, ()):
            exact.setdefault(value, []).append(name)
    return Context(exact, frozenset(live) - set(specialised))


def number_text(value: int, names: Names, context: Context | None, symbolic: bool) -> str:
    """A concrete size as text: the one exact name for it, else (when ``symbolic`` says the
    number is not one of this call's symbols, or always in a fallback) the one other name with
    that size marked ``?``, else the number."""
    if value in (0, 1):
        return str(value)
    context = context or Context()
    exact = context.exact.get(value, [])
    if len(exact) == 1:
        return exact[0]
    if exact:
        return str(value)  # two names for one number: ambiguous
    skip = context.live if symbolic else frozenset()
    guesses = [n for n, v in names.values.items() if v == value and n not in skip]
    return guesses[0] + GUESS if len(guesses) == 1 else str(value)


def render(shape: Shape, concrete: Sequence[int], names: Names, context: Context | None) -> str:
    """A canonical shape as the seeds write it; unknown dims are written from ``concrete``."""
    dims = []
    for size, value in zip(shape, concrete):
        if size is None:
            dims.append(number_text(int(value), names, context, symbolic=False))
        elif isinstance(size, int):
            dims.append(number_text(size, names, context, symbolic=True))
        else:
            dims.append(expr_text(size))
    return shape_text(dims)


def render_by_value(concrete: Sequence[int], names: Names, context: Context | None = None) -> str:
    """A shape the pass could not compute: named by value where unambiguous (``B?``)."""
    return shape_text([number_text(int(v), names, context, symbolic=False) for v in concrete])
