"""Shape assertions for tests (the pytest plugin's ``shapes`` fixture uses the same objects).

>>> t = trace_call(model, x, dims="B C H W")
>>> t.assert_output("B N D")
>>> t.assert_op("cat", "(B, (H//32)*(W//32) + 1, D)")
>>> assert_shape_comments("examples/patch_embed.py")

docs/pytest.md describes the assertions, the fixture and the plugin's options.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shapetrace.testing.comment_checks import assert_shape_comments
    from shapetrace.testing.expected import InvalidExpectation, ShapeMismatch
    from shapetrace.testing.traced import TracedCall, trace_call, traced

# name -> the module that defines it, imported on first use: `import shapetrace.testing` stays as
# cheap as `import shapetrace` (the assertions' parser needs sympy).
_HOMES = {
    "assert_shape_comments": "comment_checks",
    "InvalidExpectation": "expected",
    "ShapeMismatch": "expected",
    "TracedCall": "traced",
    "trace_call": "traced",
    "traced": "traced",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{home}"), name)
    globals()[name] = value
    return value


__all__ = [
    "InvalidExpectation",
    "ShapeMismatch",
    "TracedCall",
    "assert_shape_comments",
    "trace_call",
    "traced",
]
