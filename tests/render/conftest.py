"""Shared by the view tests: one traced 12-layer SmallGPT (small dims), traced once per session."""

from __future__ import annotations

import pytest
from views_support import small_gpt, trace_gpt


@pytest.fixture(scope="session")
def gpt12():
    """``(model, trace)``: SmallGPT with 12 blocks, D 16, on a (2, 16) batch, traced with the model."""
    model = small_gpt(depth=12)
    return model, trace_gpt(model)
