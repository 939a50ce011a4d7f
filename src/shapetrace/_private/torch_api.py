"""Private torch APIs used by capture: one place to change when torch moves them."""

from __future__ import annotations

import weakref

import torch
from torch.nn.modules import module as _nn_module
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
    handle = _nn_module.register_module_forward_hook(hook, with_kwargs=True, always_call=True)
    handle.extra_dict_ref += (weakref.ref(_nn_module._global_forward_hooks_with_kwargs),)
    return handle


def torch_function_mode_depth() -> int:
    """How many TorchFunctionModes are active on this thread (tests check none is left behind)."""
    return torch._C._len_torch_function_stack()


def global_module_hook_counts() -> dict[str, int]:
    """Sizes of torch's global module hook registries (tests check none is left behind)."""
    names = (
        "_global_forward_pre_hooks", "_global_forward_hooks", "_global_forward_hooks_always_called",
        "_global_forward_hooks_with_kwargs", "_global_backward_pre_hooks", "_global_backward_hooks",
    )  # fmt: skip
    return {name: len(getattr(_nn_module, name)) for name in names}


def module_call_kwargs(frame, _call_impl=torch.nn.Module._call_impl.__code__, _max_depth: int = 8) -> dict | None:
    """The keyword arguments of the module call a global forward pre-hook runs in: global
    pre-hooks receive only the positional ones, ``Module._call_impl(self, *args, **kwargs)`` holds
    the rest. ``frame`` is a frame of the hook; ``None`` when no ``_call_impl`` frame is found."""
    for _ in range(_max_depth):
        if frame is None:
            return None
        if frame.f_code is _call_impl:
            kwargs = frame.f_locals.get("kwargs")
            return kwargs if isinstance(kwargs, dict) else None
        frame = frame.f_back
    return None


def module_call_frame(
    frame,
    _call_impl=torch.nn.Module._call_impl.__code__,
    _wrapped_call_impl=torch.nn.Module._wrapped_call_impl.__code__,
    _max_depth: int = 8,
):
    """The ``Module.__call__`` frame of the module call a global forward pre-hook runs in (its
    ``f_back`` is the frame that called the module); ``frame`` is a frame of the hook. ``None``
    when no ``_call_impl`` frame is found."""
    for _ in range(_max_depth):
        if frame is None:
            return None
        if frame.f_code is _call_impl:
            outer = frame.f_back
            return outer if outer is not None and outer.f_code is _wrapped_call_impl else frame
        frame = frame.f_back
    return None


# Above a global forward pre-hook's own frame, torch's frames are: ``inner`` (the closure of
# ``Module._call_impl`` that calls hooks), ``_call_impl``, then ``Module.__call__``
# (``_wrapped_call_impl``), this many frames up. The recorder reads that frame directly (one frame
# object made, not three) when its code is MODULE_CALL_CODE, and walks with
# :func:`module_call_frame` when torch lays them out otherwise.
HOOK_TO_MODULE_CALL = 3
MODULE_CALL_CODE = torch.nn.Module._wrapped_call_impl.__code__


def named_modules_walk(root: torch.nn.Module) -> tuple[list[tuple[torch.nn.Module, str]], dict[int, str]]:
    """``list(root.named_modules())`` and ``{id(module): path}``, in one pass over torch's registries
    of submodules (every trace starts with it: no generator, no call per module). A module reachable
    twice keeps its first path; modules are told apart by identity, not by their ``__eq__``."""
    modules: list[tuple[torch.nn.Module, str]] = []
    paths: dict[int, str] = {}
    pending = [(root, "")]  # a stack: named_modules()'s depth-first, pre-order walk
    while pending:
        module, path = pending.pop()
        key = id(module)
        if key in paths:
            continue
        paths[key] = path
        modules.append((module, path))
        children = module._modules
        if children:  # most modules are leaves
            prefix = path + "." if path else ""
            for name, child in reversed(children.items()):
                if child is not None:
                    pending.append((child, prefix + name))
    return modules, paths


def child_modules(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """``module``'s direct submodules with their names (``named_children()`` without the generator
    and its de-duplication; walks that run at every trace start use it)."""
    return [(name, child) for name, child in module._modules.items() if child is not None]


def own_tensors(module: torch.nn.Module) -> tuple[dict[str, torch.Tensor | None], dict[str, torch.Tensor | None]]:
    """``module``'s own registered parameters and buffers by name (``named_parameters(recurse=False)``
    and ``named_buffers(recurse=False)`` without the generators; read at the end of every trace)."""
    return module._parameters, module._buffers


def own_parameters(module: torch.nn.Module) -> list[torch.nn.Parameter]:
    """The parameters registered on ``module`` itself (``parameters(recurse=False)``, cheaper)."""
    return [parameter for parameter in module._parameters.values() if parameter is not None]
