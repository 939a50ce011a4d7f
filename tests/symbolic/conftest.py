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
