"""Checking contracts while a trace runs: what is installed, how a checked call runs, and what a
violation becomes.

With a model, each of its modules whose class ``forward`` has jaxtyping hints gets an instance
attribute ``forward`` (a :class:`CheckedForward`) for the duration of the trace. Without one
(the CLI), modules are found as they are first called (the recorder tells, before torch picks the
module's ``forward``): the module and everything below it are wrapped then, that first call
included. Functions given in ``contracts=`` are
replaced where they are looked up from (their module, modules that imported them under the
same name, their class). Everything is put back on exit.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import itertools
import sys
import threading
import types
import warnings
from collections.abc import Callable, Iterable, Iterator
from threading import get_ident
from typing import Any

import torch
from torch import nn

from shapetrace._private import jaxtyping_api as jt
from shapetrace._private.torch_api import DisableTorchFunction
from shapetrace.capture.recorder import Listener, Recorder
from shapetrace.capture.recording import Producers
from shapetrace.capture.records import TensorMeta, tensor_entry
from shapetrace.capture.source import user_frame
from shapetrace.contracts.checks import CallState, CheckFailure
from shapetrace.contracts.contract import CONTRACT_ATTRIBUTE, Contract, contract_for, forward_contract, unwrap
from shapetrace.contracts.reasons import explain
from shapetrace.contracts.violations import (
    ContractCall,
    ContractError,
    ContractViolation,
    ContractWarning,
    UnresolvedHint,
    UnresolvedHintWarning,
)

ON_VIOLATION = ("raise", "warn", "record")


def check_on_violation(value: str) -> None:
    """Raise ``ValueError`` unless ``value`` is one of :data:`ON_VIOLATION`."""
    if value not in ON_VIOLATION:
        raise ValueError(f"on_violation must be one of {', '.join(ON_VIOLATION)}, not {value!r}")
_MISSING = object()


class _Local(threading.local):
    sessions: tuple[ContractSession, ...] = ()
    suspended: int = 0


_local = _Local()
_serials = itertools.count()


def current_session() -> ContractSession:
    """The innermost trace's session on this thread; outside any trace, one that raises."""
    sessions = _local.sessions
    return sessions[-1] if sessions else _STANDALONE


@contextlib.contextmanager
def suspended() -> Iterator[None]:
    """Run a block with every contract check off on this thread (e.g. re-running a forward on
    fake tensors): checked functions call straight through."""
    _local.suspended += 1
    try:
        yield
    finally:
        _local.suspended -= 1


