"""The recorder: a ``TorchFunctionMode`` that sees every torch-level call, and module hooks
that say which module each call ran in.

The hot path stores raw tuples only; :mod:`shapetrace.trace` turns them into records.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode
from torch.utils.hooks import RemovableHandle

from shapetrace._private.torch_api import (
    DisableTorchFunction,
    child_modules,
    module_call_frame,
    module_call_kwargs,
    register_global_forward_hook,
)
from shapetrace.capture.names import NOT_OPS
from shapetrace.capture.records import nested_metas
from shapetrace.capture.source import called_by_torch_internals, is_library_code, library_code, user_frame
from shapetrace.diagnose.evidence import CallArguments, describe_call
from shapetrace.symbolic.skeleton import call_arguments, op_arguments

# Raw op: [func, module_index, code, lasti, inputs, outputs, failed]; a raw tensor is
# (shape, dtype, device, requires_grad, id[, path]) -- see records.RawMeta.
# Raw module call: [module_id, path, type, call, parent, depth, first_op, end_op, inputs, outputs, failed,
#                   code, lasti] (code, lasti: the caller's line)
_END_OP, _INPUTS, _OUTPUTS, _FAILED = 7, 8, 9, 10


class Recorder(TorchFunctionMode):
    """Records every torch-level call made while it is the active mode, and module calls
    through the hooks :meth:`hook_modules` installs."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[tuple] = []
        self.modules: list[list] = []
        self.failure: BaseException | None = None  # the last exception an op raised
        self.failure_index: int | None = None  # and the index of that op
        self.failure_call: CallArguments | None = None  # and its arguments, without tensors
        self.model: nn.Module | None = None  # the model given to hook_modules
        # For the symbolic pass, which repeats these calls on fake tensors (shapetrace.symbolic):
        self.keep_arguments = True
        self.top_args: dict[int, tuple] = {}  # op index -> skeleton of its (args, kwargs), ops outside modules
        self.root_calls: dict[int, tuple] = {}  # call index -> (module, args, kwargs, grad, training), roots
        self.root_seconds = 0.0  # wall time of root module calls (the pass's budget scales with it)
        self._root_started = 0.0
        # Module calls whose recorded line did not call the module itself: a library helper did
        # (the ``shapes`` fixture, ``checkpoint(block, x)``, ``nn.Sequential``'s forward).
        self.indirect_calls: set[int] = set()
        self._stack: list[int] = []  # indices of the module calls now running
        self._paths: dict[int, str] = {}  # id(module) -> path
        self._calls: dict[int, int] = {}  # id(module) -> calls so far
        self._seen_modules: list[nn.Module] = []  # keeps ids stable while tracing
        self._handles: list[RemovableHandle] = []
        self._model_only = False  # record only the modules of the model given to hook_modules
        self._foreign_calls = 0  # calls now running of modules outside that model
        # Metadata caches, valid for one trace. Each holds its tensors so that an id is never
        # reused while cached; both are emptied by release().
        self._params: dict[int, tuple] = {}  # id(parameter) -> (meta, parameter)
        self._last: torch.Tensor | None = None  # the latest op's output, and its meta
        self._last_meta: tuple | None = None

    # --- ops ------------------------------------------------------------------------------

    def __torch_function__(
        self,
        func: Callable,
        types: Any,
        args: tuple = (),
        kwargs: dict | None = None,
        _not_ops: frozenset = NOT_OPS,
        _library: dict = library_code,
        _getframe: Callable = sys._getframe,
        _Tensor: type = torch.Tensor,
        _Parameter: type = nn.Parameter,
    ):
        # The hot path: locals bound as defaults, raw tuples only, no formatting.
        __tracebackhide__ = True  # pytest shows a failing op's traceback ending in torch, not here
        if func in _not_ops:
            return func(*args, **kwargs) if kwargs else func(*args)
        frame = caller = _getframe(1)
        while frame is not None:
            code = frame.f_code
            skip = _library.get(code)
            if skip is None:
                skip = is_library_code(code)
            if not skip:
                break
            frame = frame.f_back
        stack = self._stack
        if (
            frame is not caller
            and not stack
            and not self._foreign_calls
            and called_by_torch_internals(caller)
        ):
            return func(*args, **kwargs) if kwargs else func(*args)
        inputs = []
        last, last_meta, params = self._last, self._last_meta, self._params
        for value in (*args, *kwargs.values()) if kwargs else args:
            if isinstance(value, _Tensor):
                if value is last:
                    inputs.append(last_meta)
                elif type(value) is _Parameter:
                    known = params.get(id(value))
                    if known is None:
                        known = (value.shape, value.dtype, value.device, value.requires_grad, id(value))
                        params[id(value)] = (known, value)
                    else:
                        known = known[0]
                    inputs.append(known)
                else:
                    inputs.append((value.shape, value.dtype, value.device, value.requires_grad, id(value)))
            elif type(value) is list or type(value) is tuple:
                for item in value:
                    if isinstance(item, _Tensor):
                        inputs.append((item.shape, item.dtype, item.device, item.requires_grad, id(item)))
        entry = [func, stack[-1] if stack else None, None, -1, inputs, (), False]
        if frame is not None:
            entry[2] = frame.f_code
            entry[3] = frame.f_lasti
        self.ops.append(entry)
        if not stack and inputs and self.keep_arguments:  # outside modules: for the symbolic replay (no tensor)
            self.top_args[len(self.ops) - 1] = op_arguments(args, kwargs)
        try:
            result = func(*args, **kwargs) if kwargs else func(*args)
        except BaseException as error:
            entry[6] = True
            self.failure, self.failure_index = error, len(self.ops) - 1
            self.failure_call = describe_call(args, kwargs)  # failure path only: names and plain values
            raise
        if isinstance(result, _Tensor):
            self._last_meta = meta = (
                result.shape,
                result.dtype,
                result.device,
                result.requires_grad,
                id(result),
            )
            self._last = result
            entry[5] = (meta,)
        elif isinstance(result, (list, tuple)):
            entry[5] = [
                (item.shape, item.dtype, item.device, item.requires_grad, id(item), f"[{i}]")
                for i, item in enumerate(result)
                if isinstance(item, _Tensor)
            ]
        return result

    # --- modules --------------------------------------------------------------------------

    def hook_modules(self, model: nn.Module | None = None) -> None:
        """Record module calls through two global hooks (per-module hooks cost two handles per
        submodule on every trace). With ``model``, only its submodules are recorded, named as in
        ``model.named_modules()``; without, a module called outside any other becomes a root and
        its submodules are named relative to it."""
        if model is not None:
            self._paths = module_paths(model)
            self._model_only = True
            self.model = model
        self._handles.append(nn.modules.module.register_module_forward_pre_hook(self._global_enter))
        self._handles.append(register_global_forward_hook(self._global_exit))

    def remove_hooks(self) -> None:
        """Remove the module hooks (the mode is removed by leaving it)."""
        for handle in self._handles:
            handle.remove()
        self._handles.clear()

    def release(self) -> None:
        """Remove every hook and drop every reference to a tensor or module."""
        self.remove_hooks()
        self._seen_modules.clear()
        self.model = None
        self.root_calls.clear()
        self._params.clear()
        self._last = self._last_meta = None
        self.failure = None  # an exception holds frames, and frames hold tensors

    def _global_enter(self, module: nn.Module, args: tuple) -> None:
        with DisableTorchFunction():
            self._enter_module(module, args)

    def _global_exit(self, module: nn.Module, args: tuple, *kwargs_and_output: Any) -> None:
        with DisableTorchFunction():
            self._exit_module(module, args, *kwargs_and_output)

    def _enter_module(self, module: nn.Module, args: tuple) -> None:
        path = self._paths.get(id(module))
        if path is None:
            if self._model_only:
                self._foreign_calls += 1
                return
            if self._stack:
                parent_path = self.modules[self._stack[-1]][1]
                path = f"{parent_path}.<{type(module).__name__}>" if parent_path else type(module).__name__
                self._paths[id(module)] = path
            else:
                for sub_id, name in module_paths(module).items():
                    self._paths.setdefault(sub_id, name)
                path = self._paths[id(module)]
            self._seen_modules.append(module)
        self._open_call(path, module, args)

    def _exit_module(self, module: nn.Module, args: tuple, *kwargs_and_output: Any) -> None:
        if self._model_only and id(module) not in self._paths:
            self._foreign_calls -= 1
            return
        if len(kwargs_and_output) == 2 and kwargs_and_output[0] and self._stack:
            record = self.modules[self._stack[-1]]
            if record[0] == id(module):
                record[_INPUTS].extend(nested_metas(kwargs_and_output[0]))
        self._close_call(module, kwargs_and_output[-1])

    def _open_call(self, path: str, module: nn.Module, args: tuple) -> None:
        key = id(module)
        call = self._calls[key] = self._calls.get(key, 0) + 1
        stack = self._stack
        inputs = nested_metas(args)
        hook = sys._getframe(1)
        called_from = module_call_frame(hook)  # torch's Module.__call__ frame
        frame = user_frame(called_from or hook)  # everything below __call__ is library code: one walk
        if frame is None or called_from is None or called_from.f_back is not frame:
            self.indirect_calls.add(len(self.modules))
        self.modules.append([
            key, path, type(module).__name__, call, stack[-1] if stack else None, len(stack),
            len(self.ops), None, inputs, (), False,
            frame.f_code if frame else None, frame.f_lasti if frame else -1,
        ])  # fmt: skip
        stack.append(len(self.modules) - 1)
        if len(stack) == 1:
            self._root_started = time.perf_counter()
        if len(stack) == 1 and self.keep_arguments:  # a root call: what the symbolic pass needs to call it again
            kwargs = module_call_kwargs(sys._getframe(1))
            arguments = (call_arguments(args), call_arguments(kwargs or {}))
            self.root_calls[len(self.modules) - 1] = (module, *arguments, torch.is_grad_enabled(), module.training)

    def _close_call(self, module: nn.Module, output: Any) -> None:
        key = id(module)
        stack = self._stack
        for depth in range(len(stack) - 1, -1, -1):
            if self.modules[stack[depth]][0] == key:
                break
        else:
            return  # a call that began before the trace did
        for index in stack[depth + 1 :]:  # calls that never reached their own exit hook
            self.modules[index][_END_OP] = len(self.ops)
            self.modules[index][_FAILED] = True
        record = self.modules[stack[depth]]
        del stack[depth:]
        if not stack:
            self.root_seconds += time.perf_counter() - self._root_started
        record[_END_OP] = len(self.ops)
        record[_OUTPUTS] = nested_metas(output)
        record[_FAILED] = output is None and sys.exc_info()[1] is not None

    def close_open_calls(self) -> None:
        """Give module calls still running when the trace ends their end and mark them failed."""
        for index in self._stack:
            self.modules[index][_END_OP] = len(self.ops)
            self.modules[index][_FAILED] = True
        self._stack.clear()

    def root_modules(self) -> list[nn.Module]:
        """Without a model given: the modules called outside any other, in the order first called."""
        return [module for module in self._seen_modules if self._paths.get(id(module)) == ""]


def module_paths(model: nn.Module) -> dict[int, str]:
    """``id(module) -> path`` for ``model`` and its submodules, as ``named_modules()`` names them
    (a module reachable twice keeps its first name)."""
    paths: dict[int, str] = {}

    def visit(module: nn.Module, prefix: str) -> None:
        if id(module) in paths:
            return
        paths[id(module)] = prefix
        for name, child in child_modules(module):
            visit(child, f"{prefix}.{name}" if prefix else name)

    visit(model, "")
    return paths
