"""The names of a pass: one sympy symbol per dim name, its size, and how a size is written
(``H*W`` from an expression, ``D`` for a number the user named, ``D?`` for a guess).

Shapes travel between calls as *canonical* expressions over these symbols, independent of any
ShapeEnv: a tuple with, per dim, an expression, an int, a :class:`Fixed` int (a parameter's
size), or ``None`` (data-dependent or not computed: unknown).

How a number is written (docs/symbolic.md, "Reading the expressions"): a size the pass computed
as a number is never written as the name of a dim that is symbolic in the same call (``H`` for
64 channels because H = 64). It is a name only when the user named that number (``D=512``);
otherwise it may be a guess, marked ``D?``, when exactly one name has that size: a constant of
the user's script (``P, D = 77, 512``), or a dim torch fixed to that number before (the MLP's
``D``).
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sympy

from shapetrace.capture.records import GENERATED_PREFIX
from shapetrace.symbolic.printer import divided, divisors_for, renamed_text, shape_text
from shapetrace.symbolic.result import GUESS

Size = sympy.Expr | int | None
Shape = tuple[Size, ...]



class Fixed(int):
    """A size that is a number by construction (a parameter's, a buffer's): only a name the
    user gave for that number (``D=512``) is written for it, never a dim's or a guess."""


def symbol(name: str) -> sympy.Symbol:
    """The canonical symbol of a dim name (a positive integer)."""
    return sympy.Symbol(name, integer=True, positive=True)


@dataclass
class Names:
    """Dim names bound so far (``name -> size``, first binding wins), the named sizes the user
    gave as constants, and the script's constants (names bound to one int literal in the
    user's files: guesses for numbers); ``notes`` collects names that could not be used."""

    constants: dict[str, int] = field(default_factory=dict)
    values: dict[str, int] = field(default_factory=dict)  # bound dim names, in binding order
    notes: list[str] = field(default_factory=list)
    fixed: dict[str, str] = field(default_factory=dict)  # names bound to 0 or 1: why they are constants
    script: dict[str, int] = field(default_factory=dict)  # the user's int constants (`P, D = 77, 512`)
    generated: set[str] = field(default_factory=set)  # names the pass made up (d0, d1, ...)
    aliases: dict[str, str] = field(default_factory=dict)  # canonical name -> its printed name (see printed)

    def bind(self, name: str, value: int, where: str) -> sympy.Symbol | None:
        """The symbol of ``name`` for a dim of size ``value``; ``None`` when ``name`` already
        stands for another size (noted) or when ``value`` is 0 or 1 (torch keeps those constant)."""
        known = self.values.get(name, self.constants.get(name))
        if known is not None and known != value:
            self.note(f"{name} is {known} but {value} {where}: that dim is left unnamed")
            return None
        self.values.setdefault(name, value)
        if value in (0, 1):
            self.fixed.setdefault(name, where)
            return None
        return symbol(name)

    def bind_local(self, name: str, value: int, where: str) -> sympy.Symbol | None:
        """Like :meth:`bind`, for a name a ``forward`` declares for its own call (``B, C, H, W =
        x.shape``, a jaxtyping hint): when the name already stands for another size, the dim
        gets a symbol of its own, printed with the same name (a module called at two sizes)."""
        known = self.values.get(name, self.constants.get(name))
        if known is None or known == value or value in (0, 1):
            return self.bind(name, value, where)
        for k in itertools.count(1):
            candidate = f"{name}_{k}"
            if candidate not in self.values and candidate not in self.constants:
                self.values[candidate] = value
                self.aliases[candidate] = name
                return symbol(candidate)
            if self.aliases.get(candidate) == name and self.values[candidate] == value:
                return symbol(candidate)
        raise AssertionError("unreachable")

    def generate(self, value: int) -> sympy.Symbol:
        """A new symbol for a dim no source names (``d0``, ``d1``, ...; ``value`` >= 2)."""
        taken = {*self.values, *self.constants, *self.script}
        name = next(f"{GENERATED_PREFIX}{k}" for k in itertools.count() if f"{GENERATED_PREFIX}{k}" not in taken)
        self.generated.add(name)
        self.values[name] = value
        return symbol(name)

    def alias(self, generated: str, name: str, where: str) -> None:
        """Print the generated dim ``generated`` as ``name``, found for it later (a jaxtyping hint
        or a ``B, C, H, W = x.shape`` of a submodule's ``forward``); the first name found wins."""
        if generated not in self.generated or generated in self.aliases or name in self.generated:
            return
        value = self.values[generated]
        known = self.values.get(name, self.constants.get(name))
        if known is not None and known != value:
            self.note(f"{name} is {known} but {value} {where}: that dim is left unnamed")
            return
        self.aliases[generated] = name

    def note(self, note: str) -> None:
        if note not in self.notes:
            self.notes.append(note)

    def printed(self, name: str) -> str:
        """How the dim ``name`` is written: a generated name by the name found for it later,
        the second size of a ``forward``'s own name (``H_1``) by that name."""
        return self.aliases.get(name, name)

    @property
    def all(self) -> dict[str, int]:
        """Every named dim and named constant with its size (canonical names)."""
        return {**self.values, **self.constants}

    @property
    def shown(self) -> dict[str, int]:
        """Every named dim and named constant with its size, as printed."""
        found: dict[str, int] = {}
        for name, value in self.all.items():
            found.setdefault(self.printed(name), value)
        return found

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
    """How numbers are named in one op: ``live`` names are its call's own symbols, so a number
    there is never them; ``standing`` dims torch specialised before the op, before they shaped a
    tensor from there on (the MLP's ``D``): a number of that size may be guessed to be them."""

    live: frozenset[str] = frozenset()
    standing: frozenset[str] = frozenset()


