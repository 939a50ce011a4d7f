"""Private torch APIs used by capture: one place to change when torch moves them."""

from __future__ import annotations

import torch

# Context manager that turns off __torch_function__ dispatch (modes and subclasses) on this
# thread. Module hooks run while the recorder's mode is active; reading tensor metadata there
# would otherwise dispatch every `.shape` through the mode.
DisableTorchFunction = torch._C.DisableTorchFunction

# The base class whose methods and properties the recorder sees as `func`.
TensorBase = torch._C.TensorBase
