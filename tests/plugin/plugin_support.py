"""Helpers for the plugin's tests: a small model written next to the inner test files, and the
report sections the plugin adds."""

from __future__ import annotations

import textwrap

import pytest

NET = '''
import torch
from jaxtyping import Float
from torch import Tensor, nn


class Net(nn.Module):
    def __init__(self, d=8, out=4):
        super().__init__()
        self.fc = nn.Linear(d, out)

    def forward(self, x):
        h = self.fc(x)                  # (B, 4)
        return h.unsqueeze(1)           # (B, 1, 4)


class Pair(nn.Module):
    def forward(self, x: Float[Tensor, "B N"], y: Float[Tensor, "B N"]) -> Float[Tensor, "B N"]:
        return x * y
'''


def write_tests(pytester: pytest.Pytester, source: str, name: str = "test_model") -> None:
    pytester.makepyfile(**{name: textwrap.dedent(source)})


def sections(reports) -> dict[str, list[tuple[str, str]]]:
    """``test name -> [(title, text)]``: the shapetrace sections of each call report."""
    return {
        report.nodeid.split("::")[-1]: [(title, text) for title, text in report.sections if "shapetrace" in title]
        for report in reports
        if report.when == "call"
    }
