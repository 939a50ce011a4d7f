"""Contracts: jaxtyping-annotated shapes checked on every call inside ``trace()``.

Module ``forward`` methods with jaxtyping hints are checked with no decorator; other functions
opt in with :func:`contract` or ``trace(..., contracts=[fn])``. A violation is a
:class:`ContractViolation` record (``Trace.contracts``); ``on_violation`` says whether it also
raises :class:`ContractError` or warns. See docs/contracts.md.
"""

from shapetrace.contracts.contract import forward_dims
from shapetrace.contracts.decorator import contract
from shapetrace.contracts.session import ON_VIOLATION, suspended
from shapetrace.contracts.spec_dims import dim_names
from shapetrace.contracts.violations import (
    ContractCall,
    ContractError,
    ContractViolation,
    ContractWarning,
    UnresolvedHint,
    UnresolvedHintWarning,
)

__all__ = [
    "ON_VIOLATION",
    "ContractCall",
    "ContractError",
    "ContractViolation",
    "ContractWarning",
    "UnresolvedHint",
    "UnresolvedHintWarning",
    "contract",
    "dim_names",
    "forward_dims",
    "suspended",
]
