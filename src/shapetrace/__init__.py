"""shapetrace: a runtime shape-and-device tracer and debugger for PyTorch.

>>> import shapetrace
>>> with shapetrace.trace(model) as t:
...     y = model(x)
>>> t.print()
"""

import gc as _gc
from collections.abc import Iterator as _Iterator
from contextlib import contextmanager as _contextmanager


@_contextmanager
def _imported_long_lived() -> _Iterator[None]:
    """Import with the cyclic collector paused: the modules below (and torch, sympy, rich, ...
    when not imported yet) make millions of objects that live as long as the process, and the
    collections while they are made would scan them again and again (measured on the command's
    start-up: 0.4 s). Afterwards they go to the oldest generation, where their first collections
    would have put them, without the young collection that would scan them all once more
    (0.18 s); the young garbage there was before is collected first, so that none is kept
    longer. A collector paused before stays paused; objects frozen before stay frozen (and
    nothing is moved: unfreezing would move them too)."""
    enabled, frozen = _gc.isenabled(), _gc.get_freeze_count() > 0
    if enabled and not frozen:
        _gc.collect(1)
    _gc.disable()
    try:
        yield
    finally:
        if enabled:
            if not frozen:
                _gc.freeze()  # every tracked object set aside, and back in the oldest generation
                _gc.unfreeze()
            _gc.enable()


with _imported_long_lived():
    from shapetrace.capture.records import ErrorRecord, ModuleCall, OpRecord, TensorMeta
    from shapetrace.cli.magics import load_ipython_extension  # %load_ext (IPython imported by IPython)
    from shapetrace.contracts import (
        ContractError,
        ContractViolation,
        ContractWarning,
        UnresolvedHint,
        UnresolvedHintWarning,
        contract,
    )
    from shapetrace.diagnose import Diagnostic
    from shapetrace.symbolic.result import Specialization, SymbolicStatus
    from shapetrace.symbolic.spec import DimsError, TensorSpec
    from shapetrace.trace import Trace, trace, trace_shapes


__all__ = [
    "ContractError",
    "ContractViolation",
    "ContractWarning",
    "Diagnostic",
    "DimsError",
    "ModuleCall",
    "OpRecord",
    "Specialization",
    "SymbolicStatus",
    "TensorMeta",
    "TensorSpec",
    "Trace",
    "ErrorRecord",
    "UnresolvedHint",
    "UnresolvedHintWarning",
    "contract",
    "load_ipython_extension",
    "trace",
    "trace_shapes",
]
__version__ = "0.1.0"
