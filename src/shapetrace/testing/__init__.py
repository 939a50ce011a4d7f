"""Shape assertions for tests (the pytest plugin's ``shapes`` fixture uses the same objects).

>>> t = trace_call(model, x, dims="B C H W")
>>> t.assert_output("B N D")
>>> t.assert_op("cat", "(B, (H//32)*(W//32) + 1, D)")
>>> assert_shape_comments("examples/patch_embed.py")

docs/pytest.md describes the assertions, the fixture and the plugin's options.
"""

from shapetrace.testing.comment_checks import assert_shape_comments
from shapetrace.testing.expected import InvalidExpectation, ShapeMismatch
from shapetrace.testing.traced import TracedCall, trace_call, traced

__all__ = [
    "InvalidExpectation",
    "ShapeMismatch",
    "TracedCall",
    "assert_shape_comments",
    "trace_call",
    "traced",
]
