"""The ``shapes`` fixture's object: traces calls, and hands each trace to the plugin."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from typing import Any

from torch import nn

from shapetrace.testing.traced import Dims, TracedCall, _label, _run, traced
from shapetrace.trace import Trace


class Shapes:
    """``shapes(model, x, dims="B C H W")`` runs ``model(x)`` under a trace and returns a
    :class:`~shapetrace.testing.TracedCall` (``sizes={"D": 512}`` names constants);
    ``with shapes.trace(model, dims=...) as t:`` traces a block (``t.output`` is then what you
    set). Contract violations raise unless ``on_violation`` says otherwise. Each trace goes into
    the test's report if the test fails, and into its shape snapshot."""

    def __init__(self, keep: Callable[[str, Trace], None]) -> None:
        self._keep = keep

    def __repr__(self) -> str:
        return "<shapes fixture: shapes(model, *args, dims=...) traces one call>"

    def __call__(
        self,
        fn: Callable,
        *args: Any,
        dims: Dims = None,
        sizes: Mapping[str, int] | None = None,
        on_violation: str = "raise",
        **kwargs: Any,
    ) -> TracedCall:
        __tracebackhide__ = True
        return _run(fn, args, kwargs, dims, sizes, on_violation, partial(self._keep, _label(fn)))

    @contextmanager
    def trace(
        self,
        model: nn.Module | None = None,
        *,
        dims: Dims = None,
        sizes: Mapping[str, int] | None = None,
        on_violation: str = "raise",
    ) -> Iterator[TracedCall]:
        __tracebackhide__ = True
        keep = partial(self._keep, _label(model) if model is not None else "block")
        with traced(model, dims, sizes, on_violation, keep) as call:
            yield call
