"""The recorder: a ``TorchFunctionMode`` that sees every torch-level call, and a watch on module
calls (_private.module_calls) that says which module each call ran in.

The hot path appends raw op entries (exact tuples the garbage collector stops tracking:
:class:`~shapetrace.capture.records.Entries`) and nothing else; everyone reads them as named
:class:`~shapetrace.capture.records.OpEntry` tuples, and records are built from those when the
trace is read. Analyses that need more while the block runs
(the symbolic pass keeps call arguments, the debugger a failing call's arguments, contracts see
module calls) subscribe through :class:`Listener` instead of reaching into the recorder.

:class:`Recorder` is the reference, in Python. Where the extension ``_hotpath`` was built at
install, traces use :class:`CompiledRecorder`: the op body and the module calls' common case in C,
the same entries (docs/capture.md, "A compiled hot path").
"""

from __future__ import annotations

import os
import sys
import threading
from collections.abc import Callable
from types import CodeType
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from shapetrace._private.module_calls import (
    ENTER_TO_MODULE_CALL,
    MODULE_CALL_CODE,
    module_call_frame,
    unwatch_module_calls,
    watch_module_calls,
)
from shapetrace._private.torch_api import DisableTorchFunction
from shapetrace.capture.names import NOT_OPS, VALUE_OPS
from shapetrace.capture.parameters import ModuleTree
from shapetrace.capture.records import (
    CallEntries,
    OpEntries,
    raw_tensor_entry,
    raw_tensors,
    with_inputs,
)
from shapetrace.capture.source import (
    called_by_torch_internals,
    caller_at,
    callers,
    is_library_code,
    library_code,
)

try:  # the C hot paths (capture/_hotpath.c), built at install when a C compiler is there
    from shapetrace.capture import _hotpath
except ImportError:
    _hotpath = None

COMPILED_NOTE = (
    "torch.compile'd code ran: its ops show as its compiled graph runs them (fused kernels as one op or none)"
)


def _call(func: Callable, args: tuple, kwargs: dict | None) -> Any:
    """Call ``func`` (an op made with no user frame to attribute it to)."""
    return func(*args, **kwargs) if kwargs else func(*args)


def _raw_tensors_off(value: Any) -> tuple:
    """:func:`raw_tensors` of ``value``, read with dispatch off (module calls are watched with the mode
    on: reading a tensor's metadata must not dispatch to it)."""
    with DisableTorchFunction():
        return raw_tensors(value)


_EVENTS = ("top_op", "module_entered", "root_entered", "root_exited")  # the hot paths'
_NOTHING_HEARD = ((),) * len(_EVENTS)


def _hearing(listeners: tuple[Listener, ...]) -> tuple[tuple[Callable, ...], ...]:
    """Per event of :data:`_EVENTS`, the bound methods of the listeners that override it."""
    if not listeners:  # a recorder made, and one released, hears nothing
        return _NOTHING_HEARD
    return tuple(
        tuple([getattr(each, event) for each in listeners if getattr(type(each), event) is not getattr(Listener, event)])
        for event in _EVENTS
    )


class Listener:
    """What an analysis may hear while a block is traced; each method does nothing by default.
    Listeners run on the traced thread with ``__torch_function__`` dispatch off."""

    def top_op(self, index: int, args: tuple, kwargs: dict | None) -> None:
        """Op ``index``, called outside any module call, is about to run with these arguments."""

    def op_failed(self, index: int, args: tuple, kwargs: dict | None, error: BaseException) -> None:
        """Op ``index`` raised ``error``."""

    def module_entered(self, index: int, module: nn.Module, args: tuple) -> None:
        """Module call ``index`` begins, before its own pre-hooks run and torch picks its ``forward``."""

    def root_entered(self, index: int, module: nn.Module, args: tuple) -> None:
        """Module call ``index``, outside any other, begins (heard after :meth:`module_entered`;
        a listener that needs only these calls is not called for every nested one)."""

    def root_exited(self, module: nn.Module, args: tuple, kwargs_and_output: tuple) -> None:
        """A module call outside any other ended, its own forward hooks run: ``(kwargs, output)``, or
        ``(None,)`` when it raised."""


