"""shapetrace: a runtime shape-and-device tracer and debugger for PyTorch.

>>> import shapetrace
>>> with shapetrace.trace(model) as t:
...     y = model(x)
>>> t.print()
"""

from shapetrace.capture.collector import long_lived as _long_lived

with _long_lived():
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
