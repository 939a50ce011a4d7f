"""shapetrace: a runtime shape-and-device tracer and debugger for PyTorch.

>>> import shapetrace
>>> with shapetrace.trace(model) as t:
...     y = model(x)
>>> t.print()
"""

from shapetrace.capture.collector import gc_paused

# Imported with the cyclic collector paused: the modules below (sympy, rich, jaxtyping, ...) make
# about a million objects that live as long as the process, and each collection while they are
# made would scan them again, one of them everything torch made as well (measured after
# `import torch`: 0.1 s of a 0.5 s import). Its first collection afterwards scans them once.
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
