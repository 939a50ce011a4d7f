"""``--check``: the shape comments already in the source, compared with what ran.

Each owned comment gets one status (docs/comments.md):

- ``fresh``: every run matches the comment; with symbolic shapes, also as expressions (under
  the divisibility the trace printed its shapes with: ``H/4`` is ``H//4`` when 4 divides H);
- ``fresh at these sizes``: the numbers match but the expressions are not provably equal
  (``H//2`` vs ``(H - 1)//2 + 1``): a note, not a failure;
- ``unchecked``: some name has no known value, an alternative no run made, or the line produced
  no tensor: never stale;
- ``stale``: a run whose sizes contradict the comment (a dim that evaluates to another number,
  another rank, another number of tensors, no alternative it matches).
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import sympy

from shapetrace.capture.records import TensorMeta
from shapetrace.comments.bindings import Lookup, Value
from shapetrace.comments.files import TracedFile, traced_files
from shapetrace.comments.grammar import NotAShape, ShapeComment, guessed_dims, parse_comment, parse_shape
from shapetrace.comments.runs import render_runs

if TYPE_CHECKING:
    from shapetrace.trace import Trace


class Status(enum.Enum):
    FRESH = "fresh"
    AT_SIZES = "fresh at these sizes"
    UNCHECKED = "unchecked"
    STALE = "stale"
    NOT_RUN = "not run"


@dataclass(frozen=True)
class _Verdict:
    """How one comment tuple compares with one tensor. ``rank`` orders verdicts best first."""

    rank: int  # 0 provably equal, 1 equal at these sizes, 2 unknown, 3 contradicted
    unknown: frozenset[str] = frozenset()
    sizes: tuple[tuple[str, int], ...] = ()


_EQUAL, _AT_SIZES, _UNKNOWN, _STALE = range(4)


@dataclass(frozen=True)
class CommentCheck:
    """One owned comment and how it compares with the runs of its line."""

    file: str
    line: int
    comment: str
    ran: str
    status: Status
    reason: str = ""

    def message(self) -> str:
        where = f"{self.file}:{self.line}"
        if self.status is Status.STALE:
            return f"{where}: comment says {self.comment}, ran {self.ran}"
        if self.status is Status.AT_SIZES:
            return f"{where}: note: comment says {self.comment}, ran {self.ran}: {self.reason}"
        if self.status is Status.UNCHECKED:
            ran = f", ran {self.ran}" if self.ran else ""
            return f"{where}: unchecked: comment says {self.comment}{ran}: {self.reason}"
        return f"{where}: {self.status.value}: {self.comment}"


@dataclass
class CheckReport:
    """Every owned comment of the traced files, checked; ``skipped``: files not checked, and why."""

    checks: list[CommentCheck] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    files: int = 0
    symbolic: bool = False

    @property
    def stale(self) -> list[CommentCheck]:
        return [c for c in self.checks if c.status is Status.STALE]

    @property
    def exit_code(self) -> int:
        return 1 if self.stale else 0

    def lines(self) -> list[str]:
        """Stale comments, notes and unchecked comments, in file order, then a summary."""
        shown = (Status.STALE, Status.AT_SIZES, Status.UNCHECKED)
        out = [c.message() for c in self.checks if c.status in shown]
        out.extend(self.skipped)
        counts = {status: sum(c.status is status for c in self.checks) for status in Status}
        parts = [f"{counts[s]} {s.value}" for s in Status if counts[s] or s in (Status.FRESH, Status.STALE)]
        sizes = "" if self.symbolic else " (no symbolic shapes: compared at the traced sizes)"
        files = f"{self.files} file" + ("" if self.files == 1 else "s")
        out.append(
            f"shapetrace --check: {len(self.checks)} shape comments in {files}: {', '.join(parts)}{sizes}"
        )
        return out

    def __str__(self) -> str:
        return "\n".join(self.lines())


def check_comments(trace: Trace) -> CheckReport:
    """Compare every owned shape comment of the traced user files with what its line ran."""
    files, skipped = traced_files(trace)
    report = CheckReport(skipped=skipped, files=len(files))
    report.symbolic = any(meta.expr is not None for op in trace.ops for meta in op.outputs)
    for traced in files:
        report.checks.extend(check_file(traced))
    return report


def check_file(traced: TracedFile) -> list[CommentCheck]:
    source = traced.source
    checks = []
    for line in sorted(source.comments):
        comment = parse_comment(source.comments[line][1])
        if comment is not None:
            checks.append(check_line(traced, line, comment))
    return checks


def check_line(traced: TracedFile, line: int, comment: ShapeComment) -> CommentCheck:
    """How the comment on ``line`` compares with every run of the line."""
    runs = traced.runs.get(line)
    where = (traced.display, line, comment.shape_text)
    if not runs:
        return CommentCheck(*where, "", Status.NOT_RUN, "the line did not run")
    ran = [run for run in runs if run.outputs and not run.failed]
    if not ran:
        reason = "the line raised" if any(run.failed for run in runs) else "the line produced no tensor"
        return CommentCheck(*where, "", Status.UNCHECKED, reason)
    ran_text = render_runs(ran)
    table = [
        [_compare_group(group, more, run.outputs, traced.resolver.lookup(line, run)) for run in ran]
        for group, more in zip(
            comment.alternatives, comment.more_tensors or (False,) * len(comment.alternatives)
        )
    ]
    best_per_run = [
        min((table[a][r] for a in range(len(table))), key=lambda v: v.rank) for r in range(len(ran))
    ]
    if comment.more_runs:  # "| ...": runs it does not list may be the ones left out
        best_per_run = [v for v in best_per_run if v.rank != _STALE]
    if any(v.rank == _STALE for v in best_per_run):
        return CommentCheck(*where, ran_text, Status.STALE)
    not_ran = [text for text, row in zip(comment.texts, table) if all(v.rank == _STALE for v in row)]
    if not_ran:  # not contradicted: this run just did not make that shape
        return CommentCheck(*where, ran_text, Status.UNCHECKED, f"no run made {' | '.join(not_ran)}")
    worst = max(best_per_run, key=lambda v: v.rank, default=_Verdict(_EQUAL))
    if worst.rank == _UNKNOWN:
        unknown = sorted(set().union(*(v.unknown for v in best_per_run)))
        reason = f"no value for {', '.join(unknown)}" if unknown else "not comparable"
        return CommentCheck(*where, ran_text, Status.UNCHECKED, reason)
    if worst.rank == _AT_SIZES:
        sizes = dict(pair for v in best_per_run for pair in v.sizes)
        at = ", ".join(f"{name}={value}" for name, value in sorted(sizes.items()))
        reason = "equal at the traced sizes" + (f" ({at})" if at else "") + ", not as expressions"
        return CommentCheck(*where, ran_text, Status.AT_SIZES, reason)
    return CommentCheck(*where, ran_text, Status.FRESH)


def _compare_group(
    group: tuple[tuple[sympy.Expr, ...], ...], more: bool, metas: Sequence[TensorMeta], lookup: Lookup
) -> _Verdict:
    """One alternative of the comment (its tuples) against the tensors of one run."""
    if len(group) != len(metas) and not (more and len(group) < len(metas)):
        return _Verdict(_STALE)
    verdicts = [compare_tuple(dims, meta, lookup) for dims, meta in zip(group, metas)]
    worst = max(verdicts, key=lambda v: v.rank, default=_Verdict(_EQUAL))
    return _Verdict(
        worst.rank,
        frozenset().union(*(v.unknown for v in verdicts)),
        tuple(pair for v in verdicts for pair in v.sizes),
    )


def compare_tuple(dims: tuple[sympy.Expr, ...], meta: TensorMeta, lookup: Lookup) -> _Verdict:
    """A comment tuple against one tensor, dim by dim: the number first (a contradiction is
    stale), then, when the tensor has a symbolic ``expr``, the expression."""
    if len(dims) != len(meta.shape):
        return _Verdict(_STALE)
    values: dict[sympy.Symbol, Value] = {}
    for sym in set().union(*(d.free_symbols for d in dims)):
        found = lookup(sym.name)
        if found is not None:
            values[sym] = found
    numbers = {sym: sympy.Integer(value.number) for sym, value in values.items()}
    ran = _ran_dims(meta)
    unknown: set[str] = set()
    at_sizes = False
    for i, (dim, size) in enumerate(zip(dims, meta.shape)):
        ran_dim = ran[i] if ran is not None else None
        missing = dim.free_symbols - numbers.keys()
        if not missing:
            number = dim.xreplace(numbers) if numbers else dim
            if isinstance(size, int) and not (number.is_Integer and int(number) == size):
                return _Verdict(_STALE)
            if ran_dim is not None and not _same(dim, ran_dim, values, lookup):
                at_sizes = True
        elif ran_dim is None or not _same(dim, ran_dim, values, lookup):
            unknown.update(sym.name for sym in missing)
    if unknown:
        return _Verdict(_UNKNOWN, frozenset(unknown))
    if at_sizes:
        return _Verdict(_AT_SIZES, sizes=tuple(sorted((s.name, int(v)) for s, v in numbers.items())))
    return _Verdict(_EQUAL)


def _ran_dims(meta: TensorMeta) -> tuple[sympy.Expr | None, ...] | None:
    """The tensor's symbolic dims; ``None`` for a dim the symbolic pass only guessed (``D?``)."""
    if meta.expr is None:
        return None
    try:
        dims = parse_shape(meta.expr)
    except NotAShape:
        return None
    if len(dims) != len(meta.shape):
        return None
    guessed = guessed_dims(meta.expr)
    return tuple(None if guess else dim for dim, guess in zip(dims, guessed))