@dataclass
class Rendering:
    """How the shapes of one pass are written: names as printed, and the divisibility assumed
    for them (``H: 4``: ``H/4`` rather than ``(H - 1)//4 + 1``)."""

    names: Names
    divisors: dict[sympy.Symbol, int] = field(default_factory=dict)
    _texts: dict[sympy.Expr, tuple[str, str]] = field(default_factory=dict)
    _used: dict[sympy.Symbol, int] = field(default_factory=dict)

    @classmethod
    def of(cls, names: Names, shapes: Iterable[Shape | None]) -> Rendering:
        """A rendering that assumes what the floor divisions in ``shapes`` need, as far as the
        traced sizes are divisible."""
        exprs = {size for shape in shapes for size in shape or () if isinstance(size, sympy.Expr)}
        values = {symbol(name): value for name, value in names.values.items()}
        return cls(names, divisors_for((e for e in exprs if not e.is_Symbol and e.free_symbols), values))

    @property
    def divisible(self) -> dict[str, int]:
        """The divisibility an expression was printed under, by printed dim name."""
        return {self.names.printed(sym.name): d for sym, d in sorted(self._used.items(), key=lambda i: i[0].name)}

    def size(self, expr: sympy.Expr) -> tuple[str, str]:
        """``(printed, exact)`` text of one size expression."""
        found = self._texts.get(expr)
        if found is None:
            aliases = tuple(self.names.aliases.items())
            exact = renamed_text(expr, aliases)
            simpler = divided(expr, self.divisors) if self.divisors else None
            if simpler is not None:
                for sym in expr.free_symbols & self.divisors.keys():
                    self._used[sym] = self.divisors[sym]
            found = self._texts[expr] = (renamed_text(simpler, aliases) if simpler is not None else exact, exact)
        return found

    def shape(self, shape: Shape, concrete: Sequence[int], context: Context | None) -> tuple[str, str]:
        """``(printed, exact)`` text of a canonical shape; unknown dims are written from
        ``concrete`` (named by value only where one name fits)."""
        printed, exact = [], []
        for size, value in zip(shape, concrete):
            if size is None:
                text = number_text(int(value), self.names, context, UNKNOWN)
            elif isinstance(size, int):
                text = number_text(size, self.names, context, FIXED if isinstance(size, Fixed) else COMPUTED)
            else:
                text, exact_text = self.size(size)
                printed.append(text)
                exact.append(exact_text)
                continue
            printed.append(text)
            exact.append(text)
        return shape_text(printed), shape_text(exact)

    def by_value(self, concrete: Sequence[int], context: Context | None = None) -> tuple[str, str]:
        """A shape the pass could not compute: named by value where unambiguous (``B?``)."""
        text = shape_text([number_text(int(v), self.names, context, UNKNOWN) for v in concrete])
        return text, text


COMPUTED, FIXED, UNKNOWN = "computed", "fixed", "unknown"


def number_text(value: int, names: Names, context: Context | None, kind: str) -> str:
    """A size as text when the pass has a number for it.

    A constant the user named (``D=512``) is that name. Otherwise a name is only a guess,
    marked ``?``, and only when exactly one name has that size, among the dims (any of them
    may have been fixed to it by torch) and the script's constants. ``computed`` (a number the
    pass derived, no named dim in it): the guess must be a script constant that is no symbol of
    the call, or a dim torch specialised before the op (``standing``). ``fixed`` (a parameter's
    size): no guess. ``unknown`` (a size the pass could not compute): any name but a generated one.
    """
    if value in (0, 1):
        return str(value)
    named = [name for name, size in names.constants.items() if size == value]
    if named:
        return named[0] if len(named) == 1 else str(value)
    if kind == FIXED:
        return str(value)
    context = context or Context()
    fits = {names.printed(n) for n, v in names.values.items() if v == value}
    fits.update(n for n, v in names.script.items() if v == value)
    if len(fits) != 1:
        return str(value)
    (name,) = fits
    if kind == COMPUTED:
        live = {names.printed(n) for n in context.live}
        standing = {names.printed(n) for n in context.standing}
        guessed = name in standing or (name in names.script and name not in live)
    else:
        guessed = name in names.script or name not in names.generated
    return name + GUESS if guessed else str(value)
