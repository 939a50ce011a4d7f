"""Checked fixes: a fix is re-run before it is printed.

The failing call is rebuilt from its recorded metadata on ``meta`` tensors (shapes, dtypes and
strides, no data: free at any size) and run twice: as recorded, where it must fail the way it
did, and with the fix applied, where it must pass. Only then is the fix printed as checked.
A CPU operand of a device mismatch is rebuilt on the CPU (small ones only) so that the mismatch
is reproduced; errors that depend on values (an index out of range) are re-run on small real
tensors that hold the values that matter.

The re-runs happen after the trace (or inside an enclosing one): ``__torch_function__`` dispatch
is off while they run, so an enclosing trace records nothing, and no module is called (its
hooks would fire): checks call the functional form.
"""

from __future__ import annotations

import ast
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from shapetrace._private.torch_api import DisableTorchFunction
from shapetrace.capture.records import TensorMeta
from shapetrace.diagnose.diagnostic import Edit
from shapetrace.diagnose.evidence import CallArguments, Opaque, OperandRef

# A CPU tensor is materialised (uninitialised) to reproduce a device mismatch only up to this size.
_CPU_LIMIT = 1 << 22

Check = Callable[[], bool]


@dataclass(frozen=True)
class Fix:
    """What to change: ``text`` for the reader, ``edits`` to the source when it is code, and
    ``check``, which re-runs the failing call with the fix applied and says whether it passed."""

    text: str
    edits: tuple[Edit, ...] = ()
    check: Check | None = field(default=None, compare=False)


def passes(check: Check | None) -> bool:
    """Run a check with torch-function dispatch off and warnings silenced; any error is a fail."""
    if check is None:
        return False
    try:
        with DisableTorchFunction(), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return bool(check())
    except Exception:
        return False


def raises(run: Callable[[], Any]) -> bool:
    """Whether ``run()`` raises (a check's reproduction of the original failure)."""
    try:
        run()
    except Exception:
        return True
    return False


def runs(run: Callable[[], Any]) -> bool:
    try:
        run()
    except Exception:
        return False
    return True


def fixed(original: Callable[[], Any], repaired: Callable[[], Any]) -> Check:
    """A check: ``original`` fails and ``repaired`` runs."""
    return lambda: raises(original) and runs(repaired)


def meta_tensor(meta: TensorMeta, contiguous: bool = True, device: str = "meta") -> torch.Tensor:
    """An uninitialised tensor with ``meta``'s shape and dtype (on ``device``); a non-contiguous
    one (its dims reversed in memory) when ``contiguous`` is false."""
    shape = tuple(meta.shape)
    if not all(isinstance(size, int) for size in shape):
        raise ValueError("a ragged or symbolic shape cannot be rebuilt")
    if contiguous or len(shape) < 2:
        return torch.empty(shape, dtype=meta.dtype, device=device)
    order = tuple(reversed(range(len(shape))))
    return torch.empty(tuple(shape[d] for d in order), dtype=meta.dtype, device=device).permute(order)


