"""What the symbolic pass needs from a finished trace, taken before the recorder lets go of it;
the pass itself runs the first time the trace's shapes are read.

This module imports nothing heavy: a pass with no dim name to work with is skipped before
torch's fake-tensor and symbolic-shape machinery (and ``torch._dynamo``, which ``ShapeEnv``
imports: seconds) is loaded.
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

from torch import nn

from shapetrace.capture.names import op_names
from shapetrace.capture.recorder import Recorder
from shapetrace.capture.records import CallEntries, OpEntries
from shapetrace.symbolic.listener import ArgumentKeeper
from shapetrace.symbolic.naming import factory_dim_names
from shapetrace.symbolic.result import SymbolicResult, skipped
from shapetrace.symbolic.spec import DimsOption

MIN_BUDGET = 2.0  # seconds: the default budget is the larger of this and FORWARD_MULTIPLE x the forward
FORWARD_MULTIPLE = 5.0

FREED = (
    "the traced model was freed before the trace was read (hold_modules=False): keep a reference "
    "to it until then"
)
NO_NAMES = "no dim has a name: no module call, no dims=, no inputs made like torch.rand(B, C, H, W)"

# progress(done_ops, total_ops): called while the pass runs (the CLI shows it)
Progress = Callable[[int, int], None]


def check_budget(budget: float | None) -> float | None:
    """``symbolic_budget=`` as given: ``None`` (the default budget) or a positive number of seconds
    (``math.inf``: no limit); anything else raises ``ValueError``."""
    if budget is None:
        return None
    if isinstance(budget, bool) or not isinstance(budget, (int, float)) or math.isnan(budget) or budget <= 0:
        raise ValueError(f"symbolic_budget must be a positive number of seconds (or None), not {budget!r}")
    return float(budget)


@dataclass
class Job:
    """The recorder's raw ops and module calls, the arguments of ops outside module calls and of
    root module calls (kept by :class:`~shapetrace.symbolic.listener.ArgumentKeeper`), the user's
    names, and the time the traced forward took (root module calls, else the whole block) for the
    pass's budget.

    A job made by :meth:`capture` holds the model and the root modules by weak reference (a trace
    nobody reads keeps no model alive); :meth:`run` takes them back, or skips the pass when one
    was freed."""

    ops: OpEntries
    modules: CallEntries
    top_args: dict[int, tuple]
    root_calls: dict[int, tuple]  # call index -> (module or its weak reference, args, kwargs, grad enabled, training)
    option: DimsOption
    model: nn.Module | weakref.ReferenceType[nn.Module] | None
    forward_seconds: float = 0.0
    budget: float | None = None  # seconds; None: the larger of MIN_BUDGET and FORWARD_MULTIPLE x forward
    values: dict[int, Any] = field(default_factory=dict)  # op index -> a Python value read from data

    @classmethod
    def capture(
        cls, recorder: Recorder, kept: ArgumentKeeper, option: DimsOption, model: nn.Module | None,
        budget: float | None = None, block_seconds: float = 0.0,
    ) -> Job:  # fmt: skip
        forward = kept.root_seconds or block_seconds
        roots = {index: (weakref.ref(call[0]), *call[1:]) for index, call in kept.root_calls.items()}
        held = weakref.ref(model) if model is not None else None
        return cls(recorder.ops, recorder.modules, kept.top_args, roots, option, held, forward, budget, recorder.values)

    @property
    def seconds(self) -> float:
        """The pass's budget in seconds."""
        if self.budget is not None:
            return self.budget
        return max(MIN_BUDGET, FORWARD_MULTIPLE * self.forward_seconds)

    def run(self, progress: Progress | None = None) -> SymbolicResult:
        """Run the pass (imports torch's symbolic machinery on first use, and only when some dim
        has a name); never raises."""
        if not self.has_names():
            return skipped(NO_NAMES)
        live = self._alive()
        if live is None:
            return skipped(FREED)
        from shapetrace.symbolic.engine import run_pass

        return run_pass(live, progress)

    def _alive(self) -> Job | None:
        """This job with its model and root modules taken back from their weak references;
        ``None`` when one of them has been freed."""
        model = self.model() if isinstance(self.model, weakref.ref) else self.model
        roots = {}
        for index, (module, *rest) in self.root_calls.items():
            module = module() if isinstance(module, weakref.ref) else module
            if module is None:
                return None
            roots[index] = (module, *rest)
        if self.model is not None and model is None:
            return None
        return replace(self, root_calls=roots, model=model)

    def has_names(self) -> bool:
        """Whether any dim gets a name: ``dims=``/sizes, a root module call with a tensor argument
        (named by its ``forward``, or given generated names), or a factory call with variable
        sizes outside module calls."""
        if self.option:
            return True
        if any(self.modules[r].inputs for r in self.root_calls):
            return True
        for op in self.ops:
            if op.module_index is None and not op.inputs and len(op.outputs) == 1:
                found = factory_dim_names(op.code, op.lasti, op_names(op.func)[0], len(op.outputs[0].shape))
                if found and any(isinstance(size, str) for size in found):
                    return True
        return False
