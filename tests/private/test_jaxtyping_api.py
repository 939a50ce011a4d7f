"""The private jaxtyping APIs contracts rely on: these fail loudly when jaxtyping moves them."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch
from jaxtyping import Float, Int, Shaped, jaxtyped
from torch import Tensor

from shapetrace._private import jaxtyping_api as jt


@pytest.fixture
def scope():
    """A binding scope of its own, closed after the test."""
    memos = jt.push_memo({"n": 3})
    yield memos
    jt.pop_memo()


def test_a_check_binds_dims_in_the_memo_that_push_returned(scope):
    single, variadic = scope
    assert jt.instancecheck_reason(Float[Tensor, "B N"], torch.rand(2, 5)) == ""
    assert jt.instancecheck_reason(Float[Tensor, "*batch C"], torch.rand(4, 6, 7)) == ""
    assert single == {"B": 2, "N": 5, "C": 7}
    assert variadic["batch"][1] == (4, 6)
    assert jt.current_memo() == (single, variadic)
    assert jt.bindings_of(single, variadic) == {"B": 2, "N": 5, "C": 7, "*batch": (4, 6)}


def test_a_failed_check_gives_a_reason_and_replaces_the_memo_dicts(scope):
    single, _ = scope
    assert jt.instancecheck_reason(Float[Tensor, "B N"], torch.rand(2, 5)) == ""
    reason = jt.instancecheck_reason(Float[Tensor, "B N"], torch.rand(2, 6))
    assert "dimension N is 6" in reason and "5" in reason
    now, _ = jt.current_memo()
    assert now is not single  # read the memo again after a failure
    assert now == {"B": 2, "N": 5}


def test_dtype_and_rank_failures_have_reasons(scope):
    assert "dtype" in jt.instancecheck_reason(Int[Tensor, "B"], torch.rand(2))
    assert "dimensions" in jt.instancecheck_reason(Float[Tensor, "B N"], torch.rand(2))


def test_scopes_nest_and_pop(scope):
    depth = jt.memo_depth()
    jt.instancecheck_reason(Float[Tensor, "N"], torch.rand(3))
    jt.push_memo({})
    assert jt.current_memo()[0] == {} and jt.memo_depth() == depth + 1
    jt.pop_memo()
    assert jt.current_memo()[0] == {"N": 3} and jt.memo_depth() == depth


def test_restore_memo_replaces_the_innermost_scope(scope):
    jt.restore_memo({"K": 9}, {})
    assert jt.current_memo() == ({"K": 9}, {})


def test_internal_pytree_keys_are_left_out_of_bindings():
    assert jt.bindings_of({"~~delete~~(T) N": 1, "N": 2}, {"~~delete~~x": (False, (1,))}) == {"N": 2}


def test_symbolic_dims_need_their_names_bound(scope):
    with pytest.raises(jt.AnnotationError):
        jt.instancecheck_reason(Float[Tensor, "H*W"], torch.rand(4))


def test_formatted_specs_read_the_arguments_pushed(scope):
    assert jt.instancecheck_reason(Float[Tensor, "{n}"], torch.rand(3)) == ""
    assert jt.instancecheck_reason(Float[Tensor, "{n}"], torch.rand(4)) != ""


def test_parsed_spec_parts():
    hint = Float[Tensor, "B N=16 #C H*W *batch _ 3"]
    array_type, spec, dtype, dtypes, dims, variadic_at = jt.array_hint_parts(hint)
    assert array_type is Tensor and spec == "B N=16 #C H*W *batch _ 3" and dtype.__name__ == "Float"
    assert "float32" in dtypes and variadic_at == 4
    named, fixed, broadcast, symbolic, variadic, anonymous, three = dims
    assert type(named) is jt.NamedDim and named.name == "B" and not named.broadcastable and not named.treepath
    assert type(fixed) is jt.FixedDim and fixed.size == 16
    assert type(broadcast) is jt.NamedDim and broadcast.broadcastable
    assert type(symbolic) is jt.SymbolicDim and symbolic.elem == "H*W"
    assert type(variadic) is jt.NamedVariadicDim and variadic.name == "batch"
    assert anonymous is jt.ANONYMOUS_DIM and three == jt.FixedDim(3, False)
    assert jt.array_hint_parts(Float[Tensor, "..."])[4] == (jt.ANONYMOUS_VARIADIC_DIM,)
    assert jt.array_hint_parts(Shaped[Tensor, "B"])[3] is jt.ANY_DTYPE


def test_array_hints_are_recognised():
    assert jt.is_array_hint(Float[Tensor, "B"])
    assert (
        not jt.is_array_hint(Tensor) and not jt.is_array_hint(jt.AbstractArray) and not jt.is_array_hint(int)
    )


def test_jaxtyped_wrappers_are_recognised_in_both_styles():
    def f(x: Float[Tensor, " B"]) -> Float[Tensor, " B"]:
        return x

    for wrapper in (jaxtyped(f, typechecker=None), jaxtyped(typechecker=lambda fn: fn)(f)):
        assert jt.is_jaxtyped(wrapper) and wrapper.__wrapped__ is f
    assert not jt.is_jaxtyped(f)


LAZY = """\
import sys
import torch
import shapetrace
from shapetrace._private import jaxtyping_api as jt


class Plain(torch.nn.Module):
    def forward(self, x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
        return x * scale


with shapetrace.trace(Plain()) as t:
    Plain()(torch.rand(2, 3))
print(sorted(m for m in ("jaxtyping", "typeguard") if m in sys.modules), jt.is_array_hint(torch.Tensor))

from jaxtyping import Float, jaxtyped  # the user's code imports jaxtyping: now it is used

print(jt.is_array_hint(Float[torch.Tensor, "B"]), jt.is_jaxtyped(jaxtyped(lambda x: x, typechecker=None)))
print(type(jt.array_hint_parts(Float[torch.Tensor, "B"])[4][0]) is jt.NamedDim, jt.memo_depth())
"""


def test_jaxtyping_and_typeguard_are_imported_only_once_a_hint_needs_them():
    """Neither is imported by a trace whose modules have plain annotations (~20 ms of the CLI's
    start-up); once the user's code imports jaxtyping, its hints are recognised and read."""
    done = subprocess.run([sys.executable, "-c", LAZY], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == ["[] False", "True True", "True 0"]
