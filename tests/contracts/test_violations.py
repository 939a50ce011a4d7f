"""What a violation records, and what it does: raise, warn or only record."""

from __future__ import annotations

import contextlib
import inspect
import warnings

import pytest
import torch
from jaxtyping import Float
from torch import Tensor

import shapetrace
from shapetrace import ContractError, ContractViolation, ContractWarning


def here() -> int:
    """The line number of the caller's line."""
    return inspect.currentframe().f_back.f_lineno


def test_dim_mismatch_across_two_arguments(models):
    model = models.Pair()
    x, y = torch.rand(4, 16, 3), torch.rand(4, 15)
    with shapetrace.trace(model, on_violation="record") as t, pytest.raises(RuntimeError):
        line = here() + 1
        model(x, y)  # recorded, and the program runs on into the multiplication, which fails
    (violation,) = t.contracts
    assert isinstance(violation, ContractViolation)
    assert (violation.where, violation.function, violation.arg) == ("Pair", "Pair.forward", "y")
    assert violation.expected == 'Float[Tensor, "B N"]'
    assert violation.actual.shape == (4, 15) and violation.actual.dtype == torch.float32
    assert violation.actual.device == torch.device("cpu") and violation.actual_type == "Tensor"
    assert violation.reason == "dim N is 15 but N was bound to 16 by x"
    assert dict(violation.bindings) == {"B": 4, "N": 16, "D": 3}
    assert (violation.file, violation.line) == (__file__, line)
    assert violation.op_index is None and violation.module_index == 0  # y was made before the trace


def test_wrong_rank(models):
    model = models.Rank4()
    with shapetrace.trace(model, on_violation="record") as t:
        model(torch.rand(2, 3, 4))
    (violation,) = [v for v in t.contracts if v.arg == "x"]
    assert violation.reason == "rank is 3, expected 4 dims (B C H W)"


def test_dtype_mismatch(models):
    model = models.Embed()
    ids = torch.randint(0, 10, (2, 5)).float()
    with shapetrace.trace(model, on_violation="record") as t, pytest.raises(RuntimeError):
        model(ids)  # the embedding itself then refuses float ids
    (violation,) = t.contracts
    assert violation.arg == "ids" and violation.expected == 'Int[Tensor, "B T"]'
    assert violation.reason == "dtype is float32, expected a Int dtype"
    assert violation.actual.dtype == torch.float32


def test_silent_broadcasting_bug_is_caught_by_the_return_annotation(models):
    model = models.Score()
    with shapetrace.trace(model, on_violation="record") as t:
        out = model(torch.rand(4, 1), torch.rand(4))
    assert out.shape == (4, 4)  # the program ran on, as it would without the trace
    (violation,) = t.contracts
    assert violation.arg == "return" and violation.expected == 'Float[Tensor, "B 1"]'
    assert violation.reason == "dim 1 is 4, expected 1" and dict(violation.bindings) == {"B": 4}
    plus = t.ops[violation.op_index]
    assert plus.op == "+" and plus.code == "return logits + bias  # (B, B), not (B, 1)"
    assert violation.position == len(t.ops)  # found after the last op of the call


def test_values_inside_tuples_and_dicts_are_named_by_their_place(models):
    x = torch.rand(2, 3, 4)
    with shapetrace.trace(on_violation="record") as t:
        models.Heads()(x)
        models.HeadsWrongTuple()(x)
        models.HeadsWrongDict()(x)
    assert [(v.function, v.arg, v.reason) for v in t.contracts] == [
        ("HeadsWrongTuple.forward", "return[0]", "dim N is 2 but N was bound to 3 by x"),
        ("HeadsWrongDict.forward", "return[1]['first']", "dim D is 1 but D was bound to 4 by x"),
    ]
    assert t.contracts[1].expected == 'Float[Tensor, "B D"]' and t.contracts[1].actual.shape == (2, 1)


def test_nested_calls_bind_in_their_own_scope(models):
    model = models.Outer()
    with shapetrace.trace(model, on_violation="raise") as t:
        model(torch.rand(2, 3, 4))
    assert [dict(c.bindings) for c in t.contract_calls] == [{"B": 2, "N": 12}, {"B": 2, "N": 3, "D": 4}]
    assert [c.where for c in t.contract_calls] == ["inner", "Outer"]


def test_fixed_variadic_broadcastable_ellipsis_and_expressions(models):
    model = models.Specs()
    with shapetrace.trace(model, on_violation="record") as t:
        out = model(torch.rand(2, 5, 4, 3), torch.rand(4), torch.rand(7, 7), 2)
        model(torch.rand(4, 3), torch.rand(1), torch.rand(()), 1)  # no batch dims, a #C of 1
    assert out.shape == (2, 5, 5, 3) and t.contracts == []
    assert [dict(c.bindings) for c in t.contract_calls] == [
        {"C": 4, "*batch": (2, 5)},
        {"C": 4, "*batch": ()},
    ]

    assert violations_of(model, torch.rand(2, 4, 2), torch.rand(4), torch.rand(1), 1) == [
        ("x", "dim 2 is 2, expected 3"),  # fixed at 3
        ("return", "dim 2 is 2, expected 3"),
    ]
    assert violations_of(model, torch.rand(2, 4, 3), torch.rand(3), torch.rand(1), 1) == [
        ("scale", "dim C is 3 but C was bound to 4 by x (a #-dim may also be 1)"),
    ]
    assert violations_of(model, torch.rand(2, 4, 3), torch.rand(4), torch.rand(1), 1.5) == [
        ("steps", "expected int, got float"),
    ]
    assert violations_of(model, torch.rand(4), torch.rand(4), torch.rand(1), 1) == [
        ("x", "rank is 1, expected at least 2 dims (*batch C 3)"),
        ("return", "dim 1 is 4, expected 3"),  # C was bound by scale, so C+1 = 5 matched dim 0
    ]


