"""Expected shapes as tests write them, matched against recorded tensors (symbolic and concrete)."""

from __future__ import annotations

import pytest
import torch

from shapetrace.capture.records import TensorMeta
from shapetrace.testing import InvalidExpectation
from shapetrace.testing.expected import ActualShape, Scope, match, parse_expected

DIMS = {"B": 2, "C": 3, "H": 64, "W": 64, "D": 32}


def meta(shape: tuple[int, ...], expr: str | None = None) -> TensorMeta:
    return TensorMeta(shape, torch.float32, torch.device("cpu"), False, expr=expr)


def problems(expected, shape, expr=None, dims=DIMS) -> list[str]:
    return match(parse_expected(expected), ActualShape.of(meta(shape, expr)), Scope(dims))


PATCHES = ((2, 5, 32), "(B, (H//32)*(W//32) + 1, D)")


@pytest.mark.parametrize(
    "expected",
    [
        "(B, (H//32)*(W//32) + 1, D)",
        "(B, (W//32)*(H//32) + 1, D)",  # the same expression, written another way
        "B (H//32)*(W//32)+1 D",  # a dims spec
        "B N D",  # N binds
        "(B, P + 1, D)",  # P binds to (H//32)*(W//32)
        "(B, _, D)",
        "(..., D)",
        "(*batch, D)",
        ("B", "(H//32)*(W//32) + 1", 32),
    ],
)
def test_a_symbolic_shape_matches_what_means_the_same(expected):
    assert problems(expected, *PATCHES) == []


def test_the_same_number_is_not_enough_where_the_trace_has_an_expression():
    # H == W here: (W//32)*(W//32) is 4 like (H//32)*(W//32), but it is another expression.
    found = problems("(B, (W//32)*(W//32) + 1, D)", *PATCHES)
    assert found == [
        "dim 1: expected (W//32)*(W//32) + 1 (= 5), got (H//32)*(W//32) + 1 (= 5); "
        "equal at this run's sizes, but not the same expression"
    ]


def test_floor_divisions_that_simplify_cannot_prove_equal_still_match():
    assert problems("(B, (H//32)//2)", (2, 1), "(B, H//64)") == []
    assert problems("(B, (H//32)//3)", (2, 0), "(B, H//64)") != []


def test_a_wrong_dim_names_both_sides_and_their_values():
    assert problems("(B, N, C)", *PATCHES) == ["dim 2: expected C (= 3), got D (= 32)"]


def test_a_bound_name_must_be_the_same_everywhere():
    assert problems("(B, N, N)", (2, 5, 32)) == ["dim 2: expected N (N = 5 from dim 1), got 32"]
    assert problems("B N N", (2, 5, 5)) == []


def test_a_name_bound_from_an_expression_is_checked_for_a_whole_size():
    assert problems("(B, 2*N, D)", (2, 5, 32), dims={}) == [
        "dim 1: is 5; no whole N makes 2*N equal to it"
    ]
    assert problems("(B, 2*N, D)", (2, 6, 32), dims={}) == []


def test_rank_is_checked_first():
    assert problems("B N D E", *PATCHES) == ["rank: expected 4 dims, got 3"]
    assert problems("(B, ..., E)", (2, 3), dims={}) == []
    assert problems("(B, ..., D, E)", (2, 3), dims={}) == ["rank: expected at least 3 dims, got 2"]


def test_a_named_variadic_binds_the_dims_it_covers():
    scope = Scope({})
    first = match(parse_expected("*batch N"), ActualShape.of(meta((2, 3, 7))), scope)
    again = match(parse_expected("*batch N"), ActualShape.of(meta((2, 4, 7))), scope)
    assert first == []
    assert again == ["dims 0..1: *batch is (2, 4), but was (2, 3) at dims 0..1"]


def test_concrete_shapes_are_compared_at_this_runs_sizes():
    assert problems("(B, C, H*W)", (2, 3, 4096)) == []
    assert problems("(B, C, H*W)", (2, 3, 4095)) == ["dim 2: expected H*W (= 4096), got 4095"]
    assert problems((2, 3, 4096), (2, 3, 4096), dims={}) == []


def test_a_dim_torch_specialised_is_compared_by_value():
    # The trace has D as the number 32 (a guard fixed it): the expectation's D is its value.
    assert problems("(B, D)", (2, 32), "(B, 32)") == []


@pytest.mark.parametrize(
    ("expected", "why"),
    [
        ("(B, C", "not a tuple such as (B, H*W, C)"),
        ("(B)", "a one-dim tuple needs its comma: (B,)"),
        ("B ... *rest", "at most one of '...' and '*name'"),
        ("B C$", "cannot read the dim 'C$'"),
        ("*2", "'*2' is not *name"),
    ],
)
def test_an_unreadable_expectation_says_why(expected, why):
    with pytest.raises(InvalidExpectation, match="expected shape .*" + __import__("re").escape(why)):
        parse_expected(expected)
