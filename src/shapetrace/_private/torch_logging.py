"""Torch's structured trace log (``TORCH_TRACE``, read by tlparse), as the symbolic pass meets it."""

from __future__ import annotations

import os

import torch
from torch._logging._internal import LazyTraceHandler, trace_log


def drop_idle_trace_handler() -> None:
    """Remove torch's structured-trace handler where it would remove itself at its first record.

    ``import torch`` installs a :class:`LazyTraceHandler` on the trace log even without
    ``TORCH_TRACE``; while it is there, every structured event torch logs is built first
    (``ShapeEnv.create_symbol`` captures two stack traces per symbol: ~0.3 ms). The first record
    it receives makes it remove itself when it has no directory to write to, outside Meta's
    cluster jobs (``LazyTraceHandler.emit``). The pass drops its thread's log records
    (symbolic/effects.py), so that first record never reaches it, and the pass paid for every
    event it would log: 3-6% of a pass. This removes it in exactly that case, as torch would;
    with ``TORCH_TRACE`` set (a directory) or on such a job it stays."""
    for handler in list(trace_log.handlers):
        if isinstance(handler, LazyTraceHandler) and handler.root_dir is None and _removes_itself():
            trace_log.removeHandler(handler)


def _removes_itself() -> bool:
    """``LazyTraceHandler.emit``'s first branch without a directory: a build with a git version
    (every release) outside a MAST job turns the handler off."""
    return hasattr(torch.version, "git_version") and os.getenv("MAST_HPC_JOB_NAME") is None
