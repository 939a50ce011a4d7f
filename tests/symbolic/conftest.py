"""Helpers for the symbolic-shape tests."""

from __future__ import annotations

import pytest


def outputs(trace, line_text: str) -> list[str]:
    """The output expressions of the ops on the line whose code contains ``line_text``."""
    found = [meta.shape_text() for op in trace.ops if line_text in op.code for meta in op.outputs]
    assert found, f"no op on a line with {line_text!r}"
    return found


@pytest.fixture
def exprs():
    return outputs


@pytest.fixture(autouse=True)
def generous_default_budget(monkeypatch):
    """The default budget (the larger of 2 s and 5x the forward) is for users; a loaded test
    machine can take longer than that on a tiny model's first pass. Tests that are not about
    the budget get 60 s (test_symbolic_budget.py overrides this fixture)."""
    from shapetrace.symbolic import job

    monkeypatch.setattr(job, "MIN_BUDGET", 60.0)