class Recorder(TorchFunctionMode):
    """Records every torch-level call made while it is the active mode, and module calls
    through the watch :meth:`hook_modules` installs. Only the thread that created it is recorded."""

    def __init__(self, listeners: tuple[Listener, ...] = ()) -> None:
        super().__init__()
        self.ops = OpEntries()
        self.modules = CallEntries()
        self.listeners = listeners  # also sets _top_op
        self.failure: BaseException | None = None  # the last exception an op raised
        self.failure_index: int | None = None  # and the index of that op
        self.model: nn.Module | None = None  # the model given to hook_modules
        self.trees: list[ModuleTree] = []  # its modules (without a model: each root's), walked once
        # Module calls whose recorded line did not call the module itself: a library helper did
        # (the ``shapes`` fixture, ``checkpoint(block, x)``, ``nn.Sequential``'s forward).
        self.indirect_calls: set[int] = set()
        self.notes: dict[str, None] = {}  # what the trace cannot show, said once each (ordered)
        self.values: dict[int, Any] = {}  # op index -> the Python value a VALUE_OPS op read from data
        self.thread = threading.get_ident()
        self._op_raw = self.ops.raw  # the lists the hot paths append to, and ops.numbers
        self._call_raw = self.modules.raw
        self._numbers = self.ops.numbers
        self._stack: list[int] = []  # indices of the module calls now running
        self._open_starts: list[tuple] = []  # and their raw entries as they began
        self._paths: dict[int, str] = {}  # id(module) -> path
        self._calls: dict[int, int] = {}  # id(module) -> calls so far
        self._seen_modules: list[nn.Module] = []  # keeps ids stable while tracing
        self._watching: tuple[Callable, Callable] | None = None  # see hook_modules
        self._model_only = False  # record only the modules of the model given to hook_modules
        self._foreign_calls = 0  # calls now running of modules outside that model
        # Metadata caches, valid for one trace. Each holds its tensors so that an id is never
        # reused while cached; both are emptied by release().
        self._params: dict[int, tuple] = {}  # id(parameter) -> (raw entry, parameter)
        self._last: torch.Tensor | None = None  # the latest op's output, and its raw entry
        self._last_entry: tuple = ()

    @property
    def listeners(self) -> tuple[Listener, ...]:
        return self._listeners

    @listeners.setter
    def listeners(self, listeners: tuple[Listener, ...]) -> None:
        self._listeners = listeners
        # on the hot paths only the listeners that hear an event are called
        self._top_op, self._module_entered, self._root_entered, self._root_exited = _hearing(listeners)

    # --- ops ------------------------------------------------------------------------------

    def __torch_function__(
        self,
        func: Callable,
        types: Any,
        args: tuple = (),
        kwargs: dict | None = None,
        _not_ops: frozenset = NOT_OPS,
        _value_ops: frozenset = VALUE_OPS,
        _library: dict = library_code,
        _getframe: Callable = sys._getframe,
        _Tensor: type = torch.Tensor,
        _Parameter: type = nn.Parameter,
        _tuple: type = tuple,
        _compiler: Any = torch.compiler,
        _callers: dict = callers,
    ):
        # The hot path: locals bound as defaults, raw entries (records.Entries), no formatting.
        __tracebackhide__ = True  # pytest shows a failing op's traceback ending in torch, not here
        if _compiler._is_compiling_flag:  # torch.compile is tracing this call: compiled code records nothing
            self.notes[COMPILED_NOTE] = None
            return func(*args, **kwargs) if kwargs else func(*args)
        if func in _not_ops:
            return func(*args, **kwargs) if kwargs else func(*args)
        frame = caller = _getframe(1)
        while frame is not None:
            code = frame.f_code
            skip = _library.get(id(code))
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
        inputs: list = []  # the fields of their raw entries, one after another (records.Entries)
        last, params = self._last, self._params
        try:
            for value in (*args, *kwargs.values()) if kwargs else args:
                if isinstance(value, _Tensor):
                    if value is last:
                        inputs += self._last_entry
                    elif type(value) is _Parameter:
                        known = params.get(id(value))
                        if known is None:
                            known = (_tuple(value.shape), value.dtype, value.device, value.requires_grad, id(value), "")
                            params[id(value)] = (known, value)
                        else:
                            known = known[0]
                        inputs += known
                    else:
                        inputs += (_tuple(value.shape), value.dtype, value.device, value.requires_grad, id(value), "")
                elif type(value) is list or type(value) is tuple:
                    for item in value:
                        if isinstance(item, _Tensor):
                            inputs += (_tuple(item.shape), item.dtype, item.device, item.requires_grad, id(item), "")
        except RuntimeError:  # a tensor without sizes (a strided nested tensor): read it the slow way
            tensors = [v for v in (*args, *(kwargs or {}).values()) if isinstance(v, _Tensor)]
            inputs = [field for tensor in tensors for field in raw_tensor_entry(tensor)]
        number = self._numbers.get(func)
        if number is None:
            number = self.ops.number(func)
        raw = self._op_raw
        index = len(raw)
        module_index = stack[-1] if stack else None
        if frame is not None:
            code, lasti = frame.f_code, frame.f_lasti
            by_offset = _callers.get(id(code))  # caller_at's cache, read here first: one call less per op
            call = by_offset.get(lasti) if by_offset is not None else None
            if call is None or call.__globals__ is not frame.f_globals:
                call = caller_at(code, lasti, frame.f_globals)
        else:
            code, lasti, call = None, -1, _call
        if not stack and inputs and self._top_op:
            for hear in self._top_op:
                hear(index, args, kwargs)
        try:
            result = call(func, args, kwargs)  # at the user's line: warnings name it
        except BaseException as error:
            raw.append((number, module_index, code, lasti, True, len(inputs), *inputs))
            self._record_failure(index, args, kwargs, error)
            raise
        try:
            if isinstance(result, _Tensor):
                self._last_entry = out = (
                    _tuple(result.shape), result.dtype, result.device, result.requires_grad, id(result), ""
                )
                self._last = result  # the next op's likely input
                outputs: Any = out
            elif isinstance(result, (list, tuple)):
                outputs = []
                for i, item in enumerate(result):
                    if isinstance(item, _Tensor):
                        outputs += (_tuple(item.shape), item.dtype, item.device, item.requires_grad, id(item), f"[{i}]")
            else:
                outputs = ()
                if func in _value_ops:
                    self.values[index] = result
        except RuntimeError:  # a nested tensor
            outputs = raw_tensors(result)
        raw.append((number, module_index, code, lasti, False, len(inputs), *inputs, *outputs))
        return result

    def _record_failure(self, index: int, args: tuple, kwargs: dict | None, error: BaseException) -> None:
        """Op ``index`` raised ``error`` (its entry appended): keep it, and tell the listeners."""
        self.failure, self.failure_index = error, index
        for listener in self.listeners:
            listener.op_failed(index, args, kwargs, error)

    # --- modules --------------------------------------------------------------------------

    def hook_modules(self, model: nn.Module | None = None) -> None:
        """Record module calls: watched around torch's ``Module._call_impl`` (_private.module_calls;
        global hooks would send every call through its slow path). With ``model``, only its
        submodules are recorded, named as in ``model.named_modules()``; without, a module called
        outside any other becomes a root and its submodules are named relative to it."""
        if model is not None:
            tree = ModuleTree.of(model)
            self.trees.append(tree)
            self._paths = tree.paths
            self._model_only = True
            self.model = model
        self._watching = self._module_watchers()
        watch_module_calls(*self._watching)

    def _module_watchers(self) -> tuple[Callable, Callable]:
        """What is called around each module call (_private.module_calls): enter, then leave."""
        return self._enter_module, self._leave_module

    def remove_hooks(self) -> None:
        """Stop watching module calls (the mode is removed by leaving it)."""
        if self._watching is not None:
            unwatch_module_calls(*self._watching)
            self._watching = None

    def release(self) -> None:
        """Stop watching module calls and drop every reference to a tensor or module."""
        self.remove_hooks()
        self._seen_modules.clear()
        self.trees = []
        self.model = None
        self.listeners = ()
        self._params.clear()
        self._last, self._last_entry = None, ()
        self.failure = None  # an exception holds frames, and frames hold tensors

    def _leave_module(
        self, module: nn.Module, args: tuple, *kwargs_and_output: Any, _get_ident: Callable = threading.get_ident
    ) -> None:
        """A module call ended: ``(kwargs, output)``, or ``(None,)`` when it raised."""
        if _get_ident() == self.thread:
            self._exit_module(module, args, kwargs_and_output)  # with the mode on, as _enter_module

    def _enter_module(
        self, module: nn.Module, args: tuple, _ScriptModule: type = torch.jit.ScriptModule,
        _getframe: Callable = sys._getframe, _library: dict = library_code, _get_ident: Callable = threading.get_ident,
        _module_call_depth: int = ENTER_TO_MODULE_CALL, _module_call_code: CodeType = MODULE_CALL_CODE,
    ) -> None:  # fmt: skip
        """A module call begins (called with the mode on: what reads tensors turns dispatch off)."""
        if _get_ident() != self.thread:
            return
        key = id(module)
        path = self._paths.get(key)
        if path is None:
            path = self._first_call(module)
            if path is None:  # not the model's: not recorded
                return
        calls = self._calls
        call = calls[key] = calls.get(key, 0) + 1
        stack = self._stack
        # torch's Module.__call__ frame (library code, as all below it): read where it is when
        # _private.module_calls called this method, else found by a walk from its caller
        try:
            called_from = _getframe(_module_call_depth)
        except ValueError:  # a stack that shallow: not that layout
            called_from = None
        if called_from is None or called_from.f_code is not _module_call_code:
            called_from = module_call_frame(_getframe(1))
        frame = called_from.f_back if called_from is not None else _getframe(1)
        while frame is not None:  # the user's frame (source.user_frame, inline: once per module call)
            skip = _library.get(id(frame.f_code))
            if skip is None:
                skip = is_library_code(frame.f_code)
            if not skip:
                break
            frame = frame.f_back
        raw = self._call_raw
        index = len(raw)
        if frame is None or called_from is None or called_from.f_back is not frame:
            self.indirect_calls.add(index)
        last = self._last
        if last is not None and len(args) == 1 and args[0] is last:  # most often the last op's output: known
            inputs = self._last_entry[:-1] + ("[0]",)
        else:
            inputs = _raw_tensors_off(args)
        parent = stack[-1] if stack else None
        start = (  # the raw entry of a running call (records.Entries)
            key, path, type(module).__name__, call, parent, len(stack), len(self._op_raw),
            frame.f_code if frame else None, frame.f_lasti if frame else -1, len(inputs), *inputs,
        )  # fmt: skip
        raw.append(start)
        stack.append(index)
        self._open_starts.append(start)
        if issubclass(type(module), _ScriptModule):  # its class (as the C hook reads it)
            self.notes[f"{path or type(module).__name__} is TorchScript: its ops run outside Python and are not recorded"] = None
        if self._module_entered or (parent is None and self._root_entered):
            self._hear_entered(index, module, args, parent is None)

    def _hear_entered(self, index: int, module: nn.Module, args: tuple, root: bool) -> None:
        """Tell the listeners that module call ``index`` began (``root``: outside any other)."""
        with DisableTorchFunction():  # listeners hear with dispatch off (see Listener)
            for hear in self._module_entered:
                hear(index, module, args)
            if root:
                for hear in self._root_entered:
                    hear(index, module, args)

    def _first_call(self, module: nn.Module) -> str | None:
        """The path of a module seen for the first time in this trace; ``None`` for a module
        outside the model given to :meth:`hook_modules` (counted as running: see ``_foreign_calls``)."""
        if self._model_only:
            self._foreign_calls += 1
            return None
        if self._stack:
            parent_path = self._paths[self._open_starts[-1][0]]
            path = f"{parent_path}.<{type(module).__name__}>" if parent_path else type(module).__name__
            self._paths[id(module)] = path
        else:
            tree = ModuleTree.of(module)
            self.trees.append(tree)
            for sub_id, name in tree.paths.items():
                self._paths.setdefault(sub_id, name)
            path = self._paths[id(module)]
        self._seen_modules.append(module)
        return path

    def _exit_module(self, module: nn.Module, args: tuple, kwargs_and_output: tuple) -> None:
        key = id(module)
        starts = self._open_starts
        if starts and starts[-1][0] == key:  # most often the innermost call running ends
            depth: int | None = len(starts) - 1
        elif self._model_only and key not in self._paths:
            self._foreign_calls -= 1
            return
        else:
            depth = next((d for d in range(len(starts) - 2, -1, -1) if starts[d][0] == key), None)
        if depth == 0 and self._root_exited:
            with DisableTorchFunction():
                for hear in self._root_exited:
                    hear(module, args, kwargs_and_output)
        if depth is None:
            return  # a call that began before the trace did
        if len(starts) > depth + 1:
            self._end_calls(depth + 1, failed=True)  # calls that never reached their own exit hook
        index, start = self._stack.pop(), starts.pop()
        output = kwargs_and_output[-1]
        failed = output is None and sys.exc_info()[1] is not None
        keywords = kwargs_and_output[0] if len(kwargs_and_output) == 2 else None
        if output is self._last and output is not None and not keywords:
            outputs = self._last_entry  # most often: the last op's output, its entry made
        else:
            with DisableTorchFunction():  # as in _enter_module
                if keywords:  # keyword tensors, known only now
                    more_inputs = raw_tensors(keywords)
                    if more_inputs:
                        start = with_inputs(start, more_inputs)
                outputs = raw_tensors(output)
        self._call_raw[index] = start + (len(self._op_raw), failed, *outputs)  # the call ended (records.Entries)

    def _end_calls(self, depth: int, failed: bool) -> None:
        """End the calls open from stack ``depth`` up, as ``failed``, and take them off the stack."""
        for index, start in zip(self._stack[depth:], self._open_starts[depth:]):
            self._call_raw[index] = start + (len(self._op_raw), failed)
        del self._stack[depth:], self._open_starts[depth:]

    def close_open_calls(self) -> None:
        """Give module calls still running when the trace ends their end and mark them failed."""
        self._end_calls(0, failed=True)

    # --- what listeners and analyses may ask ------------------------------------------------

    @property
    def current_call(self) -> int | None:
        """The index of the module call running now, ``None`` outside any."""
        return self._stack[-1] if self._stack else None

    @property
    def calls_running(self) -> int:
        """How many module calls are running now, nested (1: a root call)."""
        return len(self._stack)


