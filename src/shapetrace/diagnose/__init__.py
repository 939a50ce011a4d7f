"""The debugger: why the traced block failed, and the device bugs waiting for a GPU.

- :func:`diagnose`: the failing op explained by kind (shapes, dtypes, devices, where each operand
  came from, the fix), then the device lints of the whole trace.
- :func:`attach_note`: the failure's diagnosis as a PEP 678 note on the exception.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from shapetrace.diagnose.diagnostic import ERROR, WARNING, Diagnostic, Operand, Origin
from shapetrace.diagnose.evidence import Evidence
from shapetrace.diagnose.explain import explain_failure
from shapetrace.diagnose.lints import device_lints
from shapetrace.diagnose.provenance import Dataflow

if TYPE_CHECKING:
    from shapetrace.trace import Trace

__all__ = [
    "ERROR", "WARNING", "Diagnostic", "Evidence", "Operand", "Origin", "attach_note", "diagnose",
]  # fmt: skip

NOTE_PREFIX = "shapetrace:"


def diagnose(trace: Trace) -> list[Diagnostic]:
    """The failure's diagnosis first (when an op raised), then the device lints, in op order."""
    flow = Dataflow(trace, trace.evidence)
    failure = _explain_failure(trace, flow)
    found = [failure] if failure is not None else []
    explained = set(failure.subjects) if failure is not None else set()
    try:
        lints = device_lints(trace, flow)
    except Exception as error:  # a lint's bug must not hide the failure's diagnosis
        warnings.warn(f"shapetrace: device lints failed: {error!r}", RuntimeWarning, stacklevel=2)
        lints = []
    found.extend(lint for lint in lints if not explained.intersection(lint.subjects))
    return found


def attach_note(trace: Trace, exc: BaseException) -> None:
    """Add the failure's diagnosis to ``exc`` as a note (once, however many traces it leaves).

    Computed here from the concrete records; ``Trace.diagnostics`` is computed again when read,
    with symbolic shapes if the symbolic pass gives them."""
    if not isinstance(exc, Exception) or trace.error is None or trace.error.op_index is None:
        return
    notes = getattr(exc, "__notes__", [])
    if any(isinstance(n, str) and n.startswith(NOTE_PREFIX) for n in notes):
        return
    try:
        failure = _explain_failure(trace, Dataflow(trace, trace.evidence))
        text = failure.note() if failure is not None else None
    except Exception as error:  # never let the diagnosis replace the user's exception
        text = f"{NOTE_PREFIX} could not explain this failure ({type(error).__name__}: {error})"
    if text:
        exc.add_note(text)


def _explain_failure(trace: Trace, flow: Dataflow) -> Diagnostic | None:
    error, evidence = trace.error, trace.evidence
    if error is None or error.op_index is None:
        return None
    message = evidence.failure_message if evidence and evidence.failure_message is not None else error.message
    return explain_failure(trace.ops[error.op_index], flow, evidence, message)
