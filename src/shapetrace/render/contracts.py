"""How contract records show: marker rows and footer lines for the table, plain data for JSON."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.text import Text

from shapetrace.capture.source import short_location
from shapetrace.contracts.violations import ContractViolation, UnresolvedHint, size_text

if TYPE_CHECKING:
    from shapetrace.trace import Trace


def marker_rows(trace: Trace) -> dict[int, list[tuple[Text, ...]]]:
    """Table rows for the violations, keyed by the op they go before (``position``): ``✗``, the
    caller's line, ``function arg: reason``, ``contract``, the module, the actual shape."""
    files = {op.file for op in trace.ops}
    rows: dict[int, list[tuple[Text, ...]]] = {}
    for number, violation in enumerate(trace.contracts, 1):
        site = str(violation.line) if files == {violation.file} else short_location(violation.file, violation.line)
        actual = _actual_text(trace, violation)
        rows.setdefault(violation.position, []).append(
            (
                Text(f"✗{number}", style="bold red"),
                Text(site),
                Text(f"{violation.function} {violation.arg}: {violation.reason}", style="red"),
                Text("contract", style="bold red"),
                Text(violation.where),
                Text(actual, style="bold red"),
            )
        )
    return rows


def _actual_text(trace: Trace, violation: ContractViolation) -> str:
    """The offending value's shape, symbolic when the op that made it has one."""
    meta = violation.actual
    if meta is None:
        return violation.actual_type
    if violation.op_index is not None:
        for output in trace.ops[violation.op_index].outputs:
            if output.tensor_id == meta.tensor_id and output.expr is not None:
                return output.expr
    return meta.shape_text()


def flagged_ops(trace: Trace) -> set[int]:
    """Ops whose output broke a contract."""
    return {v.op_index for v in trace.contracts if v.op_index is not None}


def footer_lines(trace: Trace) -> Text:
    """One line per violation (expected, actual, reason, bindings) and per unchecked annotation."""
    text = Text()
    for number, violation in enumerate(trace.contracts, 1):
        bound = ", ".join(f"{name}={size_text(size)}" for name, size in violation.bindings.items())
        made_by = f" (made by op {violation.op_index})" if violation.op_index is not None else ""
        text.append(
            f"\n✗{number} {violation.function} {violation.arg} at {short_location(violation.file, violation.line)}: "
            f"expected {violation.expected}, got {violation.actual_text}{made_by}; {violation.reason}"
            + (f" [{bound}]" if bound else ""),
            style="red",
        )
    for hint in trace.contract_warnings:
        text.append(f"\n! {hint.describe()}", style="yellow")
    return text


def violation_to_dict(violation: ContractViolation) -> dict[str, Any]:
    actual = violation.actual
    return {
        "where": violation.where,
        "function": violation.function,
        "arg": violation.arg,
        "expected": violation.expected,
        "actual": {
            "type": violation.actual_type,
            "shape": None if actual is None else [s if isinstance(s, int) else str(s) for s in actual.shape],
            "dtype": None if actual is None else actual.dtype_name,
            "device": None if actual is None else actual.device_name,
        },
        "reason": violation.reason,
        "bindings": {
            name: list(size) if isinstance(size, tuple) else size for name, size in violation.bindings.items()
        },
        "file": violation.file,
        "line": violation.line,
        "position": violation.position,
        "op_index": violation.op_index,
        "module_index": violation.module_index,
    }


def unresolved_to_dict(hint: UnresolvedHint) -> dict[str, Any]:
    return {
        "function": hint.function,
        "arg": hint.arg,
        "hint": hint.hint,
        "reason": hint.reason,
        "file": hint.file,
        "line": hint.line,
    }


