"""What the symbolic pass needs from a finished trace, taken before the recorder lets go of it;
the pass itself runs the first time the trace's shapes are read."""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from shapetrace.capture.recorder import Recorder
from shapetrace.symbolic.listener import ArgumentKeeper
from shapetrace.symbolic.result import SymbolicResult
from shapetrace.symbolic.spec import DimsOption


@dataclass
class Job:
    """The recorder's raw ops and module calls, the arguments of ops outside module calls and of
    root module calls (kept by :class:`~shapetrace.symbolic.listener.ArgumentKeeper`), and the
    user's names."""

    ops: list
    modules: list
    top_args: dict[int, tuple]
    root_calls: dict[int, tuple]
    option: DimsOption
    model: nn.Module | None

    @classmethod
    def capture(cls, recorder: Recorder, kept: ArgumentKeeper, option: DimsOption, model: nn.Module | None) -> Job:
        return cls(recorder.ops, recorder.modules, kept.top_args, kept.root_calls, option, model)

    def run(self) -> SymbolicResult:
        """Run the pass (imports torch's symbolic machinery on first use); never raises."""
        from shapetrace.symbolic.engine import run_pass

        return run_pass(self)