def like(shape: Sequence[int], dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """A meta tensor of ``shape``."""
    return torch.empty(tuple(shape), dtype=dtype, device="meta")


class Replay:
    """The failing call, rebuilt on meta tensors from its recorded arguments.

    ``run()`` calls it as recorded; ``run(operands={1: fn})`` with operand 1 replaced by
    ``fn(operand)``, ``run(args=..., kwargs=...)`` with other plain arguments. Operands are
    numbered as the recorder lists them (``OpRecord.inputs``)."""

    def __init__(self, func: Callable, call: CallArguments, inputs: Sequence[TensorMeta],
                 devices: Sequence[str] | None = None) -> None:  # fmt: skip
        self.func = func
        self.call = call
        self.inputs = tuple(inputs)
        self.devices = tuple(devices) if devices is not None else ("meta",) * len(self.inputs)

    @classmethod
    def of(
        cls, func: Callable | None, call: CallArguments | None, inputs: Sequence[TensorMeta]
    ) -> Replay | None:
        """A replay, when every argument is plain (no opaque object) and every shape is known."""
        if func is None or call is None or len(call.contiguous) != len(inputs):
            return None
        if _has_opaque(call.args) or _has_opaque(tuple(v for _, v in call.kwargs)):
            return None
        if not all(all(isinstance(s, int) for s in m.shape) for m in inputs):
            return None
        return cls(func, call, inputs)

    def on_devices(self, devices: Sequence[str]) -> Replay:
        """The same call with operand ``i`` on ``devices[i]`` (``"cpu"`` or ``"meta"``)."""
        return Replay(self.func, self.call, self.inputs, devices)

    def operand(self, index: int) -> torch.Tensor:
        meta = self.inputs[index]
        device = self.devices[index]
        if device == "cpu" and _numel(meta.shape) > _CPU_LIMIT:
            raise ValueError("too large to rebuild on the CPU")
        return meta_tensor(meta, self.call.contiguous[index], device)

    def arguments(self, operands: dict[int, Callable[[torch.Tensor], torch.Tensor]] | None = None
                  ) -> tuple[list[Any], dict[str, Any]]:  # fmt: skip
        """The call's arguments with meta tensors in place of the operands."""
        tensors = [self.operand(i) for i in range(len(self.inputs))]
        for index, change in (operands or {}).items():
            tensors[index] = change(tensors[index])

        def build(value: Any) -> Any:
            if isinstance(value, OperandRef):
                return tensors[value.index]
            if isinstance(value, list):
                return [build(v) for v in value]
            if isinstance(value, tuple):
                return tuple(build(v) for v in value)
            return value

        return [build(v) for v in self.call.args], {k: build(v) for k, v in self.call.kwargs}

    def run(self, operands: dict[int, Callable[[torch.Tensor], torch.Tensor]] | None = None,
            args: dict[int, Any] | None = None, kwargs: dict[str, Any] | None = None) -> Any:  # fmt: skip
        """Run the call with the given operands replaced, positional arguments (by position) and
        keyword arguments set."""
        positional, keywords = self.arguments(operands)
        for position, value in (args or {}).items():
            while len(positional) <= position:
                positional.append(None)
            positional[position] = value
        keywords.update(kwargs or {})
        return self.func(*positional, **keywords)

    def check(self, operands: dict[int, Callable[[torch.Tensor], torch.Tensor]] | None = None,
              args: dict[int, Any] | None = None, kwargs: dict[str, Any] | None = None,
              accept: Callable[[Any], bool] | None = None) -> Check:  # fmt: skip
        """A check: the call as recorded fails, and with these changes it runs (and its result
        passes ``accept``)."""

        def repaired() -> None:
            result = self.run(operands, args, kwargs)
            if accept is not None and not accept(result):
                raise ValueError("the repaired call gives the wrong result")

        return fixed(self.run, repaired)


def site_arguments(
    node: ast.AST, operand_nodes: Sequence[ast.AST | None], method: bool
) -> CallArguments | None:
    """The arguments of a call that did not fail (so none were kept), read from its source: each
    operand's expression becomes its :class:`OperandRef`, literals (``2``, ``-1``,
    ``float("-inf")``, ``(1, 2)``) their values. ``None`` when any other argument is there."""
    refs = {id(n): OperandRef(i) for i, n in enumerate(operand_nodes) if n is not None}
    if len(refs) != len(operand_nodes):
        return None

    def value(arg: ast.AST) -> Any:
        if id(arg) in refs:
            return refs[id(arg)]
        return _literal(arg)

    try:
        if isinstance(node, (ast.BinOp, ast.Compare)) and len(operand_nodes) == 2:
            args: tuple = (refs[id(operand_nodes[0])], refs[id(operand_nodes[1])])
            return CallArguments(args, (), (True, True))
        if not isinstance(node, ast.Call) or any(isinstance(a, ast.Starred) for a in node.args):
            return None
        receiver = [node.func.value] if method and isinstance(node.func, ast.Attribute) else []
        args = tuple(value(a) for a in [*receiver, *node.args])
        kwargs = tuple((k.arg, value(k.value)) for k in node.keywords if k.arg)
        if any(k.arg is None for k in node.keywords):
            return None
        return CallArguments(args, kwargs, (True,) * len(operand_nodes))
    except ValueError:
        return None


def _literal(node: ast.AST) -> Any:
    if (
        isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("float", "int")
        and len(node.args) == 1 and not node.keywords
    ):  # fmt: skip
        return {"float": float, "int": int}[node.func.id](_literal(node.args[0]))
    return ast.literal_eval(node)


def _has_opaque(values: tuple) -> bool:
    for value in values:
        if isinstance(value, Opaque):
            return True
        if isinstance(value, (list, tuple)) and _has_opaque(tuple(value)):
            return True
        if isinstance(value, slice) and _has_opaque((value.start, value.stop, value.step)):
            return True
    return False


def _numel(shape: Sequence[int]) -> int:
    total = 1
    for size in shape:
        total *= size
    return total
