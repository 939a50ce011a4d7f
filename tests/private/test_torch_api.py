"""The private torch APIs shapetrace relies on: these fail loudly when torch moves them."""

from __future__ import annotations

import sys

import torch
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

from shapetrace._private import torch_api
from shapetrace.capture import source


def test_disable_torch_function_turns_off_modes():
    seen = []

    class Spy(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            seen.append(func)
            return func(*args, **(kwargs or {}))

    x = torch.rand(2)
    with Spy():
        with torch_api.DisableTorchFunction():
            x.shape, x + 1
        assert torch_api.torch_function_mode_depth() == 1
        x.sum()
    assert len(seen) == 1


def test_tensor_base_is_where_tensor_methods_live():
    assert torch.Tensor.flatten is torch_api.TensorBase.flatten
    assert type(torch_api.TensorBase.shape).__name__ == "getset_descriptor"


def test_python_torch_functions_dispatch_through_handle_torch_function():
    # source.called_by_torch_internals relies on the dispatch chain: mode <- overrides <- F.* <- caller
    chain = []

    class Spy(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):
            frame = sys._getframe(1)
            chain.extend([frame.f_code.co_name, frame.f_back.f_code.co_name])
            return func(*args, **(kwargs or {}))

    x = torch.rand(2)
    with Spy():
        F.dropout(x, 0.1)
    assert chain == ["handle_torch_function", "dropout"]
    assert source.is_library_code(torch.overrides.handle_torch_function.__code__)


def test_own_tensors_are_the_modules_registered_parameters_and_buffers():
    norm = torch.nn.BatchNorm1d(3)
    parameters, buffers = torch_api.own_tensors(norm)
    assert dict(parameters) == dict(norm.named_parameters(recurse=False))
    assert dict(buffers) == dict(norm.named_buffers(recurse=False))
    assert torch_api.own_parameters(norm) == list(norm.parameters(recurse=False))


def test_the_module_walk_is_named_modules_with_each_module_once():
    shared = torch.nn.Linear(2, 2)
    inner = torch.nn.Sequential(shared, torch.nn.ReLU())
    net = torch.nn.Sequential(inner, shared, torch.nn.ModuleDict({"a": torch.nn.Tanh(), "b": inner}))
    net.register_module("gone", None)
    modules, paths = torch_api.named_modules_walk(net)
    assert [(path, module) for module, path in modules] == list(net.named_modules())
    assert paths == {id(module): path for path, module in net.named_modules()}
    assert paths[id(shared)] == "0.0"  # its first path
    assert torch_api.child_modules(net) == list(net.named_children())
