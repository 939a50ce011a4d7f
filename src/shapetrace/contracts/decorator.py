"""``@contract``: opt a function into contract checks."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from shapetrace.contracts.contract import CONTRACT_ATTRIBUTE, Contract, contract_for, unwrap
from shapetrace.contracts.session import _local, current_session

F = TypeVar("F", bound=Callable[..., Any])


def contract(fn: F) -> F:
    """Check ``fn``'s annotations (jaxtyping arrays, and every other hint through typeguard) on
    each call, in a binding scope of its own.

    Inside ``trace()`` a violation is recorded and does what the trace's ``on_violation`` says;
    outside any trace it raises :class:`ContractError`. Works on functions, methods,
    ``staticmethod``/``classmethod`` objects, and on top of ``@jaxtyped`` (whose check it replaces).
    """
    if isinstance(fn, (staticmethod, classmethod)):
        return type(fn)(contract(fn.__func__))  # type: ignore[return-value]
    target = unwrap(fn)
    compiled: list[Contract] = []  # compiled on the first call: annotations may name later classes

    @functools.wraps(target)
    def checked(*args: Any, **kwargs: Any) -> Any:
        if _local.suspended:
            return target(*args, **kwargs)
        if not compiled:
            compiled.append(contract_for(target))
        return current_session().run(compiled[0], target, args, kwargs)

    setattr(checked, CONTRACT_ATTRIBUTE, target)
    return checked  # type: ignore[return-value]
