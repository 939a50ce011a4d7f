"""What the symbolic pass found: per-tensor expression texts, the named dims, the dims torch
specialised, and how far the pass got."""

from __future__ import annotations

from dataclasses import dataclass, field

RAN, PARTIAL, FAILED, SKIPPED = "ran", "partial", "failed", "skipped"
GUESS = "?"  # suffix of a name given by value only (docs/symbolic.md)


@dataclass(frozen=True)
class Specialization:
    """A named dim that torch fixed during the symbolic pass: to a number (``expr == str(value)``),
    or to another expression (``expr == "W"`` when an op needed ``H == W``).

    ``op_index``/``file``/``line`` locate the op whose guard fixed it (``None``/``""``/``0`` when
    it was fixed before any op, e.g. a size of 1, which torch always treats as a constant).
    """

    dim: str
    value: int
    expr: str
    op_index: int | None
    file: str
    line: int
    reason: str

    def describe(self) -> str:
        where = f" at {self.file}:{self.line}" if self.file else ""
        target = self.expr if self.expr == str(self.value) else f"{self.expr} (= {self.value})"
        return f"{self.dim} = {target}{where}: {self.reason}"


@dataclass(frozen=True)
class SymbolicStatus:
    """``state``: ``ran`` (every op has a symbolic shape), ``partial`` (some ops fell back to
    their concrete sizes, named by value only where unambiguous and marked ``?``), ``failed``
    (no op could be computed symbolically) or ``skipped`` (no dim had a name, or the pass was
    turned off). ``reason`` says why when not ``ran``; ``notes`` list names that were not used and
    calls the replay did not follow to their end;
    ``seconds`` is how long the pass took, ``reused_calls`` how many module calls it did not run
    again because an identical block had just run with the same inputs. ``divisible`` is the
    divisibility the expressions were printed under (``{"H": 4, "W": 4}``: ``H/4``, not
    ``(H - 1)//4 + 1``; each tensor's ``expr_exact`` has the exact expression)."""

    state: str
    reason: str = ""
    symbolic_ops: int = 0
    fallback_ops: int = 0
    notes: tuple[str, ...] = ()
    seconds: float = 0.0
    reused_calls: int = 0
    divisible: dict[str, int] = field(default_factory=dict)

    def assumption(self) -> str:
        """``assuming H, W divisible by 4`` (empty when nothing was assumed)."""
        by_divisor: dict[int, list[str]] = {}
        for name, divisor in self.divisible.items():
            by_divisor.setdefault(divisor, []).append(name)
        parts = [f"{', '.join(names)} divisible by {divisor}" for divisor, names in by_divisor.items()]
        return "assuming " + "; ".join(parts) if parts else ""

    def describe(self) -> str:
        text = self.state
        if self.state in (RAN, PARTIAL):
            text += f": {self.symbolic_ops} ops symbolic"
            if self.fallback_ops:
                text += f", {self.fallback_ops} by value"
        if self.reason:
            text += f" ({self.reason})"
        return text


# Expression texts of one record's tensors, in the record's order: (as printed, exact).
Exprs = tuple[tuple[str, str], ...]


@dataclass
class SymbolicResult:
    """The pass's output, keyed by op / module-call index of the concrete trace."""

    status: SymbolicStatus
    dims: dict[str, int] = field(default_factory=dict)
    specializations: list[Specialization] = field(default_factory=list)
    op_inputs: dict[int, Exprs] = field(default_factory=dict)
    op_outputs: dict[int, Exprs] = field(default_factory=dict)
    module_inputs: dict[int, Exprs] = field(default_factory=dict)
    module_outputs: dict[int, Exprs] = field(default_factory=dict)


PASS_OFF = "the symbolic pass is off"


def skipped(reason: str, notes: tuple[str, ...] = ()) -> SymbolicResult:
    return SymbolicResult(SymbolicStatus(SKIPPED, reason, notes=notes))


def symbolic_to_dict(trace) -> dict:
    """The JSON keys ``dims``, ``specializations`` and ``symbolic`` (docs/json-schema.md)."""
    status = trace.symbolic
    return {
        "dims": trace.dims,
        "specializations": [
            {"dim": s.dim, "value": s.value, "expr": s.expr, "op_index": s.op_index, "file": s.file,
             "line": s.line, "reason": s.reason}
            for s in trace.specializations
        ],  # fmt: skip
        "symbolic": {
            "state": status.state, "reason": status.reason, "symbolic_ops": status.symbolic_ops,
            "fallback_ops": status.fallback_ops, "notes": list(status.notes),
            "divisible": dict(status.divisible),
        },  # fmt: skip
    }
