"""The shape-comment grammar: what is an owned comment, and what it means in sympy."""

from __future__ import annotations

import pytest
import sympy

from shapetrace.comments.grammar import NotAShape, parse_comment, parse_shape, symbol

B, C, D, H, W, N, P = (symbol(name) for name in "BCDHWNP")


def test_the_seed_comments_parse_to_their_expressions():
    assert parse_shape("(B, C, H*W)") == (B, C, H * W)
    assert parse_shape("(B, H*W, C)") == (B, H * W, C)
    assert parse_shape("(B, (H//32)*(W//32) + 1, D)") == (B, sympy.floor(H / 32) * sympy.floor(W / 32) + 1, D)
    assert parse_shape("(1, P + 1, D)") == (1, P + 1, D)
    assert parse_shape("(B, 12, ((H - 4)//2 - 4)//2, 5)")[2].subs(H, 28) == 4
    assert parse_shape("(8, 6, 10)") == (8, 6, 10)


def test_slash_is_floor_division_as_the_seeds_use_it():
    ps = symbol("ps")
    assert parse_shape("(B, D, H/ps, W/ps)")[2] == sympy.floor(H / ps)
    assert parse_shape("(B, H/32)")[1].subs(H, 100) == 3


def test_one_dim_needs_its_comma_and_empty_is_a_scalar():
    assert parse_shape("(B,)") == (B,)
    assert parse_shape("()") == ()
    for not_a_shape in (
        "(B)",
        "(optional)",
        "(B, *, D)",
        "(B, ..., D)",
        "(B, 1.5)",
        "(B, f(x))",
        "(B, H//0)",
    ):
        with pytest.raises(NotAShape):
            parse_shape(not_a_shape)
    assert parse_shape("(B, max(H, W))")[1] == sympy.Max(H, W)


def test_owned_comment_with_seed_prose():
    comment = parse_comment("# (B, D, H/ps, W/ps), where ps = patch_size")
    assert comment.shape_text == "(B, D, H/ps, W/ps)"
    assert comment.rest == ", where ps = patch_size"
    assert parse_comment("# (1, 1, D), where D = embed_dim").rest == ", where D = embed_dim"
    assert parse_comment("# (B, N, D) -- the tokens").rest == " -- the tokens"
    assert parse_comment("#(B, N, D)").shape_text == "(B, N, D)"


def test_prose_that_is_not_owned():
    # an equation, a transformation, a parenthesised word, a shape inside a sentence
    for comment in (
        "# (B, P+1, D) + (1, P+1, D) = (B, P+1, D)",
        "# (B, C, H, W) -> (B, N, D)",
        "# (x, y) coordinates",
        "# (optional) cache",
        "# see (B, N, D)",
        "# TODO: fix",
        "# (B, N, D) x (D, E)",
    ):
        assert parse_comment(comment) is None, comment


def test_several_tensors_and_several_runs():
    three = parse_comment("# (B, N, D) x3")
    assert three.alternatives == (((B, N, D),) * 3,)
    pair = parse_comment("# (B, N, D), (B, N)")
    assert pair.alternatives == (((B, N, D), (B, N)),)
    runs = parse_comment("# (B, 8, 8) | (B, 16, 16)")
    assert runs.alternatives == (((B, 8, 8),), ((B, 16, 16),))
    assert not runs.more_runs
    cut = parse_comment("# (1,) | (2,) | (3,) | (4,) | ...")
    assert cut.more_runs and len(cut.alternatives) == 4
    many = parse_comment("# (B, N), (B,), ...")
    assert many.more_tensors == (True,)