# --- the compiled hot path --------------------------------------------------------------------

if _hotpath is not None:

    class CompiledRecorder(_hotpath.RecorderBase, Recorder):
        """The :class:`Recorder` whose op body and module-call bodies run in C (capture/_hotpath.c): the same
        raw entries and behaviour; what is rare (tensors without sizes, listeners, keyword tensors of
        a module call, calls that end out of order) the C code hands over to :class:`Recorder`'s
        methods. Torch calls ``__torch_function__``, a Python function that torch.compile can trace,
        which runs the C body unless it is tracing it (C code would break its graphs); module calls
        reach the C bodies through _private.module_calls, which checks the same first."""

        def __torch_function__(
            self, func: Callable, types: Any, args: tuple = (), kwargs: dict | None = None,
            _compiler: Any = torch.compiler, _record_op: Callable = _hotpath.RecorderBase._record_op,
        ) -> Any:  # fmt: skip
            __tracebackhide__ = True
            if _compiler._is_compiling_flag:
                return Recorder.__torch_function__(self, func, types, args, kwargs)
            return _record_op(self, func, types, args, kwargs)

        def _module_watchers(self) -> tuple[Callable, Callable]:
            """The C bodies themselves: _private.module_calls calls them only where torch.compile
            is not tracing."""
            return self._enter_hook, self._exit_hook

    _hotpath.configure(
        tensor=torch.Tensor, parameter=nn.Parameter, script_module=torch.jit.ScriptModule, not_ops=NOT_OPS,
        value_ops=VALUE_OPS, library_code=library_code, callers=callers, is_library_code=is_library_code,
        called_by_torch_internals=called_by_torch_internals, caller_at=caller_at,
        module_call_frame=module_call_frame, module_call_code=MODULE_CALL_CODE,
        enter_to_module_call=ENTER_TO_MODULE_CALL - 1, call=_call, python_op=Recorder.__torch_function__,
        raw_tensors=raw_tensors, raw_tensors_off=_raw_tensors_off,
    )  # fmt: skip

HAS_COMPILED = _hotpath is not None  # the extension was built at install (a C compiler was there)
# Set to a value other than "" and "0", the trace's recorder is the pure-Python one.
PURE_PYTHON = os.environ.get("SHAPETRACE_PURE_PYTHON", "") not in ("", "0")
# The recorder a trace uses: the compiled one when it is built and not turned off; the same
# entries either way (tests/capture run on both).
TRACE_RECORDER: type[Recorder] = CompiledRecorder if HAS_COMPILED and not PURE_PYTHON else Recorder


def new_recorder() -> Recorder:
    """A recorder of the class a trace uses (:data:`TRACE_RECORDER`)."""
    return TRACE_RECORDER()


def hot_path() -> str:
    """Which hot path traces run: ``"C"`` or ``"Python"``."""
    return "Python" if TRACE_RECORDER is Recorder else "C"
