"""What checking contracts leaves behind: violations, unresolved hints, per-call bindings, and
the exception and warnings a violation can become."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from shapetrace.capture.records import TensorMeta

Bindings = Mapping[str, "int | tuple[int, ...]"]


@dataclass(frozen=True)
class ContractViolation:
    """One value that did not match its annotation.

    ``where`` is the module the call ran in (its path as in ``named_modules()``, the root
    module's class name for the root, ``""`` outside any module); ``function`` the checked
    function's qualified name; ``arg`` the value's place in the call (``x``, ``xs[1]``,
    ``return``, ``return[1]``, ``return['logits']``). ``actual`` is the value's shape, dtype and
    device (``None`` when it is not a tensor; ``actual_type`` names its type). ``bindings`` are
    the call's dims bound before this check (``"*batch"`` for variadic dims); ``file``/``line``
    the user's line that made the call. ``position`` is how many ops had been recorded when the
    check ran (the table shows the violation before op ``position``); ``op_index`` the recorded
    op that produced the offending tensor, ``None`` when no recorded op did.
    """

    where: str
    function: str
    arg: str
    expected: str
    actual: TensorMeta | None
    actual_type: str
    reason: str
    bindings: Bindings = field(hash=False)
    file: str
    line: int
    position: int = 0
    op_index: int | None = None
    module_index: int | None = None

    @property
    def actual_text(self) -> str:
        """``(8, 15) float32 cpu`` for a tensor, the type name for anything else."""
        if self.actual is None:
            return self.actual_type
        meta = self.actual
        return f"{meta.shape_text()} {meta.dtype_name} {meta.device_name}"

    def describe(self, with_site: bool = True) -> str:
        """Several lines a person reads: what was checked, what came, why it failed."""
        place = f" in {self.where}" if self.where else ""
        bound = ", ".join(f"{name}={size_text(size)}" for name, size in self.bindings.items())
        lines = [
            f"{self.function}{place}: {self.arg} does not match its annotation",
            f"  expected {self.expected}",
            f"  actual   {self.actual_text}",
            f"  {self.reason}",
        ]
        if bound:
            lines.append(f"  bindings {bound}")
        if with_site:
            lines.append(f"  called at {self.file}:{self.line}")
        return "\n".join(lines)


@dataclass(frozen=True)
class UnresolvedHint:
    """An annotation that could not be turned into a check (a name that does not resolve, an
    invalid spec): that part of the signature is not checked, and the trace says so."""

    function: str
    arg: str
    hint: str
    reason: str
    file: str
    line: int

    def describe(self) -> str:
        return f"{self.function}: annotation of {self.arg} ({self.hint}) is not checked: {self.reason}"


@dataclass(frozen=True)
class ContractCall:
    """One checked call and the dims its annotations bound (``name -> size``, ``"*batch" ->
    sizes``): where the symbolic pass takes dim names from. ``module_index`` is the module call
    it ran in (see ``Trace.modules``)."""

    module_index: int | None
    where: str
    function: str
    bindings: Bindings = field(hash=False)


class ContractError(TypeError):
    """Raised for a violation when ``on_violation="raise"`` (and by ``@contract`` functions
    called outside a trace). ``violation`` is the record."""

    def __init__(self, violation: ContractViolation) -> None:
        super().__init__(violation.describe())
        self.violation = violation


class ContractWarning(UserWarning):
    """A violation, reported with ``on_violation="warn"``."""


class UnresolvedHintWarning(ContractWarning):
    """An annotation that cannot be checked (see :class:`UnresolvedHint`)."""


def size_text(size: int | tuple[int, ...]) -> str:
    """``16`` for a dim, ``(2, 3)`` for the dims a ``*batch`` bound."""
    return str(size) if not isinstance(size, tuple) else "(" + ", ".join(map(str, size)) + ")"
