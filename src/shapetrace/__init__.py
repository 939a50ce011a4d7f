"""shapetrace: a runtime shape-and-device tracer and debugger for PyTorch.

>>> import shapetrace
>>> with shapetrace.trace(model) as t:
...     y = model(x)
>>> t.print()
"""

import gc as _gc

from shapetrace.capture.collector import gc_paused

# Imported with the cyclic collector paused: the modules below (and torch, sympy, rich, ... when
# not imported yet) make millions of objects that live as long as the process, and collections
# while they are made would scan them again and again (measured on the command's start-up:
# 0.4 s). They then go to the oldest generation, where their first collections would have
# put them, without the young collection that would scan them all once more (0.18 s); not when
# objects are frozen already (gc.freeze() before a fork: left as it is).
with gc_paused():
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

    if not _gc.get_freeze_count():
        _gc.freeze()  # every tracked object set aside, and back in the oldest generation
        _gc.unfreeze()
del _gc

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
