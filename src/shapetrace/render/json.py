"""The trace as plain data: schema ``shapetrace.trace/1``, documented in docs/json-schema.md."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shapetrace.capture.records import ModuleCall, OpRecord, TensorMeta
from shapetrace.contracts.render import unresolved_to_dict, violation_to_dict
from shapetrace.symbolic.result import symbolic_to_dict

if TYPE_CHECKING:
    from shapetrace.trace import Trace

SCHEMA = "shapetrace.trace/1"


def tensor_to_dict(meta: TensorMeta) -> dict[str, Any]:
    return {
        "shape": [size if isinstance(size, int) else str(size) for size in meta.shape],
        "dtype": meta.dtype_name,
        "device": meta.device_name,
        "requires_grad": meta.requires_grad,
        "expr": meta.expr,
        "expr_exact": meta.expr_exact,
        "path": meta.path,
        "id": meta.tensor_id,
    }


def op_to_dict(op: OpRecord) -> dict[str, Any]:
    return {
        "index": op.index,
        "op": op.op,
        "qualname": op.qualname,
        "module": op.module,
        "module_call": op.module_call,
        "file": op.file,
        "line": op.line,
        "code": op.code,
        "failed": op.failed,
        "inputs": [tensor_to_dict(t) for t in op.inputs],
        "outputs": [tensor_to_dict(t) for t in op.outputs],
    }


def module_to_dict(call: ModuleCall) -> dict[str, Any]:
    return {
        "index": call.index,
        "path": call.path,
        "type": call.type,
        "call": call.call,
        "parent": call.parent,
        "depth": call.depth,
        "first_op": call.first_op,
        "end_op": call.end_op,
        "failed": call.failed,
        "file": call.file,
        "line": call.line,
        "code": call.code,
        "inputs": [tensor_to_dict(t) for t in call.inputs],
        "outputs": [tensor_to_dict(t) for t in call.outputs],
    }


def trace_to_dict(trace: Trace) -> dict[str, Any]:
    error = trace.error
    return {
        "schema": SCHEMA,
        "model": {"type": trace.summary.model_type, "parameters": trace.summary.parameters},
        "ops": [op_to_dict(op) for op in trace.ops],
        "modules": [module_to_dict(m) for m in trace.modules],
        "error": None
        if error is None
        else {"type": error.type, "message": error.message, "op_index": error.op_index},
        "contracts": [violation_to_dict(v) for v in trace.contracts],
        "contract_warnings": [unresolved_to_dict(h) for h in trace.contract_warnings],
        "diagnostics": [d.to_dict() for d in trace.diagnostics],
        **symbolic_to_dict(trace),
    }
