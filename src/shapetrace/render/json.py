"""The trace as plain data: schema ``shapetrace.trace/1``, documented in docs/json-schema.md."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import asdict
from json.encoder import c_make_encoder, encode_basestring_ascii
from typing import TYPE_CHECKING, Any, TextIO

from shapetrace.capture.records import ModuleCall, OpRecord, TensorMeta
from shapetrace.contracts import ContractViolation, UnresolvedHint
from shapetrace.diagnose import Diagnostic
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


def diagnostic_to_dict(d: Diagnostic) -> dict[str, Any]:
    return {
        "kind": d.kind,
        "severity": d.severity,
        "file": d.file,
        "line": d.line,
        "op_index": d.op_index,
        "op": d.op,
        "module": d.module,
        "code": d.code,
        "message": d.message,
        "fix": d.fix,
        "fix_checked": d.fix_checked,
        "edits": [asdict(e) for e in d.edits],  # file, line, col, end_line, end_col, text
        "details": list(d.details),
        "count": d.count,
        "operands": [
            {"role": o.role, **tensor_to_dict(o.meta), "origin": o.origin.text if o.origin else None}
            for o in d.operands
        ],
    }


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


def op_to_dict(op: OpRecord) -> dict[str, Any]:
    return {**_op_head(op), **_tensors_to_dict(op)}


def module_to_dict(call: ModuleCall) -> dict[str, Any]:
    return {**_module_head(call), **_tensors_to_dict(call)}


def _op_head(op: OpRecord) -> dict[str, Any]:
    """An op's keys before its tensors."""
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
    }


def _module_head(call: ModuleCall) -> dict[str, Any]:
    """A module call's keys before its tensors."""
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
    }


def _tensors_to_dict(record: OpRecord | ModuleCall) -> dict[str, Any]:
    """An op's or a module call's last keys: its tensors."""
    return {
        "inputs": [tensor_to_dict(t) for t in record.inputs],
        "outputs": [tensor_to_dict(t) for t in record.outputs],
    }


def trace_to_dict(trace: Trace) -> dict[str, Any]:
    return {key: list(value) if isinstance(value, Iterator) else value for key, value in _sections(trace)}


_WRITE_EVERY = 1000  # items encoded per write


def write_json(trace: Trace, out: TextIO) -> None:
    """Write the trace to ``out`` as :func:`trace_to_dict` gives it, streamed: one op, module call
    or diagnostic per line, each encoded by ``json``'s C encoder as it comes and written a thousand
    lines at a time (a trace of a million ops is written without its whole document in memory)."""
    encode = _encoder()
    out.write("{")
    for n, (key, value) in enumerate(_sections(trace, _RecordWriter(encode))):
        out.write(("\n  " if n == 0 else ",\n  ") + encode(key) + ": ")
        if isinstance(value, Iterator):
            out.write("[")
            lines: list[str] = []
            count = 0
            for count, item in enumerate(value, 1):
                text = item if isinstance(item, str) else encode(item)  # ops and module calls come as text
                lines.append(("\n    " if count == 1 else ",\n    ") + text)
                if len(lines) == _WRITE_EVERY:
                    out.write("".join(lines))
                    lines.clear()
            out.write("".join(lines) + ("\n  ]" if count else "]"))
        else:
            out.write(encode(value))
    out.write("\n}\n")


def _encoder() -> Callable[[Any], str]:
    """``json.dumps`` of plain data without indent, through one C encoder for the whole file
    (``JSONEncoder.encode`` makes a new one per call, ~2 µs per op); the pure-Python encoder
    where ``json`` has no C accelerator."""
    encoder = json.JSONEncoder(separators=(", ", ": "), check_circular=False)
    if c_make_encoder is None:
        return encoder.encode
    # markers (no circular check), default, string encoder, indent, separators, sort_keys, skipkeys, allow_nan
    chunks = c_make_encoder(None, encoder.default, encode_basestring_ascii, None, ": ", ", ", False, False, True)
    return lambda value: "".join(chunks(value, 0))


class _RecordWriter:
    """Ops and module calls as JSON text: the keys before the tensors encoded from
    :func:`_op_head`/:func:`_module_head`, and each tensor from :func:`tensor_to_dict` once per
    distinct metadata with only its ``id`` (the last key) written per tensor. A trace's tensors
    repeat their shapes, dtypes and expressions; each tensor's dict cost ~4 µs to build and encode."""

    def __init__(self, encode: Callable[[Any], str]) -> None:
        self.encode = encode
        self._heads: dict[tuple, str] = {}  # a tensor's metadata without its id -> its text up to the id

    def op(self, op: OpRecord) -> str:
        return self.encode(_op_head(op))[:-1] + self._tensors(op)

    def module(self, call: ModuleCall) -> str:
        return self.encode(_module_head(call))[:-1] + self._tensors(call)

    def _tensors(self, record: OpRecord | ModuleCall) -> str:
        inputs = ", ".join([self._tensor(t) for t in record.inputs])
        outputs = ", ".join([self._tensor(t) for t in record.outputs])
        return f', "inputs": [{inputs}], "outputs": [{outputs}]}}'

    def _tensor(self, meta: TensorMeta) -> str:
        key = (meta.shape, meta.dtype, meta.device, meta.requires_grad, meta.path, meta.expr, meta.expr_exact)
        head = self._heads.get(key)
        if head is None:
            text = self.encode({**tensor_to_dict(meta), "id": 0})
            head = self._heads[key] = text[: -len("0}")]
        return f"{head}{meta.tensor_id}}}"


def _sections(trace: Trace, writer: _RecordWriter | None = None) -> Iterator[tuple[str, Any]]:
    """The document's keys in order; long lists as iterators of plain dicts (ops and module
    calls as their JSON text, with a ``writer``)."""
    error = trace.error
    yield "schema", SCHEMA
    yield "model", {"type": trace.summary.model_type, "parameters": trace.summary.parameters}
    yield "ops", (op_to_dict(op) for op in trace.ops) if writer is None else map(writer.op, trace.ops)
    yield "modules", (module_to_dict(m) for m in trace.modules) if writer is None else map(writer.module, trace.modules)
    yield "error", None if error is None else {"type": error.type, "message": error.message, "op_index": error.op_index}
    yield "notes", list(trace.notes)
    yield "contracts", [violation_to_dict(v) for v in trace.contracts]
    yield "contract_warnings", [unresolved_to_dict(h) for h in trace.contract_warnings]
    yield "diagnostics", (diagnostic_to_dict(d) for d in trace.diagnostics)
    yield from symbolic_to_dict(trace).items()
