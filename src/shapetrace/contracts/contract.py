"""A function's contract: its annotations compiled once into checks, and a fast way to bind a
call's arguments to parameter names."""

from __future__ import annotations

import contextlib
import inspect
import weakref
from typing import Any

from torch import nn

from shapetrace._private import jaxtyping_api as jt
from shapetrace.contracts.checks import Check, build_check
from shapetrace.contracts.hints import has_array_hint, looks_like_array_hint, resolve_hints
from shapetrace.contracts.violations import UnresolvedHint

CONTRACT_ATTRIBUTE = "__shapetrace_contract__"  # set on functions @contract wrapped: the original


class Contract:
    """The checks of one function. ``params`` are ``(name, check, kind)`` with kind ``""``,
    ``"*"`` (each of ``*args``) or ``"**"`` (each of ``**kwargs``); ``result`` checks the return
    value. ``unresolved`` are annotations that could not become checks."""

    def __init__(self, fn: Any, localns: dict[str, Any] | None = None) -> None:
        self.qualname = getattr(fn, "__qualname__", repr(fn))
        code = getattr(fn, "__code__", None)
        self.file = code.co_filename if code else "<unknown>"
        self.line = code.co_firstlineno if code else 0
        self.signature = inspect.signature(fn, follow_wrapped=False)
        hints, unresolved = resolve_hints(fn, localns)
        checks: dict[str, Check | None] = {}
        for name, hint in hints.items():
            try:
                checks[name] = build_check(hint)
            except Exception as error:  # e.g. an array hint jaxtyping itself cannot parse
                unresolved[name] = f"cannot be checked: {type(error).__name__}: {error}"
        raw = getattr(fn, "__annotations__", None) or {}
        self.unresolved = tuple(
            UnresolvedHint(self.qualname, name, str(raw.get(name)), reason, self.file, self.line)
            for name, reason in unresolved.items()
        )
        self.has_arrays = any(has_array_hint(h) for h in hints.values()) or any(
            looks_like_array_hint(raw.get(name)) for name in unresolved
        )
        kinds = {inspect.Parameter.VAR_POSITIONAL: "*", inspect.Parameter.VAR_KEYWORD: "**"}
        self.params: tuple[tuple[str, Check, str], ...] = tuple(
            (p.name, checks[p.name], kinds.get(p.kind, ""))
            for p in self.signature.parameters.values()
            if checks.get(p.name) is not None
        )
        self.result: Check | None = checks.get("return")
        self._prepare_binding()

    def __repr__(self) -> str:
        return f"<Contract {self.qualname}>"

    # --- binding ------------------------------------------------------------------------------

    def _prepare_binding(self) -> None:
        kinds = [p.kind for p in self.signature.parameters.values()]
        positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
        self._simple = all(kind in positional for kind in kinds)
        params = list(self.signature.parameters.values())
        self._names = tuple(p.name for p in params)
        self._required = sum(p.default is p.empty for p in params)
        self._defaults = tuple((p.name, p.default) for p in params)

    def bind(self, args: tuple, kwargs: dict[str, Any]) -> dict[str, Any] | None:
        """``name -> value`` for a call, defaults included; ``None`` when the call does not fit
        the signature (the call itself then raises Python's own error)."""
        if not kwargs and self._simple and self._required <= len(args) <= len(self._names):
            arguments = dict(zip(self._names, args))
            if len(args) < len(self._names):
                for name, default in self._defaults[len(args) :]:
                    arguments[name] = default
            return arguments
        try:
            bound = self.signature.bind(*args, **kwargs)
        except TypeError:
            return None
        bound.apply_defaults()
        return bound.arguments

    def bind_partial(self, args: tuple) -> dict[str, Any]:
        """``name -> value`` for positional arguments only (keyword ones are not known yet)."""
        try:
            return dict(self.signature.bind_partial(*args).arguments)
        except TypeError:
            return {}

    # --- reading the hints --------------------------------------------------------------------

    def array_specs(self) -> dict[str, str]:
        """``argument path -> dims spec`` of the annotated parameters (``"x" -> "B C H W"``)."""
        specs: dict[str, str] = {}
        for name, check, kind in self.params:
            specs.update(check.array_specs(name if not kind else f"{name}[i]"))
        return specs


# function -> its contract (which does not refer back to the function: entries go with it)
_contracts: weakref.WeakKeyDictionary[Any, Contract] = weakref.WeakKeyDictionary()


def unwrap(fn: Any) -> Any:
    """The user's function under ``@jaxtyped`` and ``@contract`` wrappers."""
    while True:
        if jt.is_jaxtyped(fn):
            fn = fn.__wrapped__
        elif hasattr(fn, CONTRACT_ATTRIBUTE):
            fn = getattr(fn, CONTRACT_ATTRIBUTE)
        else:
            return fn


def contract_for(fn: Any, localns: dict[str, Any] | None = None) -> Contract:
    """The (cached) contract of ``fn``, a plain function (already unwrapped)."""
    try:
        return _contracts[fn]
    except (KeyError, TypeError):
        pass
    contract = Contract(fn, localns)
    with contextlib.suppress(TypeError):  # not weak-referenceable: not cached
        _contracts[fn] = contract
    return contract


# module class -> (its forward when read, forward_contract's answer): every trace asks for each class
# of its model; a class whose forward was replaced since is read again
_by_class: weakref.WeakKeyDictionary[type, tuple[Any, tuple[Any, Contract | None]]] = weakref.WeakKeyDictionary()


def forward_contract(cls: type) -> tuple[Any, Contract | None]:
    """``(function, contract)`` for a module class's ``forward``, unwrapped; the contract is
    ``None`` when forward has no jaxtyping hints or checks itself (``@contract``)."""
    forward = getattr(cls, "forward", None)
    known = _by_class.get(cls)
    if known is not None and known[0] is forward:
        return known[1]
    answer = _forward_contract(cls, forward)
    with contextlib.suppress(TypeError):  # a class that is not weak-referenceable: not cached
        _by_class[cls] = (forward, answer)
    return answer


def _forward_contract(cls: type, forward: Any) -> tuple[Any, Contract | None]:
    fn = unwrap(forward)
    if forward is None or forward is nn.Module.forward or hasattr(forward, CONTRACT_ATTRIBUTE):
        return fn, None
    if not hasattr(fn, "__code__"):
        return fn, None
    contract = _contracts.get(fn)
    if contract is None:
        owner = next((c for c in cls.__mro__ if "forward" in vars(c)), cls)
        contract = contract_for(fn, dict(vars(owner)))
    return fn, contract if contract.has_arrays else None


def forward_dims(module: nn.Module | type) -> dict[str, str]:
    """The dims spec of each jaxtyping-annotated argument of a module's ``forward``:
    ``{"x": "B C H W", "mask": "B N"}`` (tuple items as ``"pair[0]"``, each of ``*args`` as
    ``"xs[i]"``). Specs are jaxtyping's text: names, fixed sizes, ``#B``, ``*batch``, ``...``,
    ``H*W``. Empty when forward has no jaxtyping hints."""
    cls = module if isinstance(module, type) else type(module)
    fn, contract = forward_contract(cls)
    if contract is None and hasattr(getattr(cls, "forward", None), CONTRACT_ATTRIBUTE):
        contract = contract_for(fn)  # a @contract forward checks itself, but has a spec all the same
    return contract.array_specs() if contract is not None else {}
