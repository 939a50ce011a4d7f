"""A finished capture: the recorder's entries, the error that ended the block, and the records
built from them on demand (metadata only; the recorder itself is released)."""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import CodeType

from shapetrace.capture.names import op_names
from shapetrace.capture.records import (
    CallEntries,
    ErrorRecord,
    ModuleCall,
    OpEntries,
    OpEntry,
    OpRecord,
    TensorEntry,
    TensorMeta,
    build,
)
from shapetrace.capture.source import line_of, operator_at, source_line

# entry index -> per tensor, its shape text as printed and exactly: ("(B, H/2)", "(B, (H - 1)//2 + 1)")
Exprs = Mapping[int, tuple[tuple[str, str], ...]]


@dataclass
class Recording:
    """What the recorder captured: op and module-call entries in order, the module calls whose
    line called a helper rather than the module (:attr:`Recorder.indirect_calls`), the error, and
    notes on what it could not record."""

    ops: OpEntries = field(default_factory=OpEntries)
    modules: CallEntries = field(default_factory=CallEntries)
    indirect_calls: set[int] = field(default_factory=set)
    error: ErrorRecord | None = None
    notes: tuple[str, ...] = ()  # what the trace could not show (TorchScript, compiled code)

    def module_records(self, inputs: Exprs = {}, outputs: Exprs = {}) -> list[ModuleCall]:  # noqa: B006
        """Every module call as a :class:`ModuleCall`; ``inputs``/``outputs`` give shape texts."""
        calls = []
        sites: dict[tuple, tuple[str, int, str]] = {}  # calls repeat their lines: read once each
        for i, entry in enumerate(self.modules):
            found = sites.get((entry.code, entry.lasti))
            if found is None:
                file, line = site(entry.code, entry.lasti)
                found = sites[entry.code, entry.lasti] = (file, line, source_line(file, line))
            file, line, code = found
            calls.append(
                build(
                    ModuleCall,
                    index=i, path=entry.path, type=entry.type, call=entry.call, parent=entry.parent,
                    depth=entry.depth, first_op=entry.first_op,
                    end_op=entry.first_op if entry.end_op is None else entry.end_op,
                    inputs=metas(entry.inputs, inputs.get(i)), outputs=metas(entry.outputs, outputs.get(i)),
                    failed=entry.failed, file=file, line=line, code=code, lasti=entry.lasti,
                )
            )  # fmt: skip
        return calls

    def op_records(self, modules: list[ModuleCall], inputs: Exprs = {}, outputs: Exprs = {}) -> list[OpRecord]:  # noqa: B006
        """Every op as an :class:`OpRecord` (``modules`` from :meth:`module_records`)."""
        records = []
        sites: dict[tuple, tuple[str, str, str, int, str]] = {}  # ops repeat their lines: read once each
        for i, entry in enumerate(self.ops):
            key = (entry.func, entry.code, entry.lasti)
            found = sites.get(key)
            if found is None:
                name, qualname = op_names(entry.func)
                if entry.code is not None:
                    name = operator_at(entry.code, entry.lasti) or name
                file, line = site(entry.code, entry.lasti)
                found = sites[key] = (name, qualname, file, line, source_line(file, line))
            name, qualname, file, line, code = found
            module = modules[entry.module_index] if entry.module_index is not None else None
            records.append(
                build(
                    OpRecord,
                    index=i, op=name, qualname=qualname,
                    module=module.path if module else None, module_call=module.call if module else None,
                    module_index=entry.module_index, file=file, line=line, code=code,
                    inputs=metas(entry.inputs, inputs.get(i)), outputs=metas(entry.outputs, outputs.get(i)),
                    failed=entry.failed, lasti=entry.lasti,
                )
            )  # fmt: skip
        return records


class Producers:
    """Which op made each tensor, over op entries or records (anything whose ``outputs`` have a
    ``tensor_id``): a live tensor's id cannot be reused, so the latest op before the consumer with
    that id among its outputs is its producer."""

    def __init__(self, ops: Sequence[OpEntry | OpRecord]) -> None:
        self._made: dict[int, list[int]] = {}
        for index, op in enumerate(ops):
            for out in op.outputs:
                self._made.setdefault(out.tensor_id, []).append(index)

    def made(self, tensor_id: int) -> list[int]:
        """The indices of the ops whose outputs had ``tensor_id``, in order (ids are reused after a
        tensor dies, so a later op may make another tensor with the same id)."""
        return self._made.get(tensor_id, [])

    def of(self, tensor_id: int, before: int | None = None) -> int | None:
        """The index of the op that made ``tensor_id``, the latest before op ``before`` (default:
        the latest of all), or ``None`` when no recorded op made it."""
        made = self._made.get(tensor_id)
        if not made:
            return None
        i = len(made) if before is None else bisect_left(made, before)
        return made[i - 1] if i else None


def site(code: CodeType | None, lasti: int) -> tuple[str, int]:
    """File and line of a recorded ``(code, lasti)``."""
    return (code.co_filename, line_of(code, lasti)) if code is not None else ("<unknown>", 0)


def metas(
    entries: tuple[TensorEntry, ...], exprs: tuple[tuple[str, str], ...] | None = None
) -> tuple[TensorMeta, ...]:
    """The :class:`TensorMeta` of each entry, with its shape texts when ``exprs`` has them per entry."""
    if exprs is None or len(exprs) != len(entries):
        return tuple([TensorMeta.from_entry(e) for e in entries])
    return tuple([TensorMeta.from_entry(e, *texts) for e, texts in zip(entries, exprs)])
