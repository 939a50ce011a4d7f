"""Torch's structured trace log: the handler ``import torch`` installs removes itself at its first
record when it has nowhere to write (torch's behaviour, which drop_idle_trace_handler repeats
early), and stays with ``TORCH_TRACE`` set. Each case runs in a fresh process: a test before
may have made torch remove it already."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

HANDLERS = """
import torch
from torch._logging._internal import LazyTraceHandler, trace_log
def lazy():
    return [h for h in trace_log.handlers if isinstance(h, LazyTraceHandler)]
print(len(lazy()), end=" ")
{action}
print(len(lazy()))
"""
DROP = "from shapetrace._private.torch_logging import drop_idle_trace_handler\ndrop_idle_trace_handler()"


def _handlers_before_and_after(action: str, **env: str) -> str:
    environment = {k: v for k, v in os.environ.items() if k not in ("TORCH_TRACE", "MAST_HPC_JOB_NAME")}
    done = subprocess.run([sys.executable, "-c", HANDLERS.format(action=action)], capture_output=True, text=True,
                          timeout=120, env={**environment, **env})  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_torch_removes_its_idle_trace_handler_at_the_first_structured_record():
    assert _handlers_before_and_after('torch._logging.trace_structured("shapetrace_probe")') == "1 0"


@pytest.mark.parametrize("torch_first", [False, True], ids=["alone", "after torch removed it"])
def test_drop_idle_trace_handler_removes_it_where_torch_would(torch_first):
    action = 'torch._logging.trace_structured("shapetrace_probe")\n' if torch_first else ""
    assert _handlers_before_and_after(action + DROP) == "1 0"


def test_a_trace_directory_keeps_the_handler_and_gets_nothing_from_us(tmp_path):
    assert _handlers_before_and_after(DROP, TORCH_TRACE=str(tmp_path)) == "1 1"
    assert list(tmp_path.iterdir()) == []


PASS = """
import torch
import shapetrace
model = torch.nn.ReLU()
with shapetrace.trace(model, dims="B D") as t:
    model(torch.rand(2, 8))
assert t.ops[-1].outputs[0].expr == "(B, D)", t.ops[-1].outputs[0].expr
"""


def test_the_pass_leaves_torchs_trace_log_as_torch_would(tmp_path):
    assert _handlers_before_and_after(PASS) == "1 0"
    assert _handlers_before_and_after(PASS, TORCH_TRACE=str(tmp_path)) == "1 1"
    assert list(tmp_path.iterdir()) == []  # the pass's symbols and guards are not logged there
