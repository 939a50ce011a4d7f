"""What the capture tests check after a trace: nothing of shapetrace's left installed."""

from __future__ import annotations

from torch import nn

from shapetrace._private.module_calls import global_module_hook_counts
from shapetrace._private.torch_api import torch_function_mode_depth


def module_hook_state(model: nn.Module) -> list[tuple]:
    return [
        (len(m._forward_hooks), len(m._forward_pre_hooks), len(m._backward_hooks),
         len(m._forward_hooks_always_called), len(m._forward_hooks_with_kwargs), "forward" in vars(m))
        for m in model.modules()
    ]  # fmt: skip


def assert_nothing_installed(model: nn.Module, before: list[tuple]) -> None:
    assert torch_function_mode_depth() == 0
    assert set(global_module_hook_counts().values()) == {0}
    assert module_hook_state(model) == before