class ContractSession(Listener):
    """The contracts of one trace (or, with no recorder, of ``@contract`` calls outside any
    trace): runs checked calls and turns failures into :class:`ContractViolation` records.
    Without a model, it finds annotated modules as the recorder hears them called (it is one of
    the recorder's listeners: no hooks of its own)."""

    def __init__(
        self,
        on_violation: str = "raise",
        recorder: Recorder | None = None,
        violations: list[ContractViolation] | None = None,
        unresolved: list[UnresolvedHint] | None = None,
    ) -> None:
        check_on_violation(on_violation)
        self.on_violation = on_violation
        self.recorder = recorder
        self.violations = violations if violations is not None else []
        self.unresolved = unresolved if unresolved is not None else []
        self.calls: list[tuple] = []  # (module_index, contract, single memo, variadic memo)
        self.active = recorder is None
        self.thread = threading.get_ident()
        self.serial = next(_serials)  # a trace entered later has a higher one
        self._noted: set[Contract] = set()
        self._warned: dict = {}  # warnings registry: one warning per text and line
        self._installed: list[tuple[nn.Module, CheckedForward]] = []
        self._patches: list[tuple[Any, str, Any, Any]] = []
        self._seen: set[int] = set()
        self._seen_modules: list[nn.Module] = []

    # --- install / remove ------------------------------------------------------------------------

    def install(self, modules: Iterable[tuple[nn.Module, str]], functions: Iterable[Callable] = ()) -> None:
        """Wrap the annotated ones of the model's ``modules`` (with their paths; without a model,
        none: modules are wrapped as the recorder hears them called) and the given functions. On
        failure everything done so far is undone."""
        self.active = True
        _local.sessions = (*_local.sessions, self)
        try:
            for fn in functions:
                self._patch(fn)
            modules = list(modules)
            contracts = {cls: forward_contract(cls) for cls in {type(module) for module, _ in modules}}
            if any(found[1] is not None for found in contracts.values()):  # most models have no hints
                for module, _ in modules:
                    found = contracts[type(module)]
                    if found[1] is not None:
                        self._wrap(module, found)
        except BaseException:
            self.remove()
            raise

    def remove(self) -> None:
        """Put back every forward and function replaced, and forget the modules seen."""
        self.active = False
        _local.sessions = tuple(s for s in _local.sessions if s is not self)
        for module, wrapper in reversed(self._installed):
            attributes = vars(module)
            if attributes.get("forward") is wrapper:
                previous = wrapper._previous
                while isinstance(previous, CheckedForward) and not previous._session.active:
                    previous = previous._previous  # that trace has ended: what it replaced
                if previous is _MISSING:
                    del attributes["forward"]
                else:
                    attributes["forward"] = previous
        self._installed.clear()
        for holder, name, original, replacement in reversed(self._patches):
            if vars(holder).get(name) is replacement:
                setattr(holder, name, original)
        self._patches.clear()
        self._seen.clear()
        self._seen_modules.clear()

    def _wrap(self, module: nn.Module, found: tuple | None = None) -> bool:
        """Give ``module`` a checked forward if its class forward has jaxtyping hints (``found``:
        its class's :func:`forward_contract`, when known); ``False`` when a trace entered after
        this one checks it for now (ask again later)."""
        fn, contract = found if found is not None else forward_contract(type(module))
        if contract is None:
            return True
        previous = vars(module).get("forward", _MISSING)
        if isinstance(previous, CheckedForward):  # put there by another trace
            if previous._session.active and previous._session.serial > self.serial:
                return False
            if previous._function is not fn:
                return True
        elif previous is not _MISSING:
            return True  # the instance has its own forward: that is what runs, and it has no hints here
        wrapper = CheckedForward(self, module, fn, contract, previous)
        vars(module)["forward"] = wrapper
        self._installed.append((module, wrapper))
        self._note(contract)
        return True

    def _patch(self, fn: Callable) -> None:
        if hasattr(fn, CONTRACT_ATTRIBUTE):
            return  # @contract: checks itself in every trace
        target = unwrap(fn.__func__ if inspect.ismethod(fn) else fn)
        if not isinstance(target, types.FunctionType):
            raise TypeError(f"contracts= takes Python functions and methods, not {fn!r}")
        contract = contract_for(target)
        if not contract.params and contract.result is None and not contract.unresolved:
            raise ValueError(f"contracts=: {target.__qualname__} has no annotations to check")
        for holder, name, original in _holders(target):
            replacement = _checked_function(self, original, target, contract)
            setattr(holder, name, replacement)
            self._patches.append((holder, name, original, replacement))
        self._note(contract)

    # --- modules found as they are called (no model given) ----------------------------------------

    def module_entered(self, index: int, module: nn.Module, args: tuple) -> None:
        """Wrap the module and every module below it, at its first call: torch picks the module's
        ``forward`` after this, so that call runs the checked one too."""
        if id(module) in self._seen:
            return
        for sub in module.modules():
            if id(sub) not in self._seen and self._wrap(sub):
                self._seen.add(id(sub))
                self._seen_modules.append(sub)

    # --- checked calls --------------------------------------------------------------------------

    def runs_here(self) -> bool:
        return self.active and not _local.suspended and get_ident() == self.thread

    def call(self, contract: Contract, target: Callable, args: tuple, kwargs: dict[str, Any]) -> Any:
        """``target(*args, **kwargs)``, checked when this session runs on this thread."""
        if not self.runs_here():
            return target(*args, **kwargs)
        return self.run(contract, target, args, kwargs)

    def run(self, contract: Contract, target: Callable, args: tuple, kwargs: dict[str, Any]) -> Any:
        """``target(*args, **kwargs)`` in its own binding scope: arguments checked before,
        the return value after."""
        arguments = contract.bind(args, kwargs)
        if arguments is None:
            return target(*args, **kwargs)  # does not fit the signature: Python says why
        if contract.unresolved and contract not in self._noted:
            self._note(contract)
        module_index = self._module_index()
        memos = jt.push_memo(arguments)
        try:
            with DisableTorchFunction():  # reading .shape must not dispatch to the recorder
                state = CallState(arguments, memos)
                self._check_params(contract, state, module_index, None)
            result = target(*args, **kwargs)
            if contract.result is not None:
                with DisableTorchFunction():
                    state.refresh()
                    failure = contract.result.check(result, "return", state)
                    if failure is not None:
                        self._violated(contract, failure, state, module_index)
            if self.recorder is not None:
                state.refresh()
                self.calls.append((module_index, contract, state.single, state.variadic))
            return result
        finally:
            jt.pop_memo()

    def _check_params(
        self, contract: Contract, state: CallState, module_index: int | None, only: Any
    ) -> None:
        """Check the call's arguments (those in ``only``, when given) against their hints."""
        arguments = state.arguments
        for name, check, kind in contract.params:
            if only is not None and name not in only:
                continue
            if name not in arguments:
                continue
            if kind:
                self._check_each(contract, name, check, kind, state, module_index)
                continue
            failure = check.check(arguments[name], name, state)
            if failure is not None:
                self._violated(contract, failure, state, module_index)

    def _check_each(
        self, contract: Contract, name: str, check: Any, kind: str, state: CallState, module_index: int | None
    ) -> None:
        """Each value of ``*args`` (``kind == "*"``) or ``**kwargs`` (``"**"``), as ``name[key]``."""
        value = state.arguments[name]
        for key, item in value.items() if kind == "**" else enumerate(value):
            failure = check.check(item, f"{name}[{key!r}]", state)
            if failure is not None:
                self._violated(contract, failure, state, module_index)

    def _check_result(
        self, contract: Contract, result: Any, state: CallState, module_index: int | None
    ) -> None:
        failure = contract.result.check(result, "return", state)
        if failure is not None:
            self._violated(contract, failure, state, module_index)

    # --- violations ------------------------------------------------------------------------------

    def _violated(
        self, contract: Contract, failure: CheckFailure, state: CallState, module_index: int | None
    ) -> None:
        value = failure.value
        is_tensor = isinstance(value, torch.Tensor)
        frame = user_frame(sys._getframe(1))
        violation = ContractViolation(
            where=self._where(module_index),
            function=contract.qualname,
            arg=failure.path,
            expected=failure.check.expected,
            actual=TensorMeta.from_entry(tensor_entry(value)) if is_tensor else None,
            actual_type=type(value).__name__,
            reason=explain(failure, state),
            bindings=jt.bindings_of(state.single, state.variadic),
            file=frame.f_code.co_filename if frame else contract.file,
            line=frame.f_lineno if frame else contract.line,
            position=len(self.recorder.ops) if self.recorder is not None else 0,
            op_index=self._producer(value) if is_tensor else None,
            module_index=module_index,
        )
        self.violations.append(violation)
        if self.on_violation == "raise":
            raise ContractError(violation)
        if self.on_violation == "warn":
            message = violation.describe(with_site=False)
            warnings.warn_explicit(
                message, ContractWarning, violation.file, violation.line, registry=self._warned
            )

    def _module_index(self) -> int | None:
        """The module call running now (the recorder's), ``None`` outside any."""
        return self.recorder.current_call if self.recorder is not None else None

    def _where(self, module_index: int | None) -> str:
        if module_index is None or self.recorder is None:
            return ""
        entry = self.recorder.modules[module_index]
        return entry.path or entry.type  # the root's path is ""

    def _producer(self, tensor: torch.Tensor) -> int | None:
        """The latest recorded op whose output is ``tensor`` (a live tensor's id is unique)."""
        return Producers(self.recorder.ops).of(id(tensor)) if self.recorder is not None else None

    def _note(self, contract: Contract) -> None:
        """Report, once per session, the annotations of ``contract`` that are not checked."""
        if contract in self._noted:
            return
        self._noted.add(contract)
        for hint in contract.unresolved:
            self.unresolved.append(hint)
            warnings.warn_explicit(
                hint.describe(), UnresolvedHintWarning, hint.file, hint.line, registry=self._warned
            )

    def call_records(self) -> list[ContractCall]:
        """Every checked call with the dims it bound, in the order the calls ended."""
        return [
            ContractCall(
                module_index, self._where(module_index), contract.qualname, jt.bindings_of(single, variadic)
            )
            for module_index, contract, single, variadic in self.calls
        ]


