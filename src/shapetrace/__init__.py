"""shapetrace: a runtime shape-and-device tracer and debugger for PyTorch.

>>> import shapetrace
>>> with shapetrace.trace(model) as t:
...     y = model(x)
>>> t.print()
"""

from shapetrace.capture.records import ModuleCall, OpRecord, TensorMeta, TraceError
from shapetrace.trace import Trace, trace

__all__ = ["ModuleCall", "OpRecord", "TensorMeta", "Trace", "TraceError", "trace"]
__version__ = "0.1.0"