def _same(comment: sympy.Expr, ran: sympy.Expr, values: dict[sympy.Symbol, Value], lookup: Lookup) -> bool:
    """Whether a comment dim equals the ran dim for every size. A ``forward`` argument's dim is
    replaced by its expression; a name the ran dim lacks is replaced by its number only when it
    is fixed (torch specialised it, or it is no dim of the trace); any other name stays a symbol."""
    arguments = {sym: values[sym].expr for sym in comment.free_symbols if sym in values and values[sym].expr}
    if arguments:
        comment = comment.xreplace(arguments)
    fixed = {}
    for sym in comment.free_symbols - ran.free_symbols:
        value = lookup.fixed(sym.name)
        if value is None:
            return False
        fixed[sym] = value
    if fixed:
        comment = comment.xreplace(fixed)
    multiples = lookup.resolver.multiples(comment.free_symbols | ran.free_symbols)
    if multiples:  # the trace printed `H/4` assuming 4 divides H: `H//4` and `(H - 1)//4 + 1` are H/4 too
        comment, ran = comment.xreplace(multiples), ran.xreplace(multiples)
    difference = flatten_floors(comment) - flatten_floors(ran)
    if difference == 0:
        return True
    if _nonzero_somewhere(difference):
        return False  # a counterexample: no need to try to prove it
    return sympy.simplify(difference) == 0


