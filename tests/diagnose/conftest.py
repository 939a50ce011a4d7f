"""Fixtures for the debugger's tests: run a planted model under a trace, keep trace and exception."""

from __future__ import annotations

import pytest

from shapetrace import trace
from shapetrace.diagnose import ERROR


@pytest.fixture
def run_failing():
    """``run_failing(model, *args)``: trace ``model(*args)``, which must raise; returns the trace,
    the exception, and the trace's one failure diagnosis."""

    def run(model, *args):
        with pytest.raises(Exception) as info, trace(model) as t:
            model(*args)
        failures = [d for d in t.diagnostics if d.severity == ERROR]
        assert len(failures) == 1, t.diagnostics
        return t, info.value, failures[0]

    return run


@pytest.fixture
def plain_error():
    """``plain_error(model, *args)``: the exception ``model(*args)`` raises without any trace."""

    def run(model, *args) -> BaseException:
        with pytest.raises(Exception) as info:
            model(*args)
        return info.value

    return run
