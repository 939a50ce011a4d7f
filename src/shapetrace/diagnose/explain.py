"""Explaining the op that raised: which operands, which dims, where they came from, what to change.

Each explainer works from the recorded op (name, qualname, operand metadata), the failing call's
plain arguments and the module records; torch's message only confirms which kind it is. The
explainers live with their family: devices and dtypes (:mod:`.devices`), shapes
(:mod:`.shapes`), windows larger than their input (:mod:`.kernels`), normalization layers
(:mod:`.norms`), class-index lookups (:mod:`.losses`),
attention (:mod:`.attention`); the first that recognises the failure explains it.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable

from shapetrace.capture.records import OpRecord
from shapetrace.diagnose.attention import explain_einsum, explain_sdpa
from shapetrace.diagnose.devices import explain_device, explain_dtype
from shapetrace.diagnose.diagnostic import Diagnostic
from shapetrace.diagnose.evidence import Evidence
from shapetrace.diagnose.failing import FailingOp
from shapetrace.diagnose.kernels import explain_kernel_size
from shapetrace.diagnose.losses import explain_embedding_index, explain_loss_target
from shapetrace.diagnose.norms import explain_batch_norm, explain_group_norm, explain_layer_norm
from shapetrace.diagnose.provenance import Dataflow
from shapetrace.diagnose.shapes import (
    explain_broadcast,
    explain_cat,
    explain_conv,
    explain_expand,
    explain_linear,
    explain_matmul,
    explain_view,
)

EXPLAINERS: tuple[Callable[[FailingOp], Diagnostic | None], ...] = (
    explain_device, explain_dtype, explain_embedding_index, explain_loss_target, explain_linear,
    explain_matmul, explain_cat, explain_view, explain_kernel_size, explain_conv, explain_expand,
    explain_layer_norm, explain_group_norm, explain_batch_norm, explain_sdpa, explain_einsum, explain_broadcast,
)  # fmt: skip


def explain_failure(op: OpRecord, flow: Dataflow, evidence: Evidence | None, message: str) -> Diagnostic:
    """The diagnosis of the op that raised ``message``."""
    failure = FailingOp(op, flow, evidence, message)
    for explain in EXPLAINERS:
        try:
            found = explain(failure)
        except Exception as error:  # one explainer's bug must not hide the failure: try the next
            warnings.warn(f"shapetrace: {explain.__name__} failed: {error!r}", RuntimeWarning, stacklevel=2)
            continue
        if found is not None:
            return found
    first = message.strip().splitlines()[0] if message.strip() else "(no message)"
    return failure.diagnostic("op-error", f"{failure.what} raised: {first}")
