"""Private torch APIs used by capture: one place to change when torch moves them."""

from __future__ import annotations

import torch

# Context manager that turns off __torch_function__ dispatch (modes and subclasses) on this
# thread. Module calls are watched while the recorder's mode is active; reading tensor metadata
# there would otherwise dispatch every `.shape` through the mode.
DisableTorchFunction = torch._C.DisableTorchFunction

# The base class whose methods and properties the recorder sees as `func`.
TensorBase = torch._C.TensorBase


def torch_function_mode_depth() -> int:
    """How many TorchFunctionModes are active on this thread (tests check none is left behind)."""
    return torch._C._len_torch_function_stack()


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