def violations_of(model, *args) -> list[tuple[str, str]]:
    """``(arg, reason)`` of each violation one call records (the call may then fail)."""
    with shapetrace.trace(model, on_violation="record") as t, contextlib.suppress(RuntimeError):
        model(*args)
    return [(v.arg, v.reason) for v in t.contracts]


def test_expression_dims_are_evaluated_from_the_bindings(models):
    with shapetrace.trace(on_violation="record") as t:
        models.Rank4()(torch.rand(2, 3, 4, 5))
        models.Flat()(torch.rand(2, 3, 4, 5))
    assert dict(t.contract_calls[0].bindings) == {"B": 2, "C": 3, "H": 4, "W": 5}
    (violation,) = t.contracts
    assert violation.reason == "rank is 3, expected 2 dims (B C*H*W)"


def test_raise_stops_at_the_violation_with_our_exception(models):
    model = models.Pair()
    with pytest.raises(ContractError) as caught, shapetrace.trace(model, on_violation="raise") as t:
        model(torch.rand(4, 16, 3), torch.rand(4, 15))
    assert isinstance(caught.value, TypeError)
    assert caught.value.violation is t.contracts[0]
    message = str(caught.value)
    assert "Pair.forward in Pair: y does not match its annotation" in message
    assert 'expected Float[Tensor, "B N"]' in message and "dim N is 15 but N was bound to 16 by x" in message
    assert t.error.type == "shapetrace.contracts.violations.ContractError"
    assert [op.op for op in t.ops] == ["rand", "rand"]  # the forward never ran
    assert t.modules[0].failed


def test_warn_is_the_default_and_the_program_runs_on(models):
    model = models.Score()
    with (
        pytest.warns(ContractWarning, match=r"dim 1 is 4, expected 1") as caught,
        shapetrace.trace(model) as t,
    ):
        line = here() + 1
        model(torch.rand(4, 1), torch.rand(4))
    assert len(t.contracts) == 1 and t.error is None
    assert (caught[0].filename, caught[0].lineno) == (__file__, line)


def test_record_is_silent(models):
    model = models.Score()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with shapetrace.trace(model, on_violation="record") as t:
            model(torch.rand(4, 1), torch.rand(4))
    assert len(t.contracts) == 1


def test_bad_on_violation_is_a_clear_error():
    with pytest.raises(ValueError, match="on_violation must be one of raise, warn, record, not 'ignore'"):
        shapetrace.trace(on_violation="ignore")


def test_contract_decorator_raises_outside_a_trace_and_records_inside(models):
    x = torch.rand(2, 3)
    assert models.center(x).shape == (2, 3)
    with pytest.raises(ContractError, match="dtype is int64"):
        models.center(torch.ones(2, 3, dtype=torch.long))
    with shapetrace.trace(on_violation="record") as t:
        models.center(x[0])
        models.center(x, scale=torch.tensor(2.0))
    assert [(v.function, v.arg, v.where) for v in t.contracts] == [
        ("center", "x", ""),
        ("center", "return", ""),
        ("center", "scale", ""),
    ]
    assert t.contracts[0].reason == "rank is 1, expected 2 dims (B N)"
    assert t.contracts[2].reason == "expected float, got Tensor" and t.contracts[2].actual.shape == ()


def test_a_contract_function_inside_a_module_is_located_in_that_module(models):
    class UsesCenter(torch.nn.Module):
        def forward(self, x):
            return models.center(x)

    model = UsesCenter()
    with shapetrace.trace(model, on_violation="record") as t:
        model(torch.rand(3))
    assert [(v.where, v.function, v.arg, v.module_index) for v in t.contracts] == [
        ("UsesCenter", "center", "x", 0),
        ("UsesCenter", "center", "return", 0),
    ]


@shapetrace.contract
def tokens_of(image: Float[Tensor, "B C H W"], tokens: Float[Tensor, "B H*W C"]) -> None:
    """Expressions over dims bound by an earlier argument."""


@shapetrace.contract
def same_batch(a: Float[Tensor, "*batch N"], b: Float[Tensor, "*batch N"]) -> None:
    """A variadic dim binds the whole group."""


def test_reasons_for_expressions_and_variadic_dims():
    with shapetrace.trace(on_violation="record") as t:
        tokens_of(torch.rand(2, 3, 4, 4), torch.rand(2, 15, 3))
        same_batch(torch.rand(2, 3, 5), torch.rand(2, 4, 5))
    assert [(v.arg, v.reason) for v in t.contracts] == [
        ("tokens", "dim H*W is 15 but H*W = 16 (H=4, W=4)"),
        ("b", "dims *batch are (2, 4) but *batch was bound to (2, 3) by a"),
    ]
    assert dict(t.contracts[1].bindings) == {"N": 5, "*batch": (2, 3)}
