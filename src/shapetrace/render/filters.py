"""Which ops a view shows: module path patterns, op names, and "changes only"."""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import translate
from typing import TYPE_CHECKING

from shapetrace.capture.records import ModuleCall, OpRecord

if TYPE_CHECKING:
    from shapetrace.trace import Trace


def patterns(value: str | Iterable[str] | None) -> tuple[str, ...]:
    """One pattern or several, as a tuple."""
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


def glob_matcher(globs: tuple[str, ...]):
    """One compiled regex for several globs (``*``, ``?``, ``[...]``; case-sensitive)."""
    return re.compile("|".join(f"(?:{translate(p)})" for p in globs)).match


@dataclass(frozen=True)
class Filter:
    """What to keep. ``modules``: globs over module paths (``blocks.*.attn``) or class names
    (``Attention``); an op is kept when the module call it ran in, or one enclosing it, matches.
    ``ops``: globs over op names (``softmax``, ``@``, ``matmul`` for ``@``, ``*conv*``).
    ``changes``: only ops with an output that differs from their first input in shape, dtype or
    device (and ops that make a tensor from no tensor). Failed ops are always kept. All given parts must hold."""

    modules: tuple[str, ...] = ()
    ops: tuple[str, ...] = ()
    changes: bool = False

    @classmethod
    def of(
        cls,
        module: str | Iterable[str] | None = None,
        op: str | Iterable[str] | None = None,
        changes: bool = False,
    ) -> Filter:
        return cls(patterns(module), patterns(op), changes)

    def __bool__(self) -> bool:
        return bool(self.modules or self.ops or self.changes)

    def describe(self) -> str:
        parts = [f"module {' or '.join(self.modules)}"] if self.modules else []
        if self.ops:
            parts.append(f"op {' or '.join(self.ops)}")
        if self.changes:
            parts.append("changes only")
        return ", ".join(parts)

    # --- module calls ---------------------------------------------------------------------------

    def module_mask(self, modules: list[ModuleCall]) -> list[bool]:
        """For each module call: does it, or a call enclosing it, match ``modules``?"""
        if not self.modules:
            return [True] * len(modules)
        match = glob_matcher(self.modules)
        mask: list[bool] = []
        for call in modules:  # a parent call always comes before its children
            hit = bool(match(call.path) or match(call.type)) or (
                call.parent is not None and mask[call.parent]
            )
            mask.append(hit)
        return mask

    # --- ops ------------------------------------------------------------------------------------

    def op_mask(self, trace: Trace, module_mask: list[bool] | None = None) -> list[bool]:
        """For each op of ``trace``: is it kept?"""
        ops = trace.ops
        if not self:
            return [True] * len(ops)
        if module_mask is None:
            module_mask = self.module_mask(trace.modules)
        op_match = glob_matcher(self.ops) if self.ops else None
        mask = []
        for op in ops:
            keep = (
                op.failed
                or (
                    (not self.modules or (op.module_index is not None and module_mask[op.module_index]))
                    and (op_match is None or _op_matches(op_match, op))
                    and (not self.changes or changes_something(op))
                )
            )  # fmt: skip
            mask.append(keep)
        return mask

    def select(self, trace: Trace) -> list[OpRecord]:
        """The kept ops, in order."""
        return [op for op, keep in zip(trace.ops, self.op_mask(trace)) if keep]


def _op_matches(match, op: OpRecord) -> bool:
    short = op.qualname.rsplit(".", 1)[-1]
    return bool(match(op.op) or match(op.qualname) or match(short) or match(short.strip("_")))


def changes_something(op: OpRecord) -> bool:
    """Does an output of the op differ from its first tensor input in shape, dtype or device? An
    op that makes a tensor from no tensor (``torch.zeros``) counts as a change; one with no
    tensor output does not."""
    if not op.outputs:
        return False
    if not op.inputs:
        return True
    before = op.inputs[0]
    kind = (tuple(before.shape), before.dtype, before.device)
    return any((tuple(after.shape), after.dtype, after.device) != kind for after in op.outputs)


def module_changes_something(call: ModuleCall) -> bool:
    """Does the module's first output differ from its first input in shape, dtype or device?"""
    if not call.outputs:
        return False
    if not call.inputs:
        return True
    before, after = call.inputs[0], call.outputs[0]
    return (tuple(after.shape), after.dtype, after.device) != (
        tuple(before.shape),
        before.dtype,
        before.device,
    )
