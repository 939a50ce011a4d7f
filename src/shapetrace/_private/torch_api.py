"""Private torch APIs used by capture: one place to change when torch moves them."""

from __future__ import annotations

import weakref

import torch
from torch.utils.hooks import RemovableHandle

# Context manager that turns off __torch_function__ dispatch (modes and subclasses) on this
# thread. Module hooks run while the recorder's mode is active; reading tensor metadata there
# would otherwise dispatch every `.shape` through the mode.
DisableTorchFunction = torch._C.DisableTorchFunction

# The base class whose methods and properties the recorder sees as `func`.
TensorBase = torch._C.TensorBase


def register_global_forward_hook(hook) -> RemovableHandle:
    """``register_module_forward_hook(hook, with_kwargs=True, always_call=True)`` whose handle
    also clears the with_kwargs registry: torch's handle forgets that entry on remove()."""
    from torch.nn.modules import module

    handle = module.register_module_forward_hook(hook, with_kwargs=True, always_call=True)
    handle.extra_dict_ref += (weakref.ref(module._global_forward_hooks_with_kwargs),)
    return handle


def torch_function_mode_depth() -> int:
    """How many TorchFunctionModes are active on this thread (tests check none is left behind)."""
    return torch._C._len_torch_function_stack()


def global_module_hook_counts() -> dict[str, int]:
    """Sizes of torch's global module hook registries (tests check none is left behind)."""
    from torch.nn.modules import module

    names = (
        "_global_forward_pre_hooks", "_global_forward_hooks", "_global_forward_hooks_always_called",
        "_global_forward_hooks_with_kwargs", "_global_backward_pre_hooks", "_global_backward_hooks",
    )  # fmt: skip
    return {name: len(getattr(module, name)) for name in names}
