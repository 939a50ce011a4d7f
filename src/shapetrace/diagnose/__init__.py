"""The debugger: why the traced block failed, and the bugs that raise nothing.

- :func:`diagnose`: the failing op explained by kind (shapes, dtypes, devices, where each operand
  came from, the fix — checked by re-running it), or the torch module whose construction raised;
  then the lints of the whole trace: device bugs waiting for a GPU, shape bugs that broadcast or
  reshape silently, modules and parameters the model does not register or never uses.
- :func:`attach_note`: the failure's diagnosis as a PEP 678 note on the exception.
"""

from __future__ import annotations

import warnings
from typing import TYPE_CHECKING

from shapetrace.diagnose.construction import explain_building
from shapetrace.diagnose.diagnostic import ERROR, WARNING, Diagnostic, Edit, Operand, Origin, apply_edits
from shapetrace.diagnose.evidence import Evidence
from shapetrace.diagnose.explain import explain_failure
from shapetrace.diagnose.lints import device_lints
from shapetrace.diagnose.model_lints import model_lints
from shapetrace.diagnose.provenance import Dataflow
from shapetrace.diagnose.shape_lints import shape_lints

if TYPE_CHECKING:
    from shapetrace.trace import Trace

__all__ = [
    "ERROR", "WARNING", "Diagnostic", "Edit", "Evidence", "Operand", "Origin", "apply_edits", "attach_note",
    "diagnose",
]  # fmt: skip

NOTE_PREFIX = "shapetrace:"


def diagnose(trace: Trace) -> list[Diagnostic]:
    """The failure's diagnosis first (when an op raised, or a module's construction did), then
    the lints, in op order (lints about how the model was built last)."""
    flow = Dataflow(trace, trace.evidence)
    failure = _explain_failure(trace, flow)
    found = [failure] if failure is not None else []
    explained = set(failure.subjects) if failure is not None else set()
    lints: list[Diagnostic] = []
    for lint in (device_lints, shape_lints, model_lints):
        try:
            lints.extend(lint(trace, flow))
        except Exception as error:  # a lint's bug must not hide the failure's diagnosis
            warnings.warn(f"shapetrace: {lint.__name__} failed: {error!r}", RuntimeWarning, stacklevel=2)
    lints.sort(key=lambda d: (d.op_index is None, d.op_index or 0))
    found.extend(lint for lint in lints if not explained.intersection(lint.subjects))
    return found


def attach_note(trace: Trace, exc: BaseException) -> None:
    """Add the failure's diagnosis to ``exc`` as a note (once, however many traces it leaves).

    Computed here from the concrete records; ``Trace.diagnostics`` is computed again when read,
    with symbolic shapes if the symbolic pass gives them."""
    if not isinstance(exc, Exception) or trace.error is None:
        return
    if trace.error.op_index is None and (trace.evidence is None or trace.evidence.building is None):
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
    if error is None:
        return None
    building = evidence.building if evidence is not None else None
    if building is not None:  # raised inside a torch module's __init__, by an op torch ran there or not
        return explain_building(building, error.message)
    if error.op_index is None:
        return None
    op = trace.ops[error.op_index]
    message = evidence.failure_message if evidence and evidence.failure_message is not None else error.message
    return explain_failure(op, flow, evidence, message)