_PROBES = (97, 131, 262, 1031)  # sizes at which a difference is tried before sympy tries to simplify it


def _nonzero_somewhere(expr: sympy.Expr) -> bool:
    symbols = sorted(expr.free_symbols, key=lambda sym: sym.name)
    for shift in range(len(_PROBES)):
        point = {sym: sympy.Integer(_PROBES[(i + shift) % len(_PROBES)] + i) for i, sym in enumerate(symbols)}
        value = expr.xreplace(point)
        if value.is_number and value != 0:
            return True
    return False


def _nested_floor(expr: sympy.Expr) -> bool:
    if not isinstance(expr, sympy.floor):
        return False
    coefficient, rest = expr.args[0].as_coeff_Mul()
    return (
        isinstance(rest, sympy.floor) and coefficient.is_Rational and coefficient.p == 1 and coefficient.q > 1
    )


def _merge_floor(expr: sympy.Expr) -> sympy.Expr:
    coefficient, rest = expr.args[0].as_coeff_Mul()
    return sympy.floor(rest.args[0] * coefficient)


@lru_cache(maxsize=4096)
def flatten_floors(expr: sympy.Expr) -> sympy.Expr:
    """``(x//a)//b`` -> ``x//(a*b)`` (true for every real x and positive integers a, b), so that
    ``((H - 4)//2 - 4)//2`` and ``H//4 - 3`` are the same expression. Cached: the lines of a
    file repeat the same few dims."""
    previous = None
    while previous != expr:
        previous, expr = expr, expr.replace(_nested_floor, _merge_floor)
    return expr