_STANDALONE = ContractSession("raise")


class CheckedForward:
    """The ``forward`` a trace puts on a module instance: the class's forward (unwrapped from
    ``@jaxtyped``), checked against its annotations while the trace runs."""

    __slots__ = ("__wrapped__", "_session", "_module", "_function", "_contract", "_previous")

    def __init__(
        self,
        session: ContractSession,
        module: nn.Module,
        function: Callable,
        contract: Contract,
        previous: Any = _MISSING,
    ) -> None:
        self._session = session
        self._module = module
        self._function = function
        self._contract = contract
        self._previous = previous  # the instance's forward before (another trace's), or none
        self.__wrapped__ = types.MethodType(function, module)  # what inspect.signature reads

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        session = self._session
        if session.active and not _local.suspended and get_ident() == session.thread:
            return session.run(self._contract, self._function, (self._module, *args), kwargs)
        return self._function(self._module, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:  # __func__, __self__, __name__ ... of the bound method
        if name == "__wrapped__":
            raise AttributeError(name)
        return getattr(self.__wrapped__, name)

    def __reduce__(self) -> tuple:
        """Pickled (``torch.save(model)`` during a trace) as the plain bound forward."""
        return (bound_method, (self._function, self._module))

    def __repr__(self) -> str:
        return f"<checked {self._function.__qualname__} of {type(self._module).__name__}>"

    def __deepcopy__(self, memo: dict[int, Any]) -> Any:
        """A module copied during the trace gets its own checked forward (not one that runs the
        original module); it is removed with the others."""
        copy = memo.get(id(self._module))
        if copy is None:
            return types.MethodType(self._function, self._module)
        session = self._session
        wrapper = CheckedForward(session, copy, self._function, self._contract)
        if session.active:
            session._installed.append((copy, wrapper))
        return wrapper


def bound_method(function: Callable, module: nn.Module) -> Callable:
    """``function`` bound to ``module`` (what a pickled checked forward loads as)."""
    return types.MethodType(function, module)


def _checked_function(session: ContractSession, original: Any, target: Callable, contract: Contract) -> Any:
    """What replaces ``original`` (a function, staticmethod or classmethod) during the trace."""
    inner = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original

    @functools.wraps(inner)
    def checked(*args: Any, **kwargs: Any) -> Any:
        return session.call(contract, target, args, kwargs)

    setattr(checked, CONTRACT_ATTRIBUTE, target)
    return type(original)(checked) if isinstance(original, (staticmethod, classmethod)) else checked


def _holders(target: types.FunctionType) -> list[tuple[Any, str, Any]]:
    """``(holder, name, value)`` for each place ``target`` is looked up from: its class or
    module, and other modules that imported it under the same name."""
    qualname = target.__qualname__
    if "<locals>" in qualname:
        raise ValueError(
            f"contracts=: {qualname} is defined inside a function, where a trace cannot replace it; "
            "decorate it with @shapetrace.contract instead"
        )
    *owners, name = qualname.split(".")
    module = sys.modules.get(target.__module__)
    holder: Any = module
    for part in owners:
        holder = vars(holder).get(part) if holder is not None else None
    original = vars(holder).get(name) if holder is not None else None
    inner = original.__func__ if isinstance(original, (staticmethod, classmethod)) else original
    if original is None or unwrap(inner) is not target:
        raise ValueError(f"contracts=: cannot find {qualname} in module {target.__module__} to check it")
    found = [(holder, name, original)]
    if holder is module:
        for other in list(sys.modules.values()):
            namespace = getattr(other, "__dict__", None)
            if other is not module and namespace is not None and namespace.get(name) is original:
                found.append((other, name, original))
    return found
