"""What the symbolic pass keeps while a block is traced: the arguments of ops called outside any
module, and of root module calls, each with its tensors replaced by metadata (:mod:`.skeleton`)."""

from __future__ import annotations

import sys
import time

import torch
from torch import nn

from shapetrace._private.module_calls import module_call_kwargs
from shapetrace.capture.recorder import Listener
from shapetrace.symbolic.skeleton import call_arguments, op_arguments


class ArgumentKeeper(Listener):
    """Keeps, without any tensor, what the pass needs to repeat a call on fake tensors:
    ``top_args`` (op index -> its ``(args, kwargs)`` skeleton) and ``root_calls`` (call index ->
    ``(module, args, kwargs, grad enabled, training)``), and how long the root calls took
    (``root_seconds``: the pass's budget scales with the forward)."""

    def __init__(self) -> None:
        self.top_args: dict[int, tuple] = {}
        self.root_calls: dict[int, tuple] = {}
        self.root_seconds = 0.0
        self._root_started = 0.0

    def top_op(self, index: int, args: tuple, kwargs: dict | None) -> None:
        self.top_args[index] = op_arguments(args, kwargs)

    def root_entered(self, index: int, module: nn.Module, args: tuple) -> None:
        kwargs = module_call_kwargs(sys._getframe(1)) or {}
        self.root_calls[index] = (
            module, call_arguments(args), call_arguments(kwargs), torch.is_grad_enabled(), module.training
        )  # fmt: skip
        self._root_started = time.perf_counter()

    def root_exited(self, module: nn.Module, args: tuple, kwargs_and_output: tuple) -> None:
        self.root_seconds += time.perf_counter() - self._root_started
